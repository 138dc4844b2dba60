"""localrepo: an offline-first local repository of folder-labelled images."""

__version__ = "0.1.0"
