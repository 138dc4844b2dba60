"""Classify errors carry the inference envelope (issue 21, gap 2): every non-200 answer of
`classify/` has `"status": {"code", "text"}` beside `detail`, so the official SDK's status
check sees the failure: `classify_on_task` answers None and `Task.classify` raises,
instead of handing the error body back as if it were a result."""

from __future__ import annotations

import pytest
from ximilar.client import RecognitionClient
from ximilar.client.exceptions import XimilarClientException

from .helpers import b64, image_bytes, make_task


def _sdk(account) -> RecognitionClient:
    return RecognitionClient(token=account.token, endpoint=account.url, resource_name=None)


def test_the_sdk_sees_classify_failures(account) -> None:
    client = _sdk(account)
    task, _ = client.create_task("never trained")
    # A _url record: the SDK would decode a _base64 one with OpenCV, which is not
    # installed; the task fails before any record is fetched.
    record = {"_url": "http://localhost:9/probe.jpg"}
    assert client.classify_on_task([record], task_id=task.id) is None
    with pytest.raises(XimilarClientException):
        task.classify([record])
    with pytest.raises(XimilarClientException):
        task.classify([record], version=7)


def test_every_classify_error_has_the_envelope(account) -> None:
    with account.client() as api:
        task = make_task(api, "untrained")
        record = {"_base64": b64(image_bytes(9102))}
        cases = [
            {"task_id": task["id"], "records": [record]},  # no trained version
            {"task_id": task["id"], "records": [record], "version": 3},  # no such version
            {"task_id": task["id"], "records": []},  # no records
            {"task_id": task["id"], "records": [record] * 11},  # too many
            {"task_id": "not-a-task", "records": [record]},  # a bad id
            {"task_id": "00000000-0000-4000-8000-000000000000", "records": [record]},
            {"records": [record]},  # no task at all
        ]
        for body in cases:
            r = api.post("classify/", json=body)
            assert r.status_code in (400, 404), (body, r.text)
            answer = r.json()
            assert answer["status"]["code"] == r.status_code, answer
            assert answer["status"]["text"] and answer["detail"], answer
            assert answer["status"]["request_id"] == r.headers["x-request-id"]
