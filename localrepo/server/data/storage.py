"""Content-addressed image bytes on disk.

Layout under the data folder::

    blobs/<aa>/<sha256>             the stored bytes
    thumbs/<aa>/<sha256>.jpg        thumbnails: derived, made on first request, rebuildable

Files are written to a hidden temp file in their own folder (``.<name>.<random>.part``),
fsynced (blobs) and renamed into place with ``os.replace``. A rename within one folder
is much cheaper than one across folders; ``.part`` leftovers of a crash are removed at
start.

One blob can back several images (same bytes in two workspaces). Blob creation and
removal for one hash are serialised by a striped lock, held across the database commit
that adds or removes a reference, so a blob is never removed under an image that is
being committed (within one server process).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PendingBlob:
    """A blob written to its temp file, not yet fsynced and renamed into place."""

    fd: int
    tmp: str
    dest: str


class BlobStore:
    def __init__(
        self,
        blobs_dir: Path,
        thumbs_dir: Path,
        *,
        stripes: int = 256,
        fast_fsync_seconds: float = 0.001,
    ):
        self.blobs_dir = blobs_dir
        self.thumbs_dir = thumbs_dir
        self._locks = [threading.Lock() for _ in range(stripes)]
        self._made_dirs: set[str] = set()
        self._blobs = str(blobs_dir)
        # How long an fsync takes here (moving average, seconds); see fsync_is_fast.
        self.fsync_seconds = 0.0
        self.fast_fsync_seconds = fast_fsync_seconds
        for d in (blobs_dir, thumbs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.remove_partial_files()

    def partial_files(self) -> list[str]:
        """Temp files of unfinished writes (only a crash leaves any behind)."""
        found: list[str] = []
        for top in (self.blobs_dir, self.thumbs_dir):
            for sub in os.scandir(top):
                if sub.is_dir(follow_symlinks=False):
                    found.extend(
                        e.path
                        for e in os.scandir(sub.path)
                        if e.name.startswith(".") and e.name.endswith(".part")
                    )
        return found

    def remove_partial_files(self) -> None:
        for path in self.partial_files():
            with contextlib.suppress(OSError):
                os.unlink(path)

    @contextlib.contextmanager
    def locked(self, sha256: str) -> Iterator[None]:
        with self._locks[int(sha256[:8], 16) % len(self._locks)]:
            yield

    def try_lock(self, sha256: str) -> threading.Lock | None:
        """``locked`` without waiting: the acquired lock (release it), or None if busy.

        For code on the event loop, which must never block on a lock held across a
        thread's database commit."""
        lock = self._locks[int(sha256[:8], 16) % len(self._locks)]
        return lock if lock.acquire(blocking=False) else None

    def blob_path(self, sha256: str) -> Path:
        return Path(self._blob_str(sha256))

    def thumb_path(self, sha256: str) -> Path:
        return self.thumbs_dir / sha256[:2] / f"{sha256}.jpg"

    def _blob_str(self, sha256: str) -> str:
        # Plain strings on the upload path: pathlib costs more than the syscalls here.
        return f"{self._blobs}/{sha256[:2]}/{sha256}"

    def exists(self, sha256: str) -> bool:
        return os.path.isfile(self._blob_str(sha256))

    def _write_temp(self, dest: str, data: bytes) -> PendingBlob:
        parent, name = os.path.split(dest)
        if parent not in self._made_dirs:
            os.makedirs(parent, exist_ok=True)
            self._made_dirs.add(parent)
        tmp = f"{parent}/.{name}.{uuid.uuid4().hex}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        pending = PendingBlob(fd, tmp, dest)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except BaseException:
            self.abort(pending)
            raise
        return pending

    def fsync_is_fast(self) -> bool:
        """Whether an fsync may run on the event loop: while the disk answers within
        ``fast_fsync_seconds`` (1 ms: an SSD, or a write cache), the wait is shorter
        than a hand-off to a thread costs in CPU (about 0.3 ms: GIL and wake-ups). A
        slow disk (network storage, a busy HDD) is noticed within a few writes."""
        return self.fsync_seconds < self.fast_fsync_seconds

    def finish(self, pending: PendingBlob, *, durable: bool = True) -> None:
        """fsync (if durable), close and rename the temp file into place."""
        try:
            try:
                if durable:
                    started = time.perf_counter()
                    os.fsync(pending.fd)
                    took = time.perf_counter() - started
                    # A slow disk is noticed within a few writes, a fast one again too.
                    self.fsync_seconds += (took - self.fsync_seconds) * 0.2
            finally:
                os.close(pending.fd)
                pending.fd = -1
            os.replace(pending.tmp, pending.dest)
        except BaseException:
            self.abort(pending)
            raise

    def abort(self, pending: PendingBlob) -> None:
        if pending.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(pending.fd)
            pending.fd = -1
        with contextlib.suppress(OSError):
            os.unlink(pending.tmp)

    def _atomic_write(self, dest: str, data: bytes, *, durable: bool) -> None:
        self.finish(self._write_temp(dest, data), durable=durable)

    def begin_put(self, sha256: str, data: bytes) -> PendingBlob | None:
        """The first half of ``put``: None when the blob exists, else its written temp
        file, which ``finish`` (in a worker thread: it fsyncs) puts in place."""
        path = self._blob_str(sha256)
        if os.path.isfile(path):
            return None
        return self._write_temp(path, data)

    def put(self, sha256: str, data: bytes) -> bool:
        """Store ``data`` under ``sha256`` (caller holds ``locked(sha256)``).

        Returns True when this call created the blob, False when it already existed.
        """
        path = self._blob_str(sha256)
        if os.path.isfile(path):
            return False
        self._atomic_write(path, data, durable=True)
        return True

    def put_thumb(self, sha256: str, data: bytes) -> None:
        # A thumbnail is derived data: no fsync; a torn or lost one is rebuilt.
        self._atomic_write(str(self.thumb_path(sha256)), data, durable=False)

    def remove(self, sha256: str) -> None:
        """Remove a blob and its thumbnail (caller holds ``locked(sha256)``)."""
        for path in (self.blob_path(sha256), self.thumb_path(sha256)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
