"""classify/ over real HTTP: record errors next to good records, request errors, _url
records (refused private addresses; fetched when allowed), store_images, and the
handcrafted backend."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.imagegen import class_image, truncated_jpeg

from .helpers import b64
from .trainhelp import multi_class_task, train


@pytest.fixture(scope="module")
def trained(live_server) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    """A multi_class task trained once on the session server (pretrained backend)."""
    with live_server.new_account().client() as api:
        task, _ = multi_class_task(api, per_label=8, name="cls")  # 5: 28 errors in 600
        model = train(api, task["id"])
        assert model["train_status"] == "TRAINED", model
        yield api, task


def post(api: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return api.post("classify/", json=body)


def test_a_bad_record_fails_alone_and_records_keep_their_order(trained) -> None:
    api, task = trained
    records = [
        {"_base64": b64(class_image("circle", 700)), "_id": "good", "extra": {"kept": [1]}},
        {"_base64": b64(b"this is not an image"), "_id": "junk"},
        {"_base64": "%%% not base64 %%%", "_id": "bad-b64"},
        {"_base64": b64(truncated_jpeg(3)), "_id": "cut"},
        {"_id": "empty"},
        {"_url": "ftp://example.org/a.jpg", "_id": "ftp"},
        {"_url": "http://127.0.0.1:9/a.jpg", "_id": "loopback"},
        {"_url": "http://[::1]/a.jpg", "_id": "loopback6"},
        {"_url": "http://10.1.2.3/a.jpg", "_id": "private"},
        {"task": "is not a record key", "_base64": b64(class_image("square", 701)), "_id": "ok2"},
    ]
    r = post(api, {"task": task["id"], "records": records})
    assert r.status_code == 200, r.text
    got = {rec["_id"]: rec for rec in r.json()["records"]}
    assert [rec["_id"] for rec in r.json()["records"]] == [rec["_id"] for rec in records]
    assert got["good"]["_status"]["code"] == 200 and got["good"]["extra"] == {"kept": [1]}
    # Each good record has its own image's answer, as when classified alone (whether a
    # model of a few images calls this square a square is the accuracy tests' business).
    for key, index in (("good", 0), ("ok2", 9)):
        alone = post(api, {"task": task["id"], "records": [records[index]]}).json()["records"][0]
        assert got[key]["_status"]["code"] == 200, got[key]
        assert got[key]["best_label"] == alone["best_label"], (key, got[key], alone)
        assert got[key]["labels"] == alone["labels"], key
    assert got["good"]["best_label"]["name"] != got["ok2"]["best_label"]["name"] or (
        got["good"]["labels"] != got["ok2"]["labels"]
    ), "two different images got one and the same answer"
    expected = {
        "junk": (400, "not an image"),
        "bad-b64": (400, "base64"),
        "cut": (400, "does not decode"),
        "empty": (400, "_base64"),
        "ftp": (400, "only http and https"),
        "loopback": (403, "--allow-private-urls"),
        "loopback6": (403, "private, loopback"),
        "private": (403, "10.1.2.3"),
    }
    for key, (code, words) in expected.items():
        status = got[key]["_status"]
        assert status["code"] == code and words in status["text"], (key, status)
        assert "labels" not in got[key] and "best_label" not in got[key]


def test_request_errors(trained, api: httpx.Client) -> None:
    trained_api, task = trained
    one = [{"_base64": b64(class_image("circle", 710))}]
    r = post(trained_api, {"task_id": task["id"], "records": one * 11})
    assert r.status_code == 400 and "At most 10 records" in r.json()["records"][0]
    r = post(trained_api, {"task_id": task["id"], "records": []})
    assert r.status_code == 400 and "records" in r.json()
    r = post(trained_api, {"records": one})
    assert r.status_code == 400 and "task_id" in r.json()
    r = post(trained_api, {"task_id": "not-a-uuid", "records": one})
    assert r.status_code == 400 and "task_id" in r.json()
    r = post(trained_api, {"task_id": task["id"], "version": 42, "records": one})
    assert r.status_code == 400 and "Version 42" in r.json()["version"][0]
    r = post(trained_api, {"task_id": task["id"], "version": 2**63, "records": one})
    assert r.status_code == 400 and "version" in r.json()
    missing = "00000000-0000-4000-8000-000000000000"
    assert post(trained_api, {"task_id": missing, "records": one}).status_code == 404
    # Another user's task does not exist for this one.
    assert post(api, {"task_id": task["id"], "records": one}).status_code == 404
    fresh = api.post("task/", json={"name": "untrained"}).json()
    r = post(api, {"task_id": fresh["id"], "records": one})
    assert r.status_code == 400 and "no trained model" in r.json()["detail"]


@pytest.mark.parametrize(
    ("extra", "word"),
    [
        ('"n": ' + str(2**70), "64-bit"),
        ('"n": -1e999', "finite"),
        ('"n": "a\\ud800b"', "surrogate"),
        ('"\\udfff": 1', "surrogate"),
        ('"n": ' + "[" * 300 + "]" * 300, "deep"),
        ('"n": ' + "[" * 3000 + "]" * 3000, "deep"),
    ],
)
def test_records_breaking_a_json_rule_are_a_400_with_the_status_envelope(
    trained, extra: str, word: str
) -> None:
    """Issue 20: such records reached the answer's encoder (a 500); now the body is
    refused up front, naming the field and the rule, in the seed's envelope."""
    api, task = trained
    good = b64(class_image("circle", 720))
    raw = f'{{"task_id": "{task["id"]}", "records": [{{"_base64": "{good}", {extra}}}]}}'
    r = api.post("classify/", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text[:500]
    body = r.json()
    assert word in body["records"][0] and word in body["detail"], body
    assert body["status"]["code"] == 400 and word in body["status"]["text"]
    assert body["status"]["request_id"] == r.headers["x-request-id"]
    # The same connection classifies the good record next.
    ok = post(api, {"task_id": task["id"], "records": [{"_base64": good}]})
    assert ok.status_code == 200 and ok.json()["records"][0]["_status"]["code"] == 200
    assert ok.json()["status"]["request_id"] == ok.headers["x-request-id"]


def test_handcrafted_backend_url_records_and_store_images(server_factory) -> None:
    server = server_factory(
        "--backend",
        "handcrafted",
        "--allow-private-urls",
        "--min-images-per-label",
        "3",
        "--url-max-mb",
        "0.01",
        "--url-timeout",
        "1",
    )
    assert "training backend: handcrafted" in server.log_text()
    api = server.client()
    task, labels = multi_class_task(api, per_label=12)  # handcrafted: 0 errors in 1800
    model = train(api, task["id"])
    assert model["train_status"] == "TRAINED", model
    assert model["backend"] == "handcrafted" and model["metrics"]["backend"] == "handcrafted"

    # A URL on this machine (allowed by the flag): the server's own media.
    image = api.post(
        "training-image/", json={"base64": b64(class_image("triangle", 720)), "noresize": True}
    ).json()
    big = api.post(
        "training-image/",
        json={"base64": b64(class_image("square", 721, size=400)), "noresize": True},
    ).json()
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    records = [
        {"_url": image["img_path"]},
        {"_url": image["img_path"] + "-missing"},
        {"_url": big["img_path"]},
        {"_base64": b64(class_image("circle", 722))},
        {"_url": f"http://127.0.0.1:{silent.getsockname()[1]}/slow.jpg"},
    ]
    with silent:
        r = post(api, {"task_id": task["id"], "records": records, "store_images": True})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert "handcrafted" in answer["model_format"]
    fetched, missing, too_big, fresh, slow = answer["records"]
    assert slow["_status"] == {"code": 504, "text": "_url: no answer within 1 s"}
    assert fetched["_status"]["code"] == 200 and fetched["_url"] == image["img_path"]
    assert fetched["best_label"]["name"] == "triangle"
    assert missing["_status"]["code"] == 502 and "answered 4" in missing["_status"]["text"]
    assert too_big["_status"]["code"] == 413
    assert "_stored_image_id" not in missing and "_stored_image_id" not in too_big
    # The fetched bytes were already a training image: that one is answered, unchanged.
    assert fetched["_stored_image_id"] == image["id"]
    assert api.get(f"training-image/{image['id']}/").json()["labels"] == []
    # A new image is stored with its best label.
    stored = api.get(f"training-image/{fresh['_stored_image_id']}/").json()
    assert [x["id"] for x in stored["labels"]] == [labels["circle"]["id"]]
    assert stored["meta_data"]["classified"] == {"task": task["id"], "version": 1}
