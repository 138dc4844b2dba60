"""Two labels of one name on one task (sync/twins.py): read as one, settled onto the
oldest, the empty twin detached, every value kept."""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace as NS

import pytest
from support.imagegen import image_bytes
from support.inproc import engine_sync

from localrepo.repository import Repository, init_repository
from localrepo.sync.snapshot import build_snapshot
from localrepo.sync.twins import label_twins


def lab(id_: str, name: str, created: str) -> NS:
    return NS(id=id_, name=name, type="category", negative_for_task=None, raw={"created": created})


def test_the_oldest_of_two_labels_of_one_name_is_the_canonical_one() -> None:
    attached = [lab("b", "dog", "2026-02"), lab("a", "dog", "2026-01"), lab("c", "cat", "2026")]
    [group] = label_twins(attached)
    assert group.name == "dog" and group.canonical.id == "a"
    assert [t.id for t in group.others] == ["b"]
    images = [
        NS(id="i1", img_path="", meta_data={}, labels=[NS(id="b")]),
        NS(id="i2", img_path="", meta_data={}, labels=[NS(id="a"), NS(id="b")]),
    ]
    snap = build_snapshot("T", "multi_class", attached, images, {})
    assert snap.labels == {"dog": "a", "cat": "c"} and snap.twins == 1
    assert {v.id: v.labels for v in snap.images.values()} == {
        "i1": {"dog": None},
        "i2": {"dog": None},  # one category, not two
    }
    assert not snap.problems


@pytest.mark.parametrize("task_type", ["multi_class", "regression"])
def test_a_sync_moves_a_twins_images_onto_the_oldest_and_then_detaches_it(
    account, tmp_path: Path, task_type: str
) -> None:
    root = tmp_path / "r"
    init_repository(root, task="t", task_type=task_type, remote=account.url)
    engine_sync(root, account.url, account.token)
    conn = Repository(root).connect()
    [(task_id,)] = conn.execute("SELECT remote_id FROM task").fetchall()
    conn.close()
    kind = "value" if task_type == "regression" else "category"
    with account.client() as api:
        first = api.post("label/", json={"name": "dog", "type": kind}).json()
        second = api.post("label/", json={"name": "dog", "type": kind}).json()
        for label in (first, second):
            api.post(f"task/{task_id}/add-label/", json={"label_id": label["id"]})
        for n, label in enumerate((first, second, second)):
            data = base64.b64encode(image_bytes(n, size=(8, 6), fmt="PNG")).decode()
            image = api.post("training-image/", json={"base64": data, "noresize": True}).json()
            body = {"label_id": label["id"], **({"value": n + 0.5} if kind == "value" else {})}
            api.post(f"training-image/{image['id']}/add-label/", json=body)
        # The oldest (by created, then id) is the one every clone keeps.
        first, second = sorted((first, second), key=lambda x: (x["created"], x["id"]))
        report = engine_sync(root, account.url, account.token)
        assert not report.in_sync and report.tasks[0].twins_left == 1
        assert report.tasks[0].outcome.downloaded == 3
        images = api.get("training-image/", params={"page_size": 100}).json()["results"]
        assert all([x["id"] for x in i["labels"]] == [first["id"]] for i in images), images
        if kind == "value":
            assert sorted(i["labels"][0]["value"] for i in images) == [0.5, 1.5, 2.5]
        report = engine_sync(root, account.url, account.token)
        assert report.in_sync and report.tasks[0].twins_left == 0
        task = api.get(f"task/{task_id}/").json()
        assert first["id"] in task["labels"] and second["id"] not in task["labels"]
        assert api.get(f"label/{second['id']}/").status_code == 404  # no other task had it
