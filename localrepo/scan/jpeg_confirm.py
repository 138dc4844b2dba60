"""Confirm that a small JPEG is valid without Pillow's Python: its own libjpeg decoder,
called directly, the way `ImageFile.load()` calls it.

check_image()'s verdict on a file named .jpg is that of Pillow's JPEG plugin and
`load()`. For a small JPEG about two thirds of that check is Pillow's Python: the header
parse reads the file a byte or a segment at a time through a file object, fills dicts the
scanner never looks at, and `load()` goes through tile bookkeeping. Here the header is
read from the bytes already in memory, and only when every segment in it is one whose
handling by Pillow (13.x, `JpegImagePlugin._open`) is reproduced exactly below does the
decoder run, with the same arguments, the same scale and the same chunks of data as
`load()` would give it.

This can only ever say "valid, this size". Anything it does not reproduce, whether a
segment it does not know (EXIF, ICC profiles, MPO indexes, Photoshop resources, fill
bytes, junk between segments, a second frame header), a decoder error, truncation, or an
image over the pixel limit, gives None, and the full check decides. So no verdict of
"invalid" or "too large" ever comes from here. tests/scan/test_jpeg_confirm.py holds it to
that on mutated headers and cut files: whatever this confirms, the full check accepts,
with the same size.
"""

from __future__ import annotations

from typing import Any

# Payload prefixes Pillow's APP handler parses further (JpegImagePlugin.APP); a segment
# starting with one of them is left to the full check. XMP and FlashPix only store bytes.
_PARSED_APP = {
    0xE1: (b"Exif\x00\x00",),  # EXIF: read again for the DPI, which can fail
    0xE2: (b"ICC_PROFILE\x00", b"MPF\x00"),  # ICC fix-up at the frame header; MPO
    0xED: (b"Photoshop 3.0\x00",),  # resource blocks: an IndexError escapes its parser
}
_SOF = frozenset({0xC0, 0xC1, 0xC2})  # baseline, extended sequential, progressive
_SKIPPED = frozenset({0xC4, 0xDD, 0xFE})  # DHT, DRI, COM: read and not looked into
_MODES = {1: "L", 3: "RGB"}


def frame_header(data: bytes) -> tuple[int, int, str] | None:
    """(width, height, mode) when Pillow's JPEG plugin opens `data` with exactly this
    result and every segment before the first scan is one reproduced here; else None.

    Pillow reads the segment after SOI at offset 2 (it checks the first three bytes,
    then reads markers from offset 3 with the 0xFF at 2 already in hand), runs each
    marker's handler and stops after the start-of-scan header."""
    if data[:3] != b"\xff\xd8\xff":
        return None
    end_of_data = len(data)
    pos = 2
    frame: tuple[int, int, str] | None = None
    while True:
        if pos + 4 > end_of_data or data[pos] != 0xFF:
            return None  # the end, or junk Pillow would skip a byte at a time
        marker = data[pos + 1]
        length = (data[pos + 2] << 8) | data[pos + 3]
        start, pos = pos + 4, pos + 2 + length
        if length < 2 or pos > end_of_data:
            # Below 2 Pillow reads no payload and goes on 2 bytes later; libjpeg refuses
            # the length. Left to the full check rather than reproduced.
            return None
        if marker == 0xDA:  # start of scan: Pillow stops here (with a frame seen)
            return frame
        if marker in _SKIPPED:
            continue
        payload = data[start:pos]
        if marker == 0xDB:
            if not _quantization_tables_ok(payload):
                return None
        elif marker in _SOF:
            if frame is not None:
                return None  # Pillow takes the second's size, libjpeg refuses it: left alone
            frame = _frame(payload)
            if frame is None:
                return None
        elif 0xE0 <= marker <= 0xEF:
            if not _application_segment_ok(marker, payload):
                return None
        else:
            return None  # any other marker: not reproduced here


def _frame(payload: bytes) -> tuple[int, int, str] | None:
    """(width, height, mode) of a start-of-frame segment, as Pillow's SOF handler reads
    it: bits at 0, height at 1, width at 3, layer count at 5, then 3 bytes per layer (a
    shorter last one raises IndexError); the frame must have a mode and a size above 0."""
    mode = _MODES.get(payload[5]) if len(payload) >= 6 else None
    if mode is None or payload[0] != 8 or len(payload) != 6 + 3 * payload[5]:
        return None
    width = (payload[3] << 8) | payload[4]
    height = (payload[1] << 8) | payload[2]
    if width == 0 or height == 0:
        return None
    return (width, height, mode)


def _application_segment_ok(marker: int, payload: bytes) -> bool:
    """Whether Pillow's APP handler only stores this segment (else the full check)."""
    if marker == 0xE0 and payload.startswith(b"JFIF") and len(payload) < 7:
        return False  # Pillow reads the JFIF version at 5: struct.error
    if marker == 0xEE and payload.startswith(b"Adobe") and len(payload) < 7:
        return False  # likewise the Adobe version
    return not payload.startswith(_PARSED_APP.get(marker, ()))


def _quantization_tables_ok(payload: bytes) -> bool:
    """JpegImagePlugin.DQT: tables of 1 + 64 or 1 + 128 bytes (by the precision nibble)
    until the segment ends; a short one raises SyntaxError."""
    offset = 0
    while offset < len(payload):
        table_length = 65 if payload[offset] < 16 else 129
        if len(payload) - offset < table_length:
            return False
        offset += table_length
    return True


def draft_request(width: int, height: int) -> tuple[int, int]:
    """The size check_image() asks JpegImageFile.draft() for: an eighth of the image."""
    return max(1, width // 8), max(1, height // 8)


def draft_scale(width: int, height: int) -> int:
    """The scale JpegImageFile.draft() picks for draft_request(): the largest of 8, 4,
    2, 1 not above the size ratio."""
    asked_width, asked_height = draft_request(width, height)
    ratio = min(width // asked_width, height // asked_height)
    for scale in (8, 4, 2, 1):
        if ratio >= scale:
            return scale
    return 1


def confirm_jpeg(
    data: bytes, core: Any, max_pixels: int | None, block: int
) -> tuple[int, int] | None:
    """(width, height) when `data` is a JPEG that check_image() would call valid, decided
    by the same decoder call; None when this cannot tell (the full check decides).

    `core` is PIL.Image.core, `max_pixels` Image.MAX_IMAGE_PIXELS and `block`
    ImageFile.MAXBLOCK: what ImageFile.load() reads at a time."""
    frame = frame_header(data)
    if frame is None:
        return None
    width, height, mode = frame
    if max_pixels and width * height > max_pixels:
        return None  # the full check reports it as too large
    scale = draft_scale(width, height)
    size = ((width + scale - 1) // scale, (height + scale - 1) // scale)
    # ImageFile.load(): the tile's decoder with (rawmode, "") + draft's (scale, 0), on an
    # image of the drafted size, fed `block` bytes at a time; a decoder that still wants
    # data at the end of the file means a truncated image, an error code below 0 a broken
    # one.
    try:
        decoder = core.jpeg_decoder(mode, mode, "", scale, 0)
        try:
            decoder.setimage(core.new(mode, size), (0, 0, *size))
            pending = b""
            offset = 0
            while True:
                chunk = data[offset : offset + block]
                if not chunk:
                    return None  # truncated
                offset += len(chunk)
                pending += chunk
                consumed, err_code = decoder.decode(pending)
                if consumed < 0:
                    break
                pending = pending[consumed:]
        finally:
            decoder.cleanup()
    except Exception:  # anything unexpected: the full check decides
        return None
    return (width, height) if err_code >= 0 else None
