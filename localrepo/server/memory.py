"""Memory goes back to the system after a burst of large images.

glibc's malloc serves a freed large block's size from its heap from then on (it raises
its mmap threshold up to 32 MiB the first time one is freed), and keeps what a burst
used in its per-thread arenas. Pillow holds decoded pixels in 16 MiB blocks, so after a
burst of big uploads the process keeps gigabytes it no longer uses. A fixed threshold
keeps every block of 1 MiB or more in its own mapping, returned when freed
(docs/server.md, "Limits and throttling"). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("localrepo.server")

_M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>
_THRESHOLD = 1024 * 1024


def return_large_blocks() -> bool:
    """Whether malloc now maps (and unmaps) every block of 1 MiB or more on its own."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD))
    if not ok:
        log.info("malloc's mmap threshold could not be set; memory may stay after bursts")
    return ok
