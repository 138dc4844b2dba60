"""Training and classification for localrepo-server.

``features``  image -> feature vector: a frozen pretrained backbone (EfficientNet-Lite0,
              the ``ml`` extra) or handcrafted features (numpy only)
``heads``     pure numpy/scikit-learn: datasets, the seeded split, heads, metrics
``train``     one training: the task's data, features (cached), a head, its metrics
``worker``    the training worker process that ``serve`` starts
``classify``  the classify/ computation

No SQL here: the queue, the embedding cache and the heads are read and written by
``data/training.py``.
"""
