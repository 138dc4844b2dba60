"""Model versions and rollback, end to end: `repo train --promote`, `repo models`,
`repo models promote VERSION`, `repo models rollback` (real `repo` subprocesses, a real
localrepo-server that really trains), the comparison a server without `metrics.baseline`
(like the hosted service) gets, through a proxy that removes it, and the same
production switch through the official SDK.

The worse version is made deterministic: version 1 learns from clean folders; then many
images of the other class are added to each folder (so most of each label's images look
like the other label) and the clean images are marked test images on the server, so
the server's split trains version 2 on the swapped images and tests it on the clean
ones. Version 2 then answers "square" for a circle, and scores below version 1 on the
same test images.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.faultproxy import FaultProxy
from support.imagegen import class_image
from support.synchelp import Clone, World

from localrepo.errors import EXIT_ERROR, EXIT_USAGE

from .test_ml_cli import SERVER_ARGS, ndjson, new_world, put, rows

CLEAN = 10  # per label, version 1's images (the test images of the later versions)
SWAPPED = 30  # per label, images of the other class added before version 2


@pytest.fixture(scope="module")
def models_server(live_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A server of our own: the handcrafted features, a small minimum of images."""
    server = type(live_server)(tmp_path_factory.mktemp("models-server") / "data", list(SERVER_ARGS))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def world(models_server: Any, tmp_path: Path) -> Iterator[World]:
    w = new_world(models_server, tmp_path)
    yield w
    w.remote.close()


def answers(clone: Clone, probes: list[Path]) -> tuple[list[str], set[int]]:
    """What classify says for each probe (its best label), and the versions it used."""
    records = ndjson(clone.run("classify", "--json", *map(str, probes)).stdout)
    return [r["labels"][0]["name"] for r in records], {r["version"] for r in records}


def production(clone: Clone) -> int | None:
    listed = json.loads(clone.run("models", "--json").stdout)
    found = [m["version"] for m in listed if m["production"]]
    return found[0] if found else None


def probes(tmp_path: Path) -> list[Path]:
    out = []
    for name in ("circle", "square"):
        for i in range(3):
            path = tmp_path / f"probe_{name}_{i}.jpg"
            path.write_bytes(class_image(name, 9000 + i))
            out.append(path)
    return out


def test_a_worse_version_is_not_promoted_and_rollback_restores_the_previous_answers(
    world: World, tmp_path: Path
) -> None:
    clone = world.init("m", "shapes")
    for name in ("circle", "square"):
        for i in range(CLEAN):
            put(clone, f"{name}/clean_{i}.jpg", class_image(name, 7000 + i))
    clone.sync()
    first = json.loads(clone.run("train", "--wait", "--json").stdout)
    assert first["version"] == 1 and first["production_version"] == 1
    assert first["promotion"]["message"] == "Version 1 is now the production version."
    shots = probes(tmp_path)
    right = ["circle"] * 3 + ["square"] * 3
    swapped = ["square"] * 3 + ["circle"] * 3
    assert answers(clone, shots) == (right, {1})

    clean_ids = [row.id for row in world.remote.images()]
    for name, other in (("circle", "square"), ("square", "circle")):
        for i in range(SWAPPED):
            put(clone, f"{name}/swapped_{i}.jpg", class_image(other, 8000 + i))
    clone.sync()
    marked = world.remote.post("training-image/update/", {"images": clean_ids, "mark-test": True})
    assert marked["count"] == 2 * CLEAN

    # Without --wait, the default --promote if-better waits for the end, to compare.
    second = clone.run("train")
    assert "Waiting for the training to end, to compare it with version 1" in second.stderr
    assert (
        f"Version 2 scored 0.000 accuracy against version 1's 1.000 on the same {2 * CLEAN} "
        "test images: version 1 stays in production. 'repo models promote 2' puts "
        "version 2 in production anyway."
    ) in " ".join(second.stderr.split())
    assert production(clone) == 1
    assert answers(clone, shots) == (right, {1})  # still version 1's answers
    assert answers(clone, shots) != (swapped, {2})

    # The listing: version, status, created, images, backend, metrics; * = production.
    table = rows(clone.run("models").stdout)
    assert table[0][:5] == ["version", "status", "created", "images", "backend"]
    assert [(r[0], r[4]) for r in table[1:]] == [
        ("*1", str(2 * CLEAN)),
        ("2", str(2 * (CLEAN + SWAPPED))),
    ]

    # promote: version 2's answers; rollback: version 1's again.
    promoted = clone.run("models", "promote", "2")
    assert "Version 2 of 'shapes' is now the production version (was version 1)." in promoted.stderr
    assert answers(clone, shots) == (swapped, {2})
    rolled = json.loads(clone.run("models", "rollback", "--json").stdout)
    assert rolled == {
        "task": "shapes",
        "production_version": 1,
        "previous_production_version": 2,
        "changed": True,
    }
    assert answers(clone, shots) == (right, {1})

    # --promote always keeps the new version whatever it scores.
    third = json.loads(clone.run("train", "--wait", "--json", "--promote", "always").stdout)
    assert third["production_version"] == 3 and third["promotion"]["restored_previous"] is False
    assert third["promotion"]["comparison"] == {
        "metric": "accuracy",
        "new": 0.0,
        "previous": 1.0,
        "previous_version": 1,
        "same_test_images": True,
        "test_images": 2 * CLEAN,
    }
    assert answers(clone, shots) == (swapped, {3})
    # --promote never keeps the current one (here version 3) even when the new one is as good.
    fourth = json.loads(clone.run("train", "--wait", "--json", "--promote", "never").stdout)
    assert fourth["version"] == 4 and fourth["production_version"] == 3
    assert fourth["promotion"]["restored_previous"] is True
    assert "--promote never" in fourth["promotion"]["message"]
    assert production(clone) == 3

    # rollback goes to the newest trained version before production (2, then 1).
    clone.run("models", "rollback")
    assert production(clone) == 2
    clone.run("models", "rollback")
    assert production(clone) == 1 and answers(clone, shots) == (right, {1})
    nothing = clone.run("models", "rollback", expect=EXIT_ERROR)
    assert "Version 1 of 'shapes' is in production and no older version trained" in nothing.stderr
    assert "trained versions: 1, 2, 3, 4" in nothing.stderr

    # promote: an unknown version is a usage error naming the trained ones.
    wrong = clone.run("models", "promote", "9", expect=EXIT_USAGE)
    assert "The task 'shapes' has no version 9" in wrong.stderr
    assert "(trained: 1, 2, 3, 4). Did you mean version 4?" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    same = clone.run("models", "--task", "shapes", "promote", "1")
    assert "Version 1 of 'shapes' is already the production version." in same.stderr


def test_the_sdk_sets_the_production_version_and_classify_follows(
    world: World, tmp_path: Path
) -> None:
    from ximilar.client import RecognitionClient

    clone = world.init("s", "sdk shapes")
    for name in ("circle", "square"):
        for i in range(4):
            put(clone, f"{name}/{i}.jpg", class_image(name, 7100 + i))
    clone.sync()
    clone.run("train", "--wait")
    put(clone, "circle/more.jpg", class_image("circle", 7200))
    clone.sync()
    clone.run("train", "--wait", "--promote", "always")
    task_id = clone.remote_task_id()
    # The SDK's licence check is skipped for endpoints that name localhost.
    url = world.url.replace("127.0.0.1", "localhost")
    sdk = RecognitionClient(token=world.token, endpoint=url, resource_name=None)
    assert sdk.get_task(task_id)[0].production_version == 2
    answer = sdk.patch(f"recognition/v2/task/{task_id}/", data={"production_version": 1})
    assert answer["production_version"] == 1
    task = sdk.get_task(task_id)[0]
    assert task.production_version == 1
    assert production(clone) == 1
    image = tmp_path / "probe.jpg"
    image.write_bytes(class_image("square", 7300))
    assert task.classify([{"_file": str(image)}])["version"] == 1
    refused = sdk.patch(f"recognition/v2/task/{task_id}/", data={"production_version": 7})
    assert (
        "production_version" in refused
        and "trained versions: 1, 2" in refused["production_version"][0]
    )
    assert sdk.get_task(task_id)[0].production_version == 1


def _without_baseline(method: str, path: str, body: bytes) -> bytes:
    """The answers of a server that does not score the previous version (the hosted
    service): `metrics.baseline` removed from the models."""
    if method != "GET" or "/model/" not in path:
        return body
    data = json.loads(body)
    for model in data.get("results", [data]):
        if isinstance(model, dict) and isinstance(model.get("metrics"), dict):
            model["metrics"].pop("baseline", None)
    return json.dumps(data).encode()


def test_without_a_baseline_the_versions_own_scores_are_compared_and_said_so(
    models_server: Any, tmp_path: Path
) -> None:
    account = models_server.new_account()
    proxy = FaultProxy(account.url).start()
    proxy.rewrite = _without_baseline
    w = World(proxy.url, account.token, tmp_path)
    try:
        clone = w.init("h", "hosted")
        for name in ("circle", "square"):
            for i in range(4):
                put(clone, f"{name}/clean_{i}.jpg", class_image(name, 7400 + i))
        clone.sync()
        clone.run("train", "--wait")
        clean_ids = [row.id for row in w.remote.images()]
        for name, other in (("circle", "square"), ("square", "circle")):
            for i in range(12):
                put(clone, f"{name}/swapped_{i}.jpg", class_image(other, 7500 + i))
        clone.sync()
        w.remote.post("training-image/update/", {"images": clean_ids, "mark-test": True})
        second = clone.run("train", "--wait", "--json")
        result = json.loads(second.stdout)
        assert result["production_version"] == 1
        comparison = result["promotion"]["comparison"]
        assert comparison["same_test_images"] is False and comparison["test_images"] == 8
        # Few images here (the exact scores are the test above's): only the order is sure.
        assert comparison["new"] < comparison["previous"]
        assert (
            "each on its own test images, 8 and 2 (the server did not score them on the same ones)"
            in (result["promotion"]["message"])
        )
        assert production(clone) == 1
    finally:
        w.remote.close()
        proxy.stop()
