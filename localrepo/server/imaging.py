"""Decoding, checking, resizing and thumbnailing uploaded images (Pillow)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageOps

# Formats accepted for upload; anything else Pillow may open (PSD, ICO, ...) is refused.
ACCEPTED_FORMATS = {"JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF", "MPO"}
_EXTENSIONS = {
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "PNG": ".png",
    "GIF": ".gif",
    "BMP": ".bmp",
    "WEBP": ".webp",
    "TIFF": ".tiff",
}
_CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
}
_DATA_URI = re.compile(rb"^\s*data:[\w.+/-]*(?:;[\w=.+-]+)*;base64,", re.IGNORECASE)


class ImageRejected(ValueError):
    """The upload is not an image this server stores; the message says why."""


class OverBudget(Exception):
    """The image is valid so far but costs more to decode than the caller allowed."""


def configure_pillow(max_image_pixels: int) -> None:
    """Process-wide: the decompression-bomb limit, and its warning made an error."""
    Image.MAX_IMAGE_PIXELS = max_image_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def decode_base64(payload: str | bytes) -> bytes:
    """Bare base64 or a data URI (``data:image/jpeg;base64,...``)."""
    raw = payload.encode("ascii", "ignore") if isinstance(payload, str) else payload
    match = _DATA_URI.match(raw)
    if match:
        raw = raw[match.end() :]
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        pass
    # Tolerate line breaks, missing padding and the URL-safe alphabet.
    cleaned = re.sub(rb"\s+", b"", raw).replace(b"-", b"+").replace(b"_", b"/")
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageRejected(f"not valid base64 ({exc})") from exc


@dataclass(frozen=True)
class StoredImage:
    data: bytes  # the bytes to store (the upload itself, or the resized image)
    sha256: str
    width: int
    height: int
    content_type: str
    extension: str


def _encode(im: Image.Image, fmt: str) -> tuple[bytes, str]:
    out = io.BytesIO()
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if fmt in ("PNG", "WEBP") or (has_alpha and fmt != "JPEG"):
        target = "WEBP" if fmt == "WEBP" else "PNG"
        im.save(out, target, **({"quality": 90} if target == "WEBP" else {"optimize": False}))
        return out.getvalue(), target
    if im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    im.save(out, "JPEG", quality=90)
    return out.getvalue(), "JPEG"


def decoded_bytes(im: Image.Image, *, resampled: bool) -> int:
    """What decoding ``im`` (at its draft size, if one was set) holds in memory: its
    pixels, twice when a resized copy is made from them (the budget's unit)."""
    width, height = im.size
    bands = max(1, len(im.getbands())) * (2 if im.mode.startswith("I;16") else 1)
    if im.mode in ("I", "F"):
        bands = 4
    return width * height * bands * (2 if resampled else 1)


def no_reservation(nbytes: int) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


def prepare(
    upload: bytes,
    *,
    noresize: bool,
    resize_to: int,
    max_pixels: int | None = None,
    reserve: Callable[[int], contextlib.AbstractContextManager[None]] = no_reservation,
) -> StoredImage:
    """Check that ``upload`` fully decodes, then return what to store.

    With ``noresize`` (or an image already within ``resize_to``), the stored bytes are the
    uploaded bytes, untouched. Otherwise the image is shrunk so that its longer side is
    ``resize_to`` and re-encoded.

    ``max_pixels``: raise ``OverBudget`` (after reading only the header) when the image
    has more pixels than that or needs resizing; the caller then does it elsewhere.
    ``reserve(n)``: held while the pixels are decoded, ``n`` the bytes they take
    (``decoded_bytes``); the server's ``DecodeBudget`` makes excess decodes wait.
    """
    if not upload:
        raise ImageRejected("the image is empty")
    try:
        with Image.open(io.BytesIO(upload)) as im:
            fmt = im.format or ""
            if fmt not in ACCEPTED_FORMATS:
                raise ImageRejected(
                    f"unsupported image format {fmt or 'unknown'!r}; accepted: "
                    + ", ".join(sorted(ACCEPTED_FORMATS - {"MPO"}))
                )
            width, height = im.size
            if max_pixels is not None and (
                width * height > max_pixels or not (noresize or max(width, height) <= resize_to)
            ):
                raise OverBudget
            keep = noresize or max(width, height) <= resize_to
            if not keep and fmt in ("JPEG", "MPO"):
                # Decode straight at the smallest DCT scale (1/2, 1/4, 1/8) that still
                # leaves the longer side at least ``resize_to``: an 81-megapixel photo
                # then takes about 4 MB instead of 243 MB (docs/server.md, "Limits").
                longer = max(width, height)
                im.draft(
                    im.mode,
                    (-(-width * resize_to // longer), -(-height * resize_to // longer)),
                )
            if keep and fmt in ("JPEG", "MPO"):
                # Only the check is needed, not the pixels: libjpeg's 1/8 DCT scaling
                # still reads and entropy-decodes every block (where a broken JPEG
                # fails: truncation, bad markers) but skips the full-size IDCT and
                # colour conversion; about half the cost. Same verdicts as a full
                # decode (tests/server/test_server_upload_paths.py).
                im.draft(im.mode, (max(1, width // 8), max(1, height // 8)))
            with reserve(decoded_bytes(im, resampled=not keep)):
                im.load()
                if keep:
                    return StoredImage(
                        data=upload,
                        sha256=hashlib.sha256(upload).hexdigest(),
                        width=width,
                        height=height,
                        content_type=_CONTENT_TYPES[fmt],
                        extension=_EXTENSIONS[fmt],
                    )
                oriented = ImageOps.exif_transpose(im)
                oriented.thumbnail((resize_to, resize_to), Image.Resampling.LANCZOS)
                data, out_fmt = _encode(oriented, fmt)
            return StoredImage(
                data=data,
                sha256=hashlib.sha256(data).hexdigest(),
                width=oriented.width,
                height=oriented.height,
                content_type=_CONTENT_TYPES[out_fmt],
                extension=_EXTENSIONS[out_fmt],
            )
    except (ImageRejected, OverBudget):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"the image is too large to decode safely ({exc})") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageRejected("the data is not an image Pillow can identify") from exc
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise ImageRejected(f"the image does not decode ({exc})") from exc


def make_thumbnail(
    data: bytes,
    size: int,
    reserve: Callable[[int], contextlib.AbstractContextManager[None]] = no_reservation,
) -> bytes:
    """A JPEG of at most ``size`` px a side; ``reserve`` as for ``prepare``."""
    with Image.open(io.BytesIO(data)) as source:
        if source.format == "JPEG":
            source.draft("RGB", (size, size))
        with reserve(decoded_bytes(source, resampled=True)):
            im: Image.Image = ImageOps.exif_transpose(source)
            im.thumbnail((size, size), Image.Resampling.LANCZOS)
            if im.mode not in ("RGB", "L"):
                background = Image.new("RGB", im.size, (255, 255, 255))
                rgba = im.convert("RGBA")
                background.paste(rgba, mask=rgba.getchannel("A"))
                im = background
            out = io.BytesIO()
            im.save(out, "JPEG", quality=80)
            return out.getvalue()
