"""localrepo-server: a self-hosted implementation of the Recognition v2 API.

This package is self-contained: it imports nothing from the rest of ``localrepo`` (and
the client never imports it), so it can be deployed on its own.

Layout (docs/server.md, "Code layout"): ``api/`` the routes, ``uploads`` the upload
pipeline, ``ml/`` training and classification, ``data/`` the data access and storage
(the only SQL), and the app's wiring and shared modules at this level.
"""
