"""Fuzzing the live server with what schemathesis (test_server_openapi.py) does not send:
nested, huge and malformed JSON bodies (lone surrogates, numbers past 64 bits or past
floats, NaN, nesting of thousands of levels, invalid UTF-8, cut bodies) on the JSON
routes, and image bytes of every mode, format and damage on the upload routes (JSON
base64 and multipart). Every answer must be a 4xx or a success, never a 5xx, and keep
the connection usable.

``LOCALREPO_FUZZ_EXAMPLES`` sets the examples per test (CI: 25; ``make fuzz``: 1,000;
test_server_openapi.py's per operation is ``LOCALREPO_OPENAPI_EXAMPLES``).
The counts are printed at the end of the run (tests/conftest.py, "fuzz:").
"""

from __future__ import annotations

import io
import json
import os
import random
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

from .helpers import b64, image_bytes, make_label, make_task, record_fuzz, upload

EXAMPLES = int(os.environ.get("LOCALREPO_FUZZ_EXAMPLES", "25"))
JSON = {"content-type": "application/json"}

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    phases=[Phase.generate],
)


class Tally:
    """Sends each request, keeps the counts, and fails on a 5xx (or a closed
    connection) naming what was sent."""

    def __init__(self, api: httpx.Client) -> None:
        self.api = api
        self.examples = 0
        self.requests = 0
        self.server_errors = 0

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.requests += 1
        r = self.api.request(method, path, **kwargs)
        if r.status_code >= 500:
            self.server_errors += 1
        sent = kwargs.get("content", kwargs.get("json", kwargs.get("files")))
        assert r.status_code < 500, (method, path, r.status_code, r.text[:300], repr(sent)[:300])
        assert isinstance(r.json().get("detail"), str) if r.status_code >= 400 else True, r.text
        return r

    def done(self) -> None:
        record_fuzz(self.examples, self.requests, self.server_errors)
        assert self.examples > 0 and self.server_errors == 0


# ---- JSON ------------------------------------------------------------------------------

_SURROGATES = st.integers(0xD800, 0xDFFF).map(lambda c: "\\u%04x" % c)  # noqa: UP031
_NUMBERS = st.one_of(
    st.integers().map(str),
    st.integers(2**63 - 2, 2**200).map(str),
    st.integers(-(2**200), -(2**63) + 2).map(str),
    st.floats(allow_nan=False, allow_infinity=False)
    .map(repr)
    .filter(lambda s: "e" in s or "." in s),
    st.sampled_from(["1e999", "-1e999", "1e-999", "NaN", "Infinity", "-Infinity", "1" * 5000]),
)
_KEYS = st.one_of(
    st.sampled_from(["name", "type", "meta_data", "workspace", "label_id", "value", "records"]),
    st.text(max_size=8),
)


def _string_token(text: str, surrogate: str | None) -> str:
    token = json.dumps(text)
    return token[:-1] + surrogate + '"' if surrogate else token


_STRINGS = st.builds(_string_token, st.text(max_size=20), st.none() | _SURROGATES)
_SCALARS = st.one_of(st.sampled_from(["null", "true", "false"]), _NUMBERS, _STRINGS)


def _object(pairs: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in pairs) + "}"


JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(_KEYS, inner), max_size=4).map(_object),
    ),
    max_leaves=12,
)


def _deep(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"k": ' * depth + "1" + "}" * depth
    return '{"k": [' * (depth // 2) + "0" + "]}" * (depth // 2)


DEEP = st.builds(_deep, st.integers(30, 5000), st.sampled_from(["list", "object", "mixed"]))


def _cut(text: str, where: float) -> str:
    return text[: int(len(text) * where)]


BODIES = st.one_of(
    st.lists(st.tuples(_KEYS, JSON_VALUES | DEEP), max_size=5).map(_object),
    st.tuples(JSON_VALUES, st.floats(0, 1)).map(lambda t: _cut(*t)),
    DEEP,
    JSON_VALUES,
).map(str.encode) | st.one_of(
    st.binary(max_size=200),
    st.builds(lambda b: b'{"name": "' + b + b'"}', st.binary(max_size=20)),  # invalid UTF-8
    st.integers(100_000, 2_000_000).map(lambda n: b'{"name": "' + b"x" * n + b'"}'),  # huge
    st.integers(1000, 50_000).map(lambda n: b"[" * n),  # unclosed
)


@pytest.fixture(scope="module")
def fuzz_account(live_server) -> Any:
    return live_server.new_account()


@pytest.fixture(scope="module")
def targets(fuzz_account) -> list[tuple[str, str]]:
    with fuzz_account.client() as api:
        task = make_task(api, "fuzz")
        label = make_label(api, "fuzz")
        image = upload(api, image_bytes(4242))
    return [
        ("POST", "task/"),
        ("PATCH", f"task/{task['id']}/"),
        ("POST", f"task/{task['id']}/add-label/"),
        ("POST", "label/"),
        ("PUT", f"label/{label['id']}/"),
        ("POST", "training-image/"),
        ("PATCH", f"training-image/{image['id']}/"),
        ("POST", f"training-image/{image['id']}/add-label/"),
        ("POST", "training-image/update/"),
        ("POST", "classify/"),
    ]


def test_fuzz_json_bodies_never_get_a_5xx(fuzz_account, targets) -> None:
    with fuzz_account.client() as api:
        tally = Tally(api)

        @FUZZ
        @given(body=BODIES, target=st.sampled_from(targets), fields=JSON_VALUES)
        def run(body: bytes, target: tuple[str, str], fields: str) -> None:
            tally.examples += 1
            method, path = target
            tally.send(method, path, content=body, headers=JSON)
            # The same JSON as meta_data of an upload, and as a form's meta_data field.
            meta = '{"base64": "' + b64(image_bytes(7)) + '", "meta_data": ' + fields + "}"
            tally.send("POST", "training-image/", content=meta, headers=JSON)
            tally.send("POST", "task/", data={"name": fields[:200], "type": "multi_class"})

        run()
        assert api.get("task/").status_code == 200
        tally.done()


# ---- images ----------------------------------------------------------------------------


def _array(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    if mode == "I":
        return Image.fromarray(rng.integers(-(2**31), 2**31 - 1, (h, w), dtype=np.int32))
    if mode == "F":
        return Image.fromarray(rng.normal(0, 100, (h, w)).astype(np.float32))
    bands = {"1": 1, "L": 1, "P": 1, "PA": 2, "LA": 2, "RGB": 3, "RGBA": 4, "CMYK": 4}[mode]
    data = rng.integers(0, 256, w * h * bands, dtype=np.uint8).tobytes()
    return Image.frombytes(mode, size, data)


_FORMATS = {  # the modes each format writes
    "PNG": ["1", "L", "P", "LA", "RGB", "RGBA", "I;16"],
    "JPEG": ["L", "RGB", "CMYK"],
    "TIFF": ["1", "L", "P", "PA", "RGB", "RGBA", "CMYK", "I;16", "I", "F"],
    "GIF": ["L", "P"],
    "BMP": ["1", "L", "P", "RGB"],
    "WEBP": ["RGB", "RGBA"],
}


@st.composite
def images(draw: st.DrawFn) -> bytes:
    fmt = draw(st.sampled_from(sorted(_FORMATS)))
    mode = draw(st.sampled_from(_FORMATS[fmt]))
    size = (draw(st.integers(1, 1300)), draw(st.integers(1, 80)))
    if draw(st.booleans()):
        size = size[::-1]
    im = _array(mode, size, draw(st.integers(0, 2**32)))
    extra: dict[str, Any] = {}
    if fmt == "JPEG" and draw(st.booleans()):
        exif = Image.Exif()
        exif[0x0112] = draw(st.integers(0, 9))  # orientation, 0 and 9 invalid
        extra["exif"] = exif
    if mode == "P" and fmt == "PNG" and draw(st.booleans()):
        extra["transparency"] = draw(st.integers(0, 255))
    buf = io.BytesIO()
    im.save(buf, fmt, **extra)
    data = buf.getvalue()
    damage = draw(st.sampled_from(["none", "none", "cut", "flip", "prefix"]))
    if damage == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "flip":
        data = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
        data = bytes(data)
    elif damage == "prefix":
        data = draw(st.binary(max_size=16)) + data
    return data


def test_fuzz_image_bytes_never_get_a_5xx(fuzz_account) -> None:
    with fuzz_account.client() as api:
        tally = Tally(api)
        stored: list[str] = []

        @FUZZ
        @given(data=images(), noresize=st.booleans(), multipart=st.booleans())
        def run(data: bytes, noresize: bool, multipart: bool) -> None:
            tally.examples += 1
            if multipart:
                files = {"img_path": ("fuzz.img", data, "application/octet-stream")}
                r = tally.send(
                    "POST", "training-image/", files=files, data={"noresize": str(noresize)}
                )
            else:
                body = {"base64": b64(data), "noresize": noresize}
                r = tally.send("POST", "training-image/", json=body)
            if r.status_code in (200, 201):
                image = r.json()
                stored.append(image["id"])
                thumb = api.get(image["thumb_img_path"])  # the thumbnail is made now
                tally.requests += 1
                assert thumb.status_code == 200, (thumb.status_code, thumb.text[:200])
                assert api.get(image["img_path"]).status_code == 200

        run()
        tally.done()
        # Some of them stored (the fuzzing reaches the storing path, not only refusals).
        assert stored or EXAMPLES < 10
        for image_id in random.sample(stored, min(3, len(stored))):
            assert api.delete(f"training-image/{image_id}/").status_code == 204
