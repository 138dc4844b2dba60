"""Content-addressed image bytes in the data folder: the default ``Storage`` (base.py).

Layout under the data folder::

    blobs/<aa>/<sha256>             the stored bytes
    thumbs/<aa>/<sha256>.jpg        thumbnails: derived, made on first request, rebuildable

Files are written to a hidden temp file in their own folder (``.<name>.<random>.part``),
fsynced (blobs) and renamed into place with ``os.replace``. A rename within one folder
is much cheaper than one across folders. The blob is renamed into place before its row
is committed (a row never lacks its bytes); a crash in between leaves an orphan blob,
which the sweep (server/fsck.py, at start and in ``localrepo-server fsck``) removes,
with ``.part`` leftovers. Files are 0600 and folders 0700 (they hold users' images).

A disk that is full (``ENOSPC``, ``EDQUOT``) raises `StorageFull`, with the temp file
removed: nothing partial is left (uploads.py answers 507).

One blob can back several images (same bytes in two workspaces). Blob creation and
removal for one hash are serialised by its lock (locks.py: threads and processes), held
across the database commit that adds or removes a reference, so a blob is never removed
under an image that is being committed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .base import Listed, StorageFull
from .locks import BlobLocks, Held

FILE_MODE = 0o600
DIR_MODE = 0o700
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS


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
        locks: BlobLocks | None = None,
        fast_fsync_seconds: float = 0.001,
    ):
        self.blobs_dir = blobs_dir
        self.thumbs_dir = thumbs_dir
        self.shown = str(blobs_dir.parent)
        self._locks = locks or BlobLocks()
        self._made_dirs: set[str] = set()
        self._blobs = str(blobs_dir)
        # How long an fsync takes here (moving average, seconds); see fsync_is_fast.
        self.fsync_seconds = 0.0
        self.fast_fsync_seconds = fast_fsync_seconds
        for d in (blobs_dir, thumbs_dir):
            d.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)

    def stored_files(
        self, *, fix_modes: bool = False
    ) -> Iterator[tuple[str, bool, os.stat_result]]:
        """(path, under thumbs/, lstat) of every file in the store's hash folders;
        ``fix_modes``: make each folder 0700 and each file 0600 on the way (stores
        written before the modes were set)."""
        for top, in_thumbs in ((self.blobs_dir, False), (self.thumbs_dir, True)):
            if fix_modes:
                _chmod(str(top), DIR_MODE)
            for sub in os.scandir(top):
                if not sub.is_dir(follow_symlinks=False):
                    continue
                if fix_modes:
                    _chmod(sub.path, DIR_MODE)
                for entry in os.scandir(sub.path):
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:  # removed meanwhile
                        continue
                    if fix_modes and st.st_mode & 0o777 != FILE_MODE:
                        _chmod(entry.path, FILE_MODE)
                    yield entry.path, in_thumbs, st

    def remove_orphan(self, sha256: str, may_remove: Callable[[float], bool]) -> int | None:
        """Remove the blob ``sha256`` and its thumbnail if ``may_remove(mtime)`` still
        says so once the blob is out of sight. The blob is first renamed to a temp name;
        an upload of the same bytes in a running server then either finds no blob and
        writes it anew, or had already refreshed its time (``put``) or committed its row
        before the rename, which ``may_remove`` sees (the time, the database), and the
        blob is put back. Under the blob's lock besides, which an upload holds from its
        blob to its commit, so that another server process's upload is waited for too.
        The bytes removed; None when kept (or already gone)."""
        with self.locked(sha256):
            return self._remove_orphan(sha256, may_remove)

    def _remove_orphan(self, sha256: str, may_remove: Callable[[float], bool]) -> int | None:
        dest = self._blob_str(sha256)
        parent, name = os.path.split(dest)
        aside = f"{parent}/.{name}.{uuid.uuid4().hex}.part"
        try:
            os.rename(dest, aside)
            st = os.lstat(aside)
        except FileNotFoundError:
            return None
        if not may_remove(st.st_mtime):
            os.replace(aside, dest)
            return None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(aside)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.thumb_path(sha256))
        return st.st_size

    def locked(self, sha256: str) -> contextlib.AbstractContextManager[None]:
        return self._locks.locked(sha256)

    def try_lock(self, sha256: str) -> Held | None:
        """``locked`` without waiting: the acquired lock (release it), or None if busy.

        For code on the event loop, which must never block on a lock held across a
        thread's database commit."""
        return self._locks.try_lock(sha256)

    def check(self) -> str | None:
        ok = self.blobs_dir.is_dir() and os.access(self.blobs_dir, os.W_OK | os.X_OK)
        return None if ok else "not writable"

    def listing(self, *, fix_modes: bool = False) -> Iterator[Listed]:
        for path, in_thumbs, st in self.stored_files(fix_modes=fix_modes):
            yield Listed(path, in_thumbs, st.st_mtime, st.st_size)

    def remove_listed(self, path: str) -> bool:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False  # finished (renamed) or removed meanwhile
        return True

    def local_path(self, sha256: str, *, thumb: bool = False) -> Path:
        return self.thumb_path(sha256) if thumb else self.blob_path(sha256)

    def presign(self, sha256: str, content_type: str, *, thumb: bool = False) -> None:
        return None  # served from the disk by the server itself

    def read(self, sha256: str, *, thumb: bool = False) -> bytes | None:
        try:
            with open(self.local_path(sha256, thumb=thumb), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def blob_path(self, sha256: str) -> Path:
        return Path(self._blob_str(sha256))

    def thumb_path(self, sha256: str) -> Path:
        return self.thumbs_dir / sha256[:2] / f"{sha256}.jpg"

    def _blob_str(self, sha256: str) -> str:
        # Plain strings on the upload path: pathlib costs more than the syscalls here.
        return f"{self._blobs}/{sha256[:2]}/{sha256}"

    def exists(self, sha256: str, *, thumb: bool = False) -> bool:
        return os.path.isfile(self.thumb_path(sha256) if thumb else self._blob_str(sha256))

    def _write_temp(self, dest: str, data: bytes) -> PendingBlob:
        parent, name = os.path.split(dest)
        if parent not in self._made_dirs:
            os.makedirs(parent, mode=DIR_MODE, exist_ok=True)
            self._made_dirs.add(parent)
        tmp = f"{parent}/.{name}.{uuid.uuid4().hex}.part"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except OSError as exc:
            if is_disk_full(exc):
                raise StorageFull(str(exc)) from exc
            raise
        pending = PendingBlob(fd, tmp, dest)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except BaseException as exc:
            self.abort(pending)
            if is_disk_full(exc):
                raise StorageFull(str(exc)) from exc
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
        except BaseException as exc:
            self.abort(pending)
            if is_disk_full(exc):
                raise StorageFull(str(exc)) from exc
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
        if _refreshed(path):
            return None
        return self._write_temp(path, data)

    def put(self, sha256: str, data: bytes) -> bool:
        """Store ``data`` under ``sha256`` (caller holds ``locked(sha256)``).

        Returns True when this call created the blob, False when it already existed.
        """
        path = self._blob_str(sha256)
        if _refreshed(path):
            return False
        self._atomic_write(path, data, durable=True)
        return True

    def put_thumb(self, sha256: str, data: bytes) -> None:
        # A thumbnail is derived data: no fsync; a torn or lost one is rebuilt, and
        # one that does not fit on a full disk is served without being kept.
        with contextlib.suppress(StorageFull):
            self._atomic_write(str(self.thumb_path(sha256)), data, durable=False)

    def remove(self, sha256: str) -> None:
        """Remove a blob and its thumbnail (caller holds ``locked(sha256)``)."""
        for path in (self.blob_path(sha256), self.thumb_path(sha256)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _refreshed(path: str) -> bool:
    """Whether the blob at ``path`` exists; if so its time is set to now, so that a
    sweep in another process (``fsck``, which spares files younger than its grace
    period) does not take it for an orphan while a new row is about to refer to it."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except OSError:  # not ours to touch (read-only store): it is there all the same
        return os.path.isfile(path)
    return True


def _chmod(path: str, mode: int) -> None:
    with contextlib.suppress(OSError):
        os.chmod(path, mode)
