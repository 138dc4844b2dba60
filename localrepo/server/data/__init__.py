"""Data access and storage: the only modules of the server that hold SQL.

``db`` the engine and transactions, ``tables`` the schema, ``queries`` the read side
(rows as API dicts), one write-side module per resource (``tasks``, ``labels``,
``images``, ``models``, ``accounts``), ``training`` the training queue, embeddings and
heads, ``imagedocs`` the listing's ready answers (SQLite), ``storage`` the blob store.
"""
