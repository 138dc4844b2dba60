"""Real, distinct, decodable image bytes for the client tests."""

from __future__ import annotations

import io
import random

from PIL import Image


def jpeg(seed: int, size: tuple[int, int] = (48, 32)) -> bytes:
    rng = random.Random(seed)
    small = Image.frombytes("RGB", (4, 3), rng.randbytes(4 * 3 * 3))
    buf = io.BytesIO()
    small.resize(size, Image.Resampling.BILINEAR).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def png(seed: int, size: tuple[int, int] = (40, 30)) -> bytes:
    rng = random.Random(seed)
    img = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()
