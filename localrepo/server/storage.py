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
import uuid
from collections.abc import Iterator
from pathlib import Path


class BlobStore:
    def __init__(self, blobs_dir: Path, thumbs_dir: Path, *, stripes: int = 256):
        self.blobs_dir = blobs_dir
        self.thumbs_dir = thumbs_dir
        self._locks = [threading.Lock() for _ in range(stripes)]
        self._made_dirs: set[str] = set()
        self._blobs = str(blobs_dir)
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

    def blob_path(self, sha256: str) -> Path:
        return Path(self._blob_str(sha256))

    def thumb_path(self, sha256: str) -> Path:
        return self.thumbs_dir / sha256[:2] / f"{sha256}.jpg"

    def _blob_str(self, sha256: str) -> str:
        # Plain strings on the upload path: pathlib costs more than the syscalls here.
        return f"{self._blobs}/{sha256[:2]}/{sha256}"

    def exists(self, sha256: str) -> bool:
        return os.path.isfile(self._blob_str(sha256))

    def _atomic_write(self, dest: str, data: bytes, *, durable: bool) -> None:
        parent, name = os.path.split(dest)
        if parent not in self._made_dirs:
            os.makedirs(parent, exist_ok=True)
            self._made_dirs.add(parent)
        tmp = f"{parent}/.{name}.{uuid.uuid4().hex}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

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
