"""What every blob store offers (``Storage``): the local data folder (local.py) and an
S3-compatible bucket (s3.py) both keep image bytes by their sha256 and thumbnails beside
them, and are chosen by ``--storage`` (url.py, ``open_storage`` in __init__.py).

A blob is complete before its row is committed (a row never lacks its bytes); a crash in
between leaves an orphan, which the sweep (server/fsck.py) removes once it is older than
its grace period. Creating, re-using and removing one blob are serialised by
``locked(sha)`` across processes (locks.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

from .locks import Held


class StorageFull(Exception):
    """The disk (or the quota) is full; nothing was left behind."""


class StorageUnavailable(Exception):
    """The store cannot be reached or used; the message names it and what to do."""


class Listed(NamedTuple):
    """An object or file the sweep found: its path (or key), whether it is under
    ``thumbs/``, its last change (epoch seconds) and size."""

    path: str
    in_thumbs: bool
    mtime: float
    size: int


class Storage(Protocol):
    shown: str  # where the bytes are, for messages (secrets never appear in it)

    def locked(self, sha256: str) -> contextlib.AbstractContextManager[None]: ...

    def try_lock(self, sha256: str) -> Held | None: ...

    def check(self) -> str | None:
        """None when the store can be used, else what is wrong (one line)."""

    def exists(self, sha256: str, *, thumb: bool = False) -> bool: ...

    def put(self, sha256: str, data: bytes) -> bool:
        """Store ``data`` (caller holds ``locked``): whether it may have created the
        blob (the caller removes it again if its row fails and no row refers to it)."""

    def read(self, sha256: str, *, thumb: bool = False) -> bytes | None:
        """The bytes, or None when they are not stored."""

    def put_thumb(self, sha256: str, data: bytes) -> None: ...

    def remove(self, sha256: str) -> None:
        """Remove a blob and its thumbnail (caller holds ``locked``)."""

    def local_path(self, sha256: str, *, thumb: bool = False) -> Path | None:
        """The file to serve, for a store on this machine's disk; else None."""

    def presign(self, sha256: str, content_type: str, *, thumb: bool = False) -> str | None:
        """A short-lived URL a client may GET the bytes from; None if there is none."""

    def listing(self, *, fix_modes: bool = False) -> Iterator[Listed]: ...

    def remove_listed(self, path: str) -> bool:
        """Remove what ``listing`` named ``path``; False when it was already gone."""

    def remove_orphan(self, sha256: str, may_remove: Callable[[float], bool]) -> int | None:
        """Remove the blob (and its thumbnail) if ``may_remove(mtime)`` says so at the
        last moment; the bytes removed, or None when kept or already gone."""
