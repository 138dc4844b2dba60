"""Hash and check one file: the scanner's unit of work, run in a worker pool.

The file is read through one descriptor opened without following symlinks, with fstat
before and after: if size, mtime, ctime or inode moved while we read, the result is
"changed while hashing" and the file is retried on a later scan. Then Pillow fully
decodes the bytes (`verify()` passes a half-truncated JPEG; only `load()` catches it),
inside the decompression-bomb limit; a JPEG at 1/8 scale (see check_image()).
"""

from __future__ import annotations

import errno
import io
import os
import stat as stat_mod
import struct
import warnings
from typing import NamedTuple

from localrepo.scan.jpeg_confirm import confirm_jpeg, draft_request

MAX_FILE_BYTES = 64 * 1024 * 1024

# Reasons a file is not a valid image, as shown by `repo status`.
EMPTY = "empty file"
TRUNCATED = "truncated image"
NOT_AN_IMAGE = "not an image"
TOO_LARGE = "too large"
UNREADABLE = "unreadable"
SYMLINK = "symlink skipped"
NOT_REGULAR = "not a regular file"
CHANGED = "changed while hashing"


class Examined(NamedTuple):
    """One file's result. A NamedTuple: results travel back from the worker processes
    by pickle, and a tuple unpickles several times faster than a dataclass."""

    path: str  # as given (repository-relative)
    dev: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int
    hash: str | None  # xxh3_128 hex of the bytes; None when unreadable or changed
    width: int | None = None
    height: int | None = None
    format: str | None = None
    reason: str | None = None  # None when this is a valid image
    detail: str | None = None  # the underlying error, for the curious


def hash_bytes(data: bytes) -> str:
    import xxhash  # here, not at the top: a no-change status never hashes

    return xxhash.xxh3_128_hexdigest(data)


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def examine(root: str, relpath: str, *, decode: bool = True) -> Examined:
    """Hash (and unless told otherwise, fully decode) root/relpath."""
    try:
        fd = os.open(f"{root}/{relpath}", os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Examined(relpath, 0, 0, 0, 0, 0, None, reason=SYMLINK)
        if exc.errno == errno.ENOENT:  # gone since the walk: rescanned, not guessed at
            return Examined(relpath, 0, 0, 0, 0, 0, None, reason=CHANGED)
        return Examined(relpath, 0, 0, 0, 0, 0, None, reason=UNREADABLE, detail=exc.strerror)
    try:
        before = os.fstat(fd)
        if not stat_mod.S_ISREG(before.st_mode):
            return _without_hash(relpath, before, NOT_REGULAR)
        if before.st_size > MAX_FILE_BYTES:
            return _without_hash(
                relpath, before, TOO_LARGE, f"{before.st_size} bytes > {MAX_FILE_BYTES}"
            )
        try:
            data = _read_all(fd, before.st_size)
        except OSError as exc:
            return _without_hash(relpath, before, UNREADABLE, exc.strerror)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if _stat_key(before) != _stat_key(after) or len(data) != after.st_size:
        return _without_hash(relpath, after, CHANGED)
    digest = hash_bytes(data)
    dev, ino, size, mtime_ns, ctime_ns = _stat_key(after)
    if size == 0:
        return Examined(relpath, dev, ino, size, mtime_ns, ctime_ns, digest, reason=EMPTY)
    if not decode:
        return Examined(relpath, dev, ino, size, mtime_ns, ctime_ns, digest)
    reason, detail, dims = check_image(data, relpath)
    w, h, fmt = dims if dims else (None, None, None)
    return Examined(relpath, dev, ino, size, mtime_ns, ctime_ns, digest, w, h, fmt, reason, detail)


def _without_hash(
    relpath: str, st: os.stat_result, reason: str, detail: str | None = None
) -> Examined:
    dev, ino, size, mtime_ns, ctime_ns = _stat_key(st)
    return Examined(relpath, dev, ino, size, mtime_ns, ctime_ns, None, reason=reason, detail=detail)


def _read_all(fd: int, size_hint: int) -> bytes:
    chunks = []
    got = 0
    while True:
        want = max(size_hint - got + 1, 1 << 16)  # one more byte tells us the file grew
        chunk = os.read(fd, want)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
        if got == size_hint and len(chunk) < want:
            break  # a short read that ends where fstat said: the end, one read(2) saved
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# What Image.open() takes as "this plugin does not fit": it then tries the next one.
_NOT_THIS_FORMAT = (SyntaxError, IndexError, TypeError, struct.error)


def _open(image_mod, data: bytes, hint: str | None):  # type: ignore[no-untyped-def]
    """Image.open(), with the plugin the file's extension names tried first, through
    Pillow's registry (Image.OPEN) rather than Image.open(): its dispatch costs about a
    tenth of a small JPEG's check. Whatever that plugin refuses goes to Image.open()
    unhinted, so a file whose extension lies gets exactly Image.open()'s verdict."""
    entry = image_mod.OPEN.get(hint) if hint is not None else None
    if entry is not None:
        factory, accept = entry
        fits = not accept or accept(data[:16])
        if fits and not isinstance(fits, str):  # a str: a warning, as Image.open() reads it
            try:
                return factory(io.BytesIO(data), "")
            except _NOT_THIS_FORMAT:
                pass  # not what its name says: identify it by content below
    return image_mod.open(io.BytesIO(data))


_image_module = None
_jpeg_block = 65536  # ImageFile.MAXBLOCK: what ImageFile.load() reads at a time


def _pillow():  # -> the PIL.Image module, set up once per process
    global _image_module, _jpeg_block
    if _image_module is None:
        from PIL import Image, ImageFile

        _jpeg_block = ImageFile.MAXBLOCK

        # Above MAX_IMAGE_PIXELS Pillow only warns (it raises above twice that); we refuse
        # both, by the explicit check in check_image(), and keep the warning quiet. A
        # process-wide filter: catch_warnings() per file costs more than a thumbnail.
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        _image_module = Image
    return _image_module


# The Pillow format a file's extension names: tried first, so that a JPEG is not probed
# against every other format's signature (about a tenth of a small image's decode time).
FORMAT_BY_EXTENSION = {
    "jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "gif": "GIF",
    "webp": "WEBP", "tif": "TIFF", "tiff": "TIFF",
}  # fmt: skip


# Formats whose Pillow decoder can decode at a reduced scale (JpegImageFile.draft); MPO is
# a JPEG with more frames after the first.
_SCALED_FORMATS = frozenset({"JPEG", "MPO"})


def check_image(
    data: bytes, name: str = "", *, full_scale: bool = False
) -> tuple[str | None, str | None, tuple[int, int, str] | None]:
    """(reason, detail, (width, height, format)): reason is None for a valid image.

    The whole image is decoded. `name` only hints at the format; a file whose extension
    lies (a PNG named .jpg) is still identified by its content.

    A JPEG is decoded at 1/8 scale unless `full_scale`: libjpeg still reads and
    entropy-decodes every block of every scan, which is where a broken JPEG fails
    (truncation, bad markers, corrupt Huffman data), and skips only the full-size inverse
    DCT, upsampling and colour conversion: 40-60 % of a small JPEG's check. The verdicts
    are those of a full decode (tests/scan/test_image_check.py compares them on hundreds of
    truncated and corrupted variants).

    A file named .jpg or .jpeg is first offered to jpeg_confirm.confirm_jpeg(), which
    runs the same decoder call without Pillow's Python and can only confirm a plain
    valid JPEG; whatever it cannot confirm is checked as above.
    """
    image_mod = _pillow()
    hint = FORMAT_BY_EXTENSION.get(name.rpartition(".")[2].lower())
    if hint == "JPEG" and not full_scale:
        # The full check's first step would be the JPEG plugin on these bytes: confirm
        # the common case, a plain valid JPEG, in a third of the time (jpeg_confirm.py).
        size = confirm_jpeg(data, image_mod.core, image_mod.MAX_IMAGE_PIXELS, _jpeg_block)
        if size is not None:
            return None, None, (size[0], size[1], "JPEG")
    try:
        with _open(image_mod, data, hint) as im:
            width, height = im.size
            dims = (width, height, im.format or "")
            # Checked here too: the process-wide warning filter is undone by anything that
            # restores filters (warnings.catch_warnings(), pytest), and then a bomb between
            # the limit and twice the limit would only warn, and be decoded. (The hinted
            # open skips Image.open()'s own check: this one covers both.)
            limit = image_mod.MAX_IMAGE_PIXELS
            if limit and width * height > limit:
                return (
                    TOO_LARGE,
                    f"{width}x{height} pixels exceeds the limit of {limit} pixels",
                    None,
                )
            if not full_scale and dims[2] in _SCALED_FORMATS:
                im.draft(im.mode, draft_request(width, height))
            im.load()
    except (image_mod.DecompressionBombError, image_mod.DecompressionBombWarning) as exc:
        return TOO_LARGE, str(exc), None
    except image_mod.UnidentifiedImageError:
        return NOT_AN_IMAGE, "Pillow cannot identify the image format", None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        msg = str(exc)
        if "truncated" in msg or "broken data stream" in msg or isinstance(exc, EOFError):
            return TRUNCATED, msg, None
        return NOT_AN_IMAGE, msg, None
    return None, None, dims


def examine_batch(root: str, relpaths: list[str], decode_flags: list[bool]) -> list[Examined]:
    """Worker-pool entry point: one round trip per batch, not per file."""
    return [examine(root, p, decode=d) for p, d in zip(relpaths, decode_flags, strict=True)]


def warm_up() -> None:
    """Import what examining needs (before forking workers, or in a worker that has
    nothing to do yet): Pillow's common plugins. Not Image.init(), which imports all of
    them (40 ms); Image.open() does that itself the first time a file needs it."""
    import xxhash  # noqa: F401
    from PIL import JpegImagePlugin, PngImagePlugin  # noqa: F401

    _pillow().preinit()
