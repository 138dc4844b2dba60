"""localrepo-server: a self-hosted implementation of the Recognition v2 API.

This package is self-contained: it imports nothing from the rest of ``localrepo`` (and
the client never imports it), so it can be deployed on its own.
"""
