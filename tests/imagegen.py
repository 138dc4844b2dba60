"""Real image bytes for tests and benchmarks: small, distinct, decodable by Pillow."""

from __future__ import annotations

import io
import random

from PIL import Image


def image_bytes(seed: int, *, size: tuple[int, int] = (64, 48), fmt: str = "JPEG") -> bytes:
    """Deterministic, distinct image bytes: smooth colour blobs seeded by `seed`."""
    rng = random.Random(seed)
    small = Image.frombytes("RGB", (8, 6), rng.randbytes(8 * 6 * 3))
    img = small.resize(size, Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, fmt, quality=85)
    else:
        img.save(buf, fmt)
    return buf.getvalue()


def truncated_jpeg(seed: int = 1) -> bytes:
    """A JPEG cut in half: Pillow's verify() passes it, only a full load() fails."""
    data = image_bytes(seed, size=(256, 256))
    return data[: len(data) // 2]


def decompression_bomb_png() -> bytes:
    """A tiny PNG that claims more pixels than Pillow's decompression-bomb limit."""
    img = Image.new("1", (13000, 13000), 0)  # 169 Mpx > 2 * 89 Mpx: an outright bomb
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()
