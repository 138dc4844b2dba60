"""What the scanner calls an image: check_image() decodes a JPEG at 1/8 scale, and must
give exactly the verdict (reason, detail, dimensions) of a full-scale decode."""

from __future__ import annotations

import io

from imagegen import damaged_jpegs, full_decode_ok, image_bytes, jpeg_variants
from PIL import Image

from localrepo.scan.hashing import NOT_AN_IMAGE, TRUNCATED, check_image


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
