"""What the scanner calls an image: check_image() decodes a JPEG at 1/8 scale, and must
give exactly the verdict (reason, detail, dimensions) of a full-scale decode."""

from __future__ import annotations

import io

from PIL import Image
from support.imagegen import damaged_jpegs, full_decode_ok, image_bytes, jpeg_variants

from localrepo.scan.hashing import NOT_AN_IMAGE, TOO_LARGE, TRUNCATED, check_image


def test_the_scaled_check_gives_the_full_decodes_verdict_on_damaged_jpegs():
    cases = damaged_jpegs()
    scaled = [check_image(c, "x.jpg") for c in cases]
    full = [check_image(c, "x.jpg", full_scale=True) for c in cases]
    assert [i for i, (a, b) in enumerate(zip(scaled, full, strict=True)) if a != b] == []
    reasons = {r for r, _, _ in scaled}
    # The corpus exercises all three outcomes, or the comparison proves little.
    assert {None, TRUNCATED, NOT_AN_IMAGE} <= reasons


def test_the_full_scale_reference_agrees_with_a_plain_pillow_load():
    """The reference above is itself a plain full decode: same accept/refuse."""
    cases = damaged_jpegs(seed=11)
    verdicts = [(full_decode_ok(c), check_image(c)[0] is None) for c in cases]
    assert [i for i, (a, b) in enumerate(verdicts) if a != b] == []


def test_the_scaled_check_reports_the_real_size_and_format():
    for data in jpeg_variants():
        with Image.open(io.BytesIO(data)) as im:
            expected = (im.width, im.height, im.format)
        assert check_image(data, "a.jpg") == (None, None, expected)
    # A PNG named .jpg is identified by its content and decoded in full.
    assert check_image(image_bytes(3, fmt="PNG"), "a.jpg") == (None, None, (64, 48, "PNG"))


def test_the_extension_hint_never_changes_a_verdict():
    """check_image() tries the plugin a file's extension names through Pillow's registry,
    before Image.open(): whatever the extension says, the verdict is Image.open()'s, that
    of the same bytes checked with no name at all."""
    from support.imagegen import decompression_bomb_png, truncated_jpeg

    bodies = [
        *damaged_jpegs(seed=3)[:120],
        image_bytes(1, fmt="PNG"),
        image_bytes(2, fmt="GIF"),
        image_bytes(3, fmt="BMP"),
        image_bytes(4, fmt="WEBP"),
        image_bytes(5, fmt="TIFF"),
        truncated_jpeg(2),
        image_bytes(6, fmt="PNG")[:300],  # a truncated PNG
        decompression_bomb_png(),
        b"just some text, not an image\n",
        b"\xff\xd8\xff",  # a JPEG's signature and nothing else
        b"\x89PNG\r\n\x1a\n",  # a PNG's
    ]
    names = ["x.jpg", "x.jpeg", "x.png", "x.gif", "x.bmp", "x.webp", "x.tif", "x.tiff"]

    def verdict(body: bytes, name: str) -> tuple:
        reason, detail, dims = check_image(body, name)
        # A bomb's detail is worded by whichever check caught it first; the rest is not.
        return (reason, dims) if reason == TOO_LARGE else (reason, detail, dims)

    differ = [
        (i, name)
        for i, body in enumerate(bodies)
        for name in names
        if verdict(body, name) != verdict(body, "")
    ]
    assert differ == []
    verdicts = {check_image(b, "x.jpg")[0] for b in bodies}
    assert {None, TRUNCATED, NOT_AN_IMAGE, TOO_LARGE} <= verdicts
