"""Issue 20 item 1, images of every mode Pillow opens: 16-bit greyscale PNGs, CMYK,
palettes with transparency, grey with alpha, 1-bit, 32-bit integer and float TIFFs, EXIF
rotation. Each is stored, thumbnailed and fed to the model as itself: a 16-bit image
scaled to 8 bits (not clipped to white), a thumbnail of a large 16-bit PNG answered (not
a 500), a 16-bit PNG of 4096 px resized like any other (not refused for its mode)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from localrepo.server.ml.features import decode_rgb

from .helpers import b64


def _save(im: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def grey16(size: int, value: int) -> bytes:
    """A 16-bit greyscale PNG (Pillow opens it as "I;16"), left half `value`, right
    half a quarter of it."""
    a = np.full((size, size), value, np.uint16)
    a[:, size // 2 :] = value // 4
    return _save(Image.fromarray(a))


def _mean(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(axis=0)


def _left_right(data: bytes) -> tuple[float, float]:
    with Image.open(io.BytesIO(data)) as im:
        grey = np.asarray(im.convert("L"), dtype=np.float64)
    w = grey.shape[1]
    return float(grey[:, : w // 3].mean()), float(grey[:, -w // 3 :].mean())


def _upload_and_thumb(api, data: bytes, **fields: object) -> tuple[dict, bytes]:
    r = api.post("training-image/", json={"base64": b64(data), **fields})
    assert r.status_code == 201, r.text[:300]
    image = r.json()
    thumb = api.get(image["thumb_img_path"])
    assert thumb.status_code == 200, thumb.text[:300]
    assert thumb.headers["content-type"] == "image/jpeg"
    return image, thumb.content


@pytest.mark.parametrize("size", [64, 1024, 1600])
def test_a_16_bit_png_looks_like_itself(api, size: int) -> None:
    data = grey16(size, 0x8000)  # mid grey, and a quarter of it
    image, thumb = _upload_and_thumb(api, data)
    assert (image["img_width"], image["img_height"]) == (min(size, 1024),) * 2
    left, right = _left_right(thumb)
    assert left == pytest.approx(128, abs=3) and right == pytest.approx(32, abs=3)
    stored = api.get(image["img_path"])
    assert stored.status_code == 200
    if size <= 1024:  # small enough: the upload's own bytes, all 16 bits kept
        assert stored.content == data
    else:  # resized: 8 bits, the same greys
        left, right = _left_right(stored.content)
        assert left == pytest.approx(128, abs=3) and right == pytest.approx(32, abs=3)
    # The model sees the same grey.
    left, right = _left_right(_save(decode_rgb(data)))
    assert left == pytest.approx(128, abs=3) and right == pytest.approx(32, abs=3)


def test_a_16_bit_png_of_4096_px_is_resized_not_refused(api) -> None:
    data = grey16(4096, 0xFFFF)
    image, thumb = _upload_and_thumb(api, data)
    assert (image["img_width"], image["img_height"]) == (1024, 1024)
    left, right = _left_right(thumb)
    assert left == pytest.approx(255, abs=3) and right == pytest.approx(64, abs=3)
    # With noresize the bytes are kept as they came.
    kept = api.post("training-image/", json={"base64": b64(grey16(4096, 0x7FFF)), "noresize": True})
    assert kept.status_code == 201 and kept.json()["img_width"] == 4096
    assert api.get(kept.json()["thumb_img_path"]).status_code == 200


def _cmyk_red() -> bytes:
    return _save(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG", quality=95)


def _palette_with_transparency() -> bytes:
    im = Image.new("P", (40, 40), 0)
    im.putpalette([0, 0, 255] + [255, 0, 0] * 255)
    im.paste(1, (0, 0, 20, 40))  # left half red, right half index 0: blue, transparent
    return _save(im, "PNG", transparency=0)


def _grey_alpha() -> bytes:
    im = Image.new("LA", (40, 40), (0, 255))
    im.paste((0, 0), (20, 0, 40, 40))  # right half transparent black
    return _save(im)


# (bytes, expected mean RGB of the left third, of the right third)
MODES = {
    "CMYK JPEG": (_cmyk_red, (255, 0, 0), (255, 0, 0)),
    "CMYK TIFF": (
        lambda: _save(Image.new("CMYK", (40, 30), (255, 0, 255, 0)), "TIFF"),
        (0, 255, 0),
        (0, 255, 0),
    ),
    "palette with transparency": (_palette_with_transparency, (255, 0, 0), (255, 255, 255)),
    "grey with alpha": (_grey_alpha, (0, 0, 0), (255, 255, 255)),
    "1-bit": (lambda: _save(Image.new("1", (40, 40), 1)), (255, 255, 255), (255, 255, 255)),
    "32-bit integer TIFF": (
        lambda: _save(Image.fromarray(np.full((40, 40), 200, np.int32)), "TIFF"),
        (200, 200, 200),
        (200, 200, 200),
    ),
    "float TIFF in 0..1": (
        lambda: _save(Image.fromarray(np.full((40, 40), 0.5, np.float32)), "TIFF"),
        (128, 128, 128),
        (128, 128, 128),
    ),
}


def _thirds(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    with Image.open(io.BytesIO(data)) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.float64)
    w = rgb.shape[1]
    return rgb[:, : w // 3].reshape(-1, 3).mean(0), rgb[:, -w // 3 :].reshape(-1, 3).mean(0)


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_is_stored_thumbnailed_and_seen_by_the_model_as_itself(api, mode: str) -> None:
    make, left, right = MODES[mode]
    data = make()
    _, thumb = _upload_and_thumb(api, data)
    for seen in (thumb, _save(decode_rgb(data))):
        got_left, got_right = _thirds(seen)
        assert got_left == pytest.approx(left, abs=12), (mode, got_left)
        assert got_right == pytest.approx(right, abs=12), (mode, got_right)


def test_a_large_palette_with_alpha_tiff_is_resized_not_refused(api) -> None:
    """A "PA" image over --resize-to: its resized copy is written as RGBA (PNG has no PA)."""
    im = Image.new("PA", (1400, 700), (1, 255))
    im.putpalette([255, 255, 255] + [255, 0, 0] * 255)
    im.paste((0, 0), (700, 0, 1400, 700))  # right half: white, transparent
    image, thumb = _upload_and_thumb(api, _save(im, "TIFF"))
    assert (image["img_width"], image["img_height"]) == (1024, 512)
    left, right = _thirds(thumb)
    assert left == pytest.approx((255, 0, 0), abs=12) and right == pytest.approx((255,) * 3, abs=12)


def test_exif_rotation_is_applied_to_thumbnails_resizes_and_the_model(api) -> None:
    im = Image.new("RGB", (1200, 600), (255, 0, 0))
    im.paste((0, 0, 255), (600, 0, 1200, 600))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = _save(im, "JPEG", exif=exif, quality=95)
    image, thumb = _upload_and_thumb(api, data)
    assert (image["img_width"], image["img_height"]) == (512, 1024)  # resized, upright
    with Image.open(io.BytesIO(thumb)) as t:
        assert t.height > t.width
        rgb = np.asarray(t.convert("RGB"), dtype=np.float64)
    top, bottom = rgb[: rgb.shape[0] // 3].mean((0, 1)), rgb[-rgb.shape[0] // 3 :].mean((0, 1))
    assert top[0] > 200 and bottom[2] > 200  # red on top, blue below
    upright = decode_rgb(data)
    assert upright.size == (600, 1200)
