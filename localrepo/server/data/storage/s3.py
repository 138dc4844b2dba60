"""Image bytes in an S3-compatible bucket (``--storage s3://...``), through obstore.

Layout under the URL's prefix, as in the data folder::

    blobs/<aa>/<sha256>             the stored bytes
    thumbs/<aa>/<sha256>.jpg        thumbnails: derived, made on first request, rebuildable

Thumbnails live in the bucket too, so that every server process (on any machine) finds
the one another made. A PUT is atomic (an object appears whole or not at all), so there
are no temp files; an interrupted multipart upload (objects over 5 MiB) stays hidden in
the bucket until a lifecycle rule drops it (docs/server.md, "Object storage").

``put`` always writes: an object's time is its last write, which the sweep's grace
period counts from, and a new upload (the common case) costs one request, not a HEAD
first. Creation, re-use and removal of one hash hold its lock across processes
(locks.py), so a removal never takes bytes an upload is committing a row for.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from .base import Listed, StorageUnavailable
from .locks import BlobLocks, Held
from .url import StorageURL

PRESIGN_SECONDS = 300


def _reason(exc: BaseException) -> str:
    """A short, secret-free reason from an obstore error (its first line, or the S3
    error code it quotes)."""
    text = str(exc)
    code = re.search(r"<Code>([^<]+)</Code>", text)
    if code:
        return code.group(1)
    if "169.254.169.254" in text:  # no keys in the environment: it tried instance metadata
        return "no credentials in the environment"
    if "error sending request" in text:
        return "the endpoint does not answer"
    status = re.search(r"status code: (\d{3}[A-Za-z ]*)", text)
    if status:
        return status.group(1).strip()
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:200]


class S3Storage:
    def __init__(self, where: StorageURL, locks: BlobLocks | None = None):
        from obstore.store import S3Store

        self.shown = where.shown
        self._locks = locks or BlobLocks()
        config: dict[str, Any] = {}
        if where.endpoint:
            config["endpoint"] = where.endpoint
        if where.region:
            config["region"] = where.region
        self._store = S3Store(
            where.bucket,
            prefix=where.prefix or None,
            client_options={
                "allow_http": where.endpoint.startswith("http://"),
                "connect_timeout": "5s",
                "timeout": "60s",
            },
            retry_config={"max_retries": 3, "retry_timeout": timedelta(seconds=20)},
            **config,
        )

    @staticmethod
    def _key(sha256: str, thumb: bool) -> str:
        if thumb:
            return f"thumbs/{sha256[:2]}/{sha256}.jpg"
        return f"blobs/{sha256[:2]}/{sha256}"

    def locked(self, sha256: str) -> contextlib.AbstractContextManager[None]:
        return self._locks.locked(sha256)

    def try_lock(self, sha256: str) -> Held | None:
        return self._locks.try_lock(sha256)

    def check(self) -> str | None:
        import obstore

        try:
            next(iter(obstore.list(self._store, prefix="blobs/", chunk_size=1)), None)
        except Exception as exc:
            return _reason(exc)
        return None

    def require(self) -> None:
        """Raise `StorageUnavailable` (one line: the URL, the reason, what to do)
        unless the bucket answers."""
        problem = self.check()
        if problem is not None:
            raise StorageUnavailable(
                f"--storage {self.shown}: the bucket cannot be used ({problem}). Check "
                "that the bucket exists, the endpoint and region, and the credentials in "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )

    def exists(self, sha256: str, *, thumb: bool = False) -> bool:
        import obstore

        try:
            obstore.head(self._store, self._key(sha256, thumb))
        except FileNotFoundError:
            return False
        return True

    def put(self, sha256: str, data: bytes) -> bool:
        import obstore

        obstore.put(self._store, self._key(sha256, False), data)
        return True

    def read(self, sha256: str, *, thumb: bool = False) -> bytes | None:
        import obstore

        try:
            return bytes(obstore.get(self._store, self._key(sha256, thumb)).bytes())
        except FileNotFoundError:
            return None

    def put_thumb(self, sha256: str, data: bytes) -> None:
        import obstore

        obstore.put(self._store, self._key(sha256, True), data)

    def remove(self, sha256: str) -> None:
        import obstore

        for thumb in (False, True):
            with contextlib.suppress(FileNotFoundError):
                obstore.delete(self._store, self._key(sha256, thumb))

    def local_path(self, sha256: str, *, thumb: bool = False) -> Path | None:
        return None

    def presign(self, sha256: str, content_type: str, *, thumb: bool = False) -> str:
        import obstore

        return obstore.sign(
            self._store, "GET", self._key(sha256, thumb), timedelta(seconds=PRESIGN_SECONDS)
        )

    def listing(self, *, fix_modes: bool = False) -> Iterator[Listed]:
        import obstore

        for top, in_thumbs in (("blobs/", False), ("thumbs/", True)):
            for batch in obstore.list(self._store, prefix=top, chunk_size=1000):
                for meta in batch:
                    mtime = meta["last_modified"].timestamp()
                    yield Listed(meta["path"], in_thumbs, mtime, int(meta["size"]))

    def remove_listed(self, path: str) -> bool:
        import obstore

        try:
            obstore.delete(self._store, path)
        except FileNotFoundError:
            return False
        return True

    def remove_orphan(self, sha256: str, may_remove: Callable[[float], bool]) -> int | None:
        """Under the blob's lock (an upload of these bytes holds it from its PUT to its
        commit): the object's time and ``may_remove`` read, then the removal."""
        import obstore

        with self.locked(sha256):
            try:
                meta = obstore.head(self._store, self._key(sha256, False))
            except FileNotFoundError:
                return None
            if not may_remove(meta["last_modified"].timestamp()):
                return None
            self.remove(sha256)
            return int(meta["size"])
