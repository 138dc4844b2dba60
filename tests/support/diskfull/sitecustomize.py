"""Fault injection for a server subprocess (tests/server/test_server_diskfull.py): with
this folder on PYTHONPATH, a write to a file under a ``blobs/`` folder fails with ENOSPC
(the disk is full) while the file named by ``$LOCALREPO_TEST_DISK_FULL`` exists."""

from __future__ import annotations

import errno
import os

_FLAG = os.environ.get("LOCALREPO_TEST_DISK_FULL", "")
_write = os.write


def _full_write(fd: int, data: bytes | memoryview) -> int:  # type: ignore[type-arg]
    if _FLAG and os.path.exists(_FLAG):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if "/blobs/" in target:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return _write(fd, data)


if _FLAG:
    os.write = _full_write
