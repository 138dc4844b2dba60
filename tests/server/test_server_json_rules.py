"""Issue 20 item 1: JSON bodies that break a rule (lone surrogates, numbers that are not
finite or do not fit 64 bits, nesting too deep, metadata too large) answer 400 naming the
field and the rule, on every way a body arrives (JSON, form, a PATCH), never a 5xx; and
the server keeps answering on the same connection afterwards."""

from __future__ import annotations

import json

import httpx
import pytest

from .helpers import b64, image_bytes, make_task, upload

JSON = {"content-type": "application/json"}


def _upload_body(meta: str, seed: int) -> str:
    """A raw upload body whose meta_data is the given JSON text (verbatim)."""
    return '{"base64": "' + b64(image_bytes(seed)) + '", "meta_data": ' + meta + "}"


def _nested(depth: int) -> str:
    return '{"k":' * depth + "1" + "}" * depth


# (meta_data JSON text, a word the rule's message must hold)
BROKEN_META = [
    ('{"a": "\\ud800"}', "surrogate"),
    ('{"\\udfff": 1}', "surrogate"),
    ('{"a": ["ok", "x\\udc00y"]}', "surrogate"),
    ('{"a": 1e999}', "finite"),
    ('{"a": -1e999}', "finite"),
    (_nested(100), "deep"),
    (_nested(450), "deep"),
    (_nested(1000), "deep"),
    (_nested(5000), "deep"),
    ('{"a": %s}' % ("[" * 700 + "]" * 700), "deep"),
]


@pytest.mark.parametrize(("meta", "word"), BROKEN_META)
def test_upload_meta_data_breaking_a_rule_is_a_400_naming_it(api, meta: str, word: str) -> None:
    before = api.get("training-image/").json()["count"]
    r = api.post("training-image/", content=_upload_body(meta, 9001), headers=JSON)
    assert r.status_code == 400, r.text
    body = r.json()
    assert "meta_data" in body, body
    assert word in body["meta_data"][0], body
    assert word in body["detail"] and body["detail"].startswith("meta_data"), body
    # The same connection still answers, and nothing was stored.
    assert api.get("training-image/").json()["count"] == before


def test_the_limits_themselves_are_accepted(api) -> None:
    """The edges pass: finite floats, 30 levels of nesting, any valid Unicode; meta_data
    (kept as its JSON text) keeps integers of any size exactly."""
    meta = {
        "big": 2**63 - 1,
        "small": -(2**63),
        "huge": -(2**200),
        "float": 1.7976931348623157e308,
        "text": "caf\u00e9 \U0001f600 \u4e2d",
        "deep": json.loads(_nested(30)),
    }
    image = upload(api, image_bytes(9002), meta_data=meta)
    assert image["meta_data"] == meta
    assert api.get(f"training-image/{image['id']}/").json()["meta_data"] == meta


def test_update_and_form_meta_data_follow_the_same_rules(api) -> None:
    image = upload(api, image_bytes(9003), meta_data={"kept": 1})
    for meta, word in BROKEN_META[:6]:
        r = api.patch(
            f"training-image/{image['id']}/", content='{"meta_data": ' + meta + "}", headers=JSON
        )
        assert r.status_code == 400 and word in r.json()["meta_data"][0], r.text
        # meta_data as a JSON string inside a multipart form
        r = api.post(
            "training-image/",
            data={"meta_data": meta},
            files={"img_path": ("a.jpg", image_bytes(9004), "image/jpeg")},
        )
        assert r.status_code == 400 and word in r.json()["meta_data"][0], r.text
    assert api.get(f"training-image/{image['id']}/").json()["meta_data"] == {"kept": 1}


def test_meta_data_over_its_size_limit_is_a_400(api) -> None:
    meta = {"blob": "x" * (1024 * 1024 + 1)}
    r = api.post("training-image/", json={"base64": b64(image_bytes(9005)), "meta_data": meta})
    assert r.status_code == 400, r.text[:300]
    assert "meta_data" in r.json() and "1 MiB" in r.json()["meta_data"][0]


@pytest.mark.parametrize(
    "raw",
    [
        '{"name": "\\ud83d", "type": "multi_class"}',
        '{"name": "x", "type": "multi_class", "description": ' + _nested(2000) + "}",
        '{"name": "x", "type": "multi_class", "workspace": ' + str(2**80) + "}",
        '{"name": "x", "type": "multi_class", "extra": [' + str(-(2**63 + 1)) + "]}",
        '{"name": "x", "type": "multi_class", "nan": NaN}',
        '{"name": "x", "type": "multi_class", "inf": 1e400}',
        "[" * 100_000,
        '{"a": ' * 100_000,
    ],
)
def test_other_routes_answer_400_for_the_same_bodies(api, raw: str) -> None:
    before = api.get("task/").json()["count"]
    r = api.post("task/", content=raw, headers=JSON)
    assert r.status_code == 400, r.text
    assert isinstance(r.json()["detail"], str) and r.json()["detail"], r.text
    assert api.get("task/").json()["count"] == before


def test_label_and_task_update_refuse_them_too(api) -> None:
    task = make_task(api, "json-rules")
    for raw in ('{"name": "\\udfff"}', '{"name": "ok", "x": 1e999}', _nested(600)):
        r = api.patch(f"task/{task['id']}/", content=raw, headers=JSON)
        assert r.status_code == 400, r.text
    assert api.get(f"task/{task['id']}/").json()["name"] == "json-rules"


def test_a_fresh_client_sees_the_same_answer(live_server) -> None:
    """No keep-alive involved: one request, one 400."""
    account = live_server.new_account()
    r = httpx.post(
        account.api_url + "training-image/",
        content=_upload_body('{"a": "\\ud800"}', 9006),
        headers={**account.headers, **JSON},
    )
    assert r.status_code == 400 and "surrogate" in r.json()["meta_data"][0]
