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


# Classes a model can actually tell apart: a shape of its own colour on a light,
# noisy background, at a random place and size (for training tests).
CLASS_LOOKS = {
    "circle": ((210, 40, 40), "ellipse"),
    "square": ((40, 160, 60), "rectangle"),
    "triangle": ((40, 70, 210), "polygon"),
}


def class_image(label: str, seed: int, *, size: int = 48) -> bytes:
    """A JPEG of class `label` (a key of CLASS_LOOKS), distinct for each seed."""
    from PIL import ImageDraw

    colour, kind = CLASS_LOOKS[label]
    rng = random.Random(f"{label}:{seed}")
    img = Image.new("RGB", (size, size), tuple(rng.randrange(200, 256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    r = rng.randrange(size // 4, size // 3 + 1)
    cx, cy = rng.randrange(r, size - r), rng.randrange(r, size - r)
    fill = tuple(min(255, max(0, c + rng.randrange(-25, 26))) for c in colour)
    if kind == "ellipse":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif kind == "rectangle":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    for _ in range(size):
        draw.point((rng.randrange(size), rng.randrange(size)), fill=(rng.randrange(256),) * 3)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def tagged_image(tags: set[str], seed: int, *, size: int = 48) -> bytes:
    """A JPEG with a red disc when "red" is in `tags` (left half) and a blue bar when
    "blue" is (right half), on grey noise: tags that can be told apart independently."""
    from PIL import ImageDraw

    rng = random.Random(f"{sorted(tags)}:{seed}")
    img = Image.new("RGB", (size, size), (rng.randrange(110, 150),) * 3)
    draw = ImageDraw.Draw(img)
    for _ in range(size * 2):
        draw.point((rng.randrange(size), rng.randrange(size)), fill=(rng.randrange(256),) * 3)
    half = size // 2
    if "red" in tags:
        r = rng.randrange(half // 3, half // 2)
        cx, cy = rng.randrange(r, half - r + 1), rng.randrange(r, size - r)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(220, 30, 30))
    if "blue" in tags:
        x = rng.randrange(half, size - 8)
        draw.rectangle((x, 4, x + 6, size - 4), fill=(30, 40, 220))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def brightness_image(value: float, seed: int, *, size: int = 48) -> bytes:
    """A JPEG whose brightness is `value` (0..1), with a little noise: for regression."""
    rng = random.Random(f"{value}:{seed}")
    level = int(30 + 200 * value)
    noise = bytes(max(0, min(255, level + rng.randrange(-12, 13))) for _ in range(size * size))
    img = Image.frombytes("L", (size, size), noise).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def jpeg_variants(size: tuple[int, int] = (320, 240)) -> list[bytes]:
    """Valid JPEGs of every kind a decoder treats differently: baseline, progressive,
    4:4:4, greyscale, CMYK (four seeds each), a tiny one, and a two-frame MPO."""
    out = []
    for seed in range(4):
        im = Image.open(io.BytesIO(image_bytes(800 + seed, size=size))).convert("RGB")
        for mode, kw in (
            ("RGB", {}),
            ("RGB", {"progressive": True}),
            ("RGB", {"subsampling": 0}),
            ("L", {}),
            ("CMYK", {}),
        ):
            buf = io.BytesIO()
            im.convert(mode).save(buf, "JPEG", **kw)
            out.append(buf.getvalue())
    out.append(image_bytes(900, size=(5, 3)))
    first = Image.open(io.BytesIO(image_bytes(901, size=size)))
    buf = io.BytesIO()
    first.save(buf, "MPO", save_all=True, append_images=[first.rotate(90)])
    out.append(buf.getvalue())
    return out


def damaged_jpegs(seed: int = 7) -> list[bytes]:
    """Every variant whole, cut at a dozen points, and with 1-6 random bytes changed a
    dozen times: mostly broken, some still decodable."""
    rng = random.Random(seed)
    cases = []
    for good in jpeg_variants():
        cases.append(good)
        cases += [good[:cut] for cut in range(2, len(good), max(1, len(good) // 12))]
        for _ in range(12):
            bad = bytearray(good)
            for _ in range(rng.randint(1, 6)):
                bad[rng.randrange(len(bad))] = rng.randrange(256)
            cases.append(bytes(bad))
    return cases


def full_decode_ok(data: bytes) -> bool:
    """The reference verdict: does a plain, full-size Pillow load accept the bytes?"""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
        return True
    except Exception:
        return False
