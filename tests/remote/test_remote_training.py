"""The client's training and classification calls against a real localrepo-server that
trains (handcrafted features, a small minimum of images): `wait_for_training` with and
without model rows to follow, its timeout, and `classify_images` lining answers up with
the images. Faults (hidden models, reordered or dropped records) are injected by
rewriting the real server's answers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support.imagegen import class_image

from localrepo.remote.client import RecognitionClient, TrainingTimeout
from localrepo.remote.errors import RemoteError

from .conftest import FAST
from .faults import FaultTransport

Rewrite = Callable[[Any], Any]


def _json_hook(path: str, rewrite: Rewrite) -> Callable[[httpx.Request, httpx.Response], Any]:
    def hook(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if path not in request.url.path or not response.is_success:
            return response
        body = rewrite(response.json())
        return httpx.Response(
            response.status_code,
            headers={"content-type": "application/json"},
            content=json.dumps(body).encode(),
            request=request,
        )

    return hook


@pytest.fixture(scope="module")
def server(live_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One training server for the module (a LiveServer like the session's own)."""
    args = ["--backend", "handcrafted", "--min-images-per-label", "3"]
    started = type(live_server)(tmp_path_factory.mktemp("training") / "data", args).start()
    yield started
    started.stop()


def _client(server: Any, faults: FaultTransport) -> RecognitionClient:
    account = server.new_account()
    return RecognitionClient(account.url, account.token, transport=faults, **FAST)


def _task(client: RecognitionClient) -> str:
    task = client.create_task("shapes")
    for name in ("circle", "triangle", "square"):
        label = client.create_label(name)
        client.add_task_label(task.id, label.id)
        for i in range(4):
            image, _ = client.upload_image(class_image(name, i), noresize=True)
            client.add_image_label(image.id, label.id)
    return task.id


def _nap(_: float) -> None:
    time.sleep(0.05)


def test_wait_without_models_then_classify_lines_answers_up(server: Any) -> None:
    faults = FaultTransport()
    client = _client(server, faults)
    task_id = _task(client)
    # A server that shows no model rows: the wait follows the task's status.
    faults.hooks.append(_json_hook("/model/", lambda page: {**page, "count": 0, "results": []}))
    before = client.get_task(task_id)
    client.train_task(task_id)
    seen: list[str | None] = []
    task, model = client.wait_for_training(
        task_id, before, (), on_status=lambda s, _: seen.append(s), sleep=_nap
    )
    assert task.last_train_status == "TRAINED" and task.production_version == 1
    assert model is None  # the server showed none
    assert seen[-1] == "TRAINED" and set(seen) <= {"WAITING", "IN_TRAINING", "TRAINED"}
    faults.hooks.clear()

    images = [class_image("circle", 100), b"not an image", class_image("triangle", 101)]
    plain = client.classify_images(task_id, images)
    assert plain.version == 1
    assert [r.ok for r in plain.records] == [True, False, True]
    assert plain.records[1].error and plain.records[1].labels == ()

    def reverse(body: Any) -> Any:
        return {**body, "records": list(reversed(body["records"]))}

    faults.hooks.append(_json_hook("/classify/", reverse))
    swapped = client.classify_images(task_id, images)
    assert [r.ok for r in swapped.records] == [True, False, True]
    assert [r.raw.get("_id") for r in swapped.records] == ["0", "1", "2"]
    faults.hooks[:] = [_json_hook("/classify/", lambda b: {**b, "records": b["records"][:2]})]
    with pytest.raises(RemoteError, match="sent 3 records, the answer has 2"):
        client.classify_images(task_id, images)
    client.close()


def test_wait_times_out_then_follows_the_training_that_includes_the_request(
    server: Any,
) -> None:
    faults = FaultTransport()
    client = _client(server, faults)
    task_id = _task(client)
    before = client.get_task(task_id)
    client.train_task(task_id)
    # The server shows the training queued for as long as the wait lasts (a real worker
    # may already run it, or even finish it, before the first poll on a busy machine).
    queued = _json_hook(
        "/model/",
        lambda page: {
            **page,
            "results": [{**m, "train_status": "WAITING"} for m in page["results"]],
        },
    )
    faults.hooks.append(queued)
    with pytest.raises(TrainingTimeout, match="still WAITING after") as err:
        client.wait_for_training(task_id, before, (), timeout=0.0001)
    assert err.value.status == "WAITING"
    faults.hooks.clear()
    known = [m.id for m in client.task_models(task_id)]  # version 1, queued or running
    before = client.get_task(task_id)
    client.train_task(task_id)  # a new version, or merged into version 1 if still queued
    task, model = client.wait_for_training(task_id, before, known, sleep=_nap)
    models = client.task_models(task_id)
    assert model is not None and model.train_status == "TRAINED"
    assert model.version == task.production_version == models[-1].version
    assert all(m.train_status == "TRAINED" for m in models)
    assert model.backend == "handcrafted" and model.accuracy is not None
    client.close()


def test_set_production_version_and_the_servers_refusal(server: Any) -> None:
    from localrepo.remote.errors import BadRequestError

    faults = FaultTransport()
    client = _client(server, faults)
    task_id = _task(client)
    for _ in range(2):
        before = client.get_task(task_id)
        known = [m.id for m in client.task_models(task_id)]
        client.train_task(task_id)
        client.wait_for_training(task_id, before, known, sleep=_nap)
    assert client.get_task(task_id).production_version == 2
    assert client.set_production_version(task_id, 1).production_version == 1
    assert client.classify_images(task_id, [class_image("circle", 300)]).version == 1
    with pytest.raises(BadRequestError) as refused:
        client.set_production_version(task_id, 5)
    assert "trained versions: 1, 2" in refused.value.field_errors["production_version"][0]
    assert client.get_task(task_id).production_version == 1
    client.close()
