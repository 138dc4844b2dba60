"""File names that come from the remote, made safe to use on disk. Pure functions.

A remote file name can never write outside the repository: it becomes one file name or
a fallback. (Label names map to folder names through localrepo/labelnames.py.)
"""

from __future__ import annotations

import posixpath
import unicodedata

from localrepo.layout import IMAGE_EXTENSIONS

MAX_NAME_BYTES = 200  # a file name's, leaving room for a suffix and a temp prefix
FORMAT_EXTENSIONS = {
    "JPEG": "jpg",
    "PNG": "png",
    "GIF": "gif",
    "BMP": "bmp",
    "WEBP": "webp",
    "TIFF": "tif",
    "MPO": "jpg",
}


def file_name(original: object, image_id: str, fmt: str | None) -> str:
    """A safe file name for a downloaded image: its original name when usable."""
    ext = FORMAT_EXTENSIONS.get((fmt or "").upper(), "jpg")
    fallback = f"{_safe_id(image_id)}.{ext}"
    if not isinstance(original, str):
        return fallback
    name = unicodedata.normalize("NFC", original).replace("\\", "/")
    name = posixpath.basename(name)
    name = "".join(ch for ch in name if ch.isprintable() and ch != "\0").strip()
    if not name or name in (".", "..") or name[0] in ".~":
        return fallback
    stem, dot, suffix = name.rpartition(".")
    if not dot or suffix.lower() not in IMAGE_EXTENSIONS:
        stem, suffix = name, ext
    while len(f"{stem}.{suffix}".encode()) > MAX_NAME_BYTES and stem:
        stem = stem[:-1]
    return f"{stem}.{suffix}" if stem else fallback


def _safe_id(image_id: str) -> str:
    cleaned = "".join(ch for ch in image_id if ch.isalnum() or ch in "-_")
    return cleaned[:64] or "image"


def with_suffix(name: str, n: int) -> str:
    """`a.jpg` -> `a (2).jpg`: the name for the n-th clash, never an overwrite."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        return f"{name} ({n})"
    return f"{stem} ({n}).{ext}"
