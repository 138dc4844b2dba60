"""The client's JSON decoding: fast path and the stdlib fallback."""

import math

import pytest

from localrepo.remote.client import decode_json


def test_plain_json_decodes() -> None:
    assert decode_json(b'{"count": 2, "results": [{"id": "a"}], "next": null}') == {
        "count": 2,
        "results": [{"id": "a"}],
        "next": None,
    }


def test_nan_and_infinity_from_a_python_server_still_decode() -> None:
    # orjson refuses these literals; Python's json module emits them by default.
    body = decode_json(b'{"value": NaN, "high": Infinity}')
    assert math.isnan(body["value"])
    assert body["high"] == math.inf


def test_garbage_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        decode_json(b"<html>gateway</html>")
