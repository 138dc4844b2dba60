"""The JPEG fast path (scan/jpeg_confirm.py) may only ever confirm what the full check
accepts: whatever it calls valid, Pillow's plugin and a full-size load() accept, with the
same size. Checked here on real encoder output, on headers mutated byte by byte, cut
anywhere, and rebuilt from segments Hypothesis picks, including every kind of segment
Pillow's parser treats specially."""

from __future__ import annotations

import functools
import io
import random
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile
from support.imagegen import image_bytes, jpeg_variants

from localrepo.scan import hashing
from localrepo.scan.hashing import TOO_LARGE, check_image
from localrepo.scan.jpeg_confirm import confirm_jpeg, draft_request, draft_scale, frame_header


def confirm(data: bytes) -> tuple[int, int] | None:
    return confirm_jpeg(data, Image.core, Image.MAX_IMAGE_PIXELS, ImageFile.MAXBLOCK)


def full_check(data: bytes) -> tuple[int, int] | None:
    """The reference: the size when the full-scale check (Pillow's plugin, load()) accepts."""
    reason, _, dims = check_image(data, "x.jpg", full_scale=True)
    return None if reason is not None else (dims[0], dims[1])


def pillow_header(data: bytes) -> tuple[int, int, str] | None:
    """What Pillow's JPEG plugin makes of the header: size and mode, or None if it refuses."""
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as im:
            return (im.width, im.height, im.mode)
    except Exception:
        return None


def assert_only_confirms_what_the_full_check_accepts(cases: list[bytes]) -> int:
    """Whatever frame_header() reads, Pillow's plugin reads the same; whatever
    confirm_jpeg() confirms, the full check accepts with the same size. (The first is
    the stronger: libjpeg refuses much of what a wrong header parse would let through,
    which would hide the mistake from the second.) Returns how many cases were confirmed,
    so a caller can show the test has teeth."""
    wrong = []
    confirmed = 0
    for i, data in enumerate(cases):
        header = frame_header(data)
        if header is not None and pillow_header(data) != header:
            wrong.append((i, header, pillow_header(data)))
        size = confirm(data)
        if size is None:
            continue
        confirmed += 1
        if full_check(data) != size:
            wrong.append((i, size, check_image(data, "x.jpg", full_scale=True)))
    assert wrong == []
    return confirmed


def encoded(seed: int, size: tuple[int, int], mode: str = "RGB", **options: object) -> bytes:
    im = Image.open(io.BytesIO(image_bytes(seed, size=size))).convert(mode)
    buf = io.BytesIO()
    im.save(buf, "JPEG", **options)
    return buf.getvalue()


@functools.cache
def common_jpegs() -> list[bytes]:
    """What encoders write when nothing special is asked for, in every shape the decoder
    treats differently: sizes around the 1/8 scale's edges, one of several 64 KiB blocks."""
    noisy = Image.frombytes("RGB", (400, 300), random.Random(5).randbytes(400 * 300 * 3))
    big = io.BytesIO()
    noisy.save(big, "JPEG", quality=95)
    assert len(big.getvalue()) > 2 * ImageFile.MAXBLOCK  # three blocks for the decoder
    return [
        encoded(1, (64, 48)),
        encoded(2, (1, 1)),
        encoded(3, (5, 3)),
        encoded(4, (9, 17)),
        encoded(5, (640, 480), progressive=True),
        encoded(6, (64, 48), optimize=True),
        encoded(7, (64, 48), subsampling=0, quality=95),
        encoded(8, (64, 48), subsampling=1),
        encoded(9, (64, 48), "L"),
        encoded(10, (64, 48), comment=b"a comment"),
        encoded(11, (200, 100), restart_marker_blocks=3),
        encoded(12, (64, 48), xmp=b"<x:xmpmeta/>"),
        encoded(13, (64, 48), dpi=(300, 300)),
        big.getvalue(),
    ]


def with_segment(data: bytes, marker: int, payload: bytes) -> bytes:
    """`data` with one more segment right after SOI."""
    return data[:2] + struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload + data[2:]


def sof_with_extra(data: bytes, extra: bytes) -> bytes:
    """`data` with bytes after its frame header's layers, the length field to match."""
    segments, rest = _segments(data)
    segments = [(m, p + extra if m == 0xC0 else p) for m, p in segments]
    return _assemble(segments, rest, [0] * len(segments))


def test_plain_jpegs_are_confirmed_with_their_size():
    for data in common_jpegs():
        with Image.open(io.BytesIO(data)) as im:
            expected = im.size
        assert confirm(data) == expected
        assert full_check(data) == expected


def test_segments_pillow_parses_further_are_left_to_the_full_check():
    base = encoded(20, (64, 48))
    exif = Image.Exif()
    exif[0x0110] = "camera"
    left_alone = [
        encoded(21, (64, 48), exif=exif.tobytes()),
        encoded(22, (64, 48), icc_profile=b"\0" * 200),
        encoded(23, (64, 48), "CMYK"),  # four layers and an Adobe segment
        jpeg_variants()[-1],  # an MPO: its index in APP2
        with_segment(base, 0xED, b"Photoshop 3.0\x008BIM"),  # Pillow: IndexError
        with_segment(base, 0xE0, b"JFIF\x00\x01"),  # too short for Pillow's version read
        with_segment(base, 0xEE, b"Adobe\x00"),  # likewise
        with_segment(base, 0xC3, b"\x08\x00\x10\x00\x10\x01\x01\x11\x00"),  # lossless
        base[:2] + b"\xff\xff" + base[2:],  # a fill byte
        base[:2] + b"junk" + base[2:],  # junk Pillow skips
        base[:-300],  # cut in the scan
        sof_with_extra(base, b"\x00"),  # Pillow: IndexError on the last layer's bytes
        sof_with_extra(base, b"\x04\x11\x00"),  # a layer too many: libjpeg refuses it
    ]
    for data in left_alone:
        assert confirm(data) is None
    assert_only_confirms_what_the_full_check_accepts(left_alone)  # the header reads too
    # None of them is refused by the fast path: the full check's verdicts stand.
    assert [check_image(d, "x.jpg") for d in left_alone] == [
        check_image(d, "x.jpg", full_scale=True) for d in left_alone
    ]
    # A segment Pillow only stores does not stop the fast path.
    assert confirm(with_segment(base, 0xE5, b"anything")) == (64, 48)
    assert confirm(with_segment(base, 0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01")) == (64, 48)


def test_an_image_over_the_pixel_limit_is_left_to_the_full_check(monkeypatch):
    data = encoded(25, (64, 48))
    assert confirm_jpeg(data, Image.core, 64 * 48, ImageFile.MAXBLOCK) == (64, 48)
    assert confirm_jpeg(data, Image.core, 64 * 48 - 1, ImageFile.MAXBLOCK) is None
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 48 - 1)
    assert check_image(data, "x.jpg")[0] == TOO_LARGE


def test_check_image_uses_the_fast_path_for_a_file_named_jpeg(monkeypatch):
    calls = []

    def counting(*args):  # type: ignore[no-untyped-def]
        calls.append(args[0])
        return confirm_jpeg(*args)

    monkeypatch.setattr(hashing, "confirm_jpeg", counting)
    data = encoded(30, (64, 48))
    assert check_image(data, "a.JPG") == (None, None, (64, 48, "JPEG"))
    assert check_image(data, "a.jpeg", full_scale=True) == (None, None, (64, 48, "JPEG"))
    assert check_image(data, "a.png")[0] is None  # a JPEG named .png: the full check
    assert calls == [data]


def test_the_decoder_runs_at_the_scale_pillow_drafts():
    for width, height in [(1, 1), (5, 3), (8, 8), (15, 9), (16, 16), (17, 40), (640, 480)]:
        data = encoded(40, (width, height))
        with Image.open(io.BytesIO(data)) as jpeg:
            jpeg.draft("RGB", draft_request(width, height))  # what check_image() asks
            assert jpeg.decoderconfig[0] == draft_scale(width, height)


def test_mutated_headers_and_cuts_are_never_confirmed_wrongly():
    """Every byte up to the first scan's data set to 0, 0xFF, one up, one down; the
    file cut at every header byte and at spread points in the scan; and a few random
    changes anywhere."""
    rng = random.Random(3)
    cases = []
    for seed in common_jpegs()[:12]:
        header_end = seed.index(b"\xff\xda") + 16
        for i in range(header_end):
            for value in {0, 0xFF, (seed[i] + 1) & 0xFF, (seed[i] - 1) & 0xFF}:
                if value != seed[i]:
                    cases.append(seed[:i] + bytes([value]) + seed[i + 1 :])
        cases += [seed[:cut] for cut in range(header_end)]
        cases += [seed[:cut] for cut in range(header_end, len(seed), max(1, len(seed) // 40))]
        for _ in range(40):
            bad = bytearray(seed)
            for _ in range(rng.randint(1, 4)):
                bad[rng.randrange(len(bad))] = rng.randrange(256)
            cases.append(bytes(bad))
    confirmed = assert_only_confirms_what_the_full_check_accepts(cases)
    # Teeth: many mutants are confirmed (a length nibble's value, a density, a table
    # entry) and many are not; a fast path that confirmed nothing would prove nothing.
    assert 0.1 * len(cases) < confirmed < 0.9 * len(cases)


def _segments(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """A JPEG's segments up to the first scan's header, and the rest (SOS onwards)."""
    pos, segments = 2, []
    while data[pos + 1] != 0xDA:
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segments.append((data[pos + 1], data[pos + 4 : pos + 2 + length]))
        pos += 2 + length
    return segments, data[pos:]


def _assemble(segments: list[tuple[int, bytes]], rest: bytes, lengths: list[int]) -> bytes:
    out = bytearray(b"\xff\xd8")
    for (marker, payload), delta in zip(segments, lengths, strict=True):
        out += struct.pack(">BBH", 0xFF, marker, max(0, min(0xFFFF, len(payload) + 2 + delta)))
        out += payload
    return bytes(out + rest)


_SPECIAL_PREFIXES = [
    b"JFIF\x00", b"JFXX\x00", b"Exif\x00\x00", b"http://ns.adobe.com/xap/1.0/\x00",
    b"ICC_PROFILE\x00", b"MPF\x00", b"FPXR\x00", b"Photoshop 3.0\x00", b"Adobe", b"",
]  # fmt: skip
_SEEDS = [encoded(50, (24, 16)), encoded(51, (24, 16), "L"), encoded(52, (33, 7), progressive=True)]

a_segment = st.one_of(
    st.tuples(  # an application segment, often with a prefix Pillow looks for
        st.integers(0xE0, 0xEF),
        st.builds(bytes.__add__, st.sampled_from(_SPECIAL_PREFIXES), st.binary(max_size=24)),
    ),
    st.tuples(st.just(0xFE), st.binary(max_size=8)),  # a comment
    st.tuples(  # quantization tables of either precision, possibly cut short
        st.just(0xDB),
        st.lists(st.tuples(st.integers(0, 0x23), st.binary(min_size=64, max_size=128)), max_size=3)
        .map(lambda tables: b"".join(bytes([p]) + t for p, t in tables))
        .flatmap(lambda b: st.integers(0, len(b)).map(lambda n: b[:n])),
    ),
    st.tuples(  # a frame header: bits, height, width, layers, 3 bytes a layer (or not)
        st.sampled_from([0xC0, 0xC1, 0xC2, 0xC3, 0xC9]),
        st.builds(
            lambda bits, h, w, n, extra: (
                struct.pack(">BHHB", bits, h, w, n)
                + b"".join(bytes([i + 1, 0x11, 0]) for i in range(n))
                + extra
            ),
            st.sampled_from([8, 12]),
            st.integers(0, 40),
            st.integers(0, 40),
            st.integers(0, 4),
            st.binary(max_size=2),
        ),
    ),
    st.tuples(st.just(0xDD), st.binary(max_size=4)),  # a restart interval
    st.tuples(st.sampled_from([0x01, 0xC8, 0xDC, 0xDE, 0xF0, 0xD8]), st.binary(max_size=4)),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(_SEEDS),
    edits=st.lists(
        st.tuples(st.sampled_from(["insert", "delete", "duplicate", "length"]),
                  st.integers(0, 20), a_segment, st.integers(-3, 3)),
        min_size=1, max_size=3,
    ),
)  # fmt: skip
def test_headers_rebuilt_from_any_segments_are_never_confirmed_wrongly(seed, edits):
    segments, rest = _segments(seed)
    lengths = [0] * len(segments)
    for kind, where, segment, delta in edits:
        at = where % (len(segments) + 1)
        if kind == "insert":
            segments.insert(at, segment)
            lengths.insert(at, 0)
        elif segments and kind == "delete":
            del segments[at % len(segments)], lengths[at % len(segments)]
        elif segments and kind == "duplicate":
            segments.insert(at, segments[at % len(segments)])
            lengths.insert(at, 0)
        elif segments:
            lengths[at % len(segments)] += delta
    assert_only_confirms_what_the_full_check_accepts([_assemble(segments, rest, lengths)])


def test_pillows_private_decoder_entry_point_is_the_one_verified() -> None:
    """The fast path calls Pillow's private `Image.core.jpeg_decoder` (verified on Pillow
    13; pyproject.toml caps the major version). If a Pillow release changes it, every
    JPEG silently takes the slower public path: this says so loudly instead."""
    data = image_bytes(3, size=(64, 48))
    assert hasattr(Image.core, "jpeg_decoder"), "Pillow's private jpeg_decoder is gone"
    assert confirm(data) == (64, 48), (
        "the fast path no longer confirms a plain JPEG with this Pillow "
        f"({Image.__version__}): check scan/jpeg_confirm.py against its ImageFile.load()"
    )


def test_without_the_private_entry_point_the_public_path_decides(monkeypatch) -> None:
    class NoDecoder:  # a Pillow whose core lacks the entry point
        def __getattr__(self, name: str) -> object:
            if name == "jpeg_decoder":
                raise AttributeError(name)
            return getattr(Image.core, name)

    data = image_bytes(3, size=(64, 48))
    assert confirm_jpeg(data, NoDecoder(), None, ImageFile.MAXBLOCK) is None
    monkeypatch.setattr(hashing, "confirm_jpeg", lambda *a: None)  # as the shell then sees it
    reason, _detail, dims = check_image(data, "x.jpg")
    assert reason is None and dims is not None and dims[:2] == (64, 48)
