"""Initial push of each task type, then `repo clone` of it into an empty folder: the
clone holds the same files (paths and bytes), labels and values."""

from __future__ import annotations

import json
import os

from support.synchelp import World, image_hash


def _assert_same(a, b) -> None:
    assert a.tree() == b.tree()
    assert a.labels() == b.labels()
    assert a.sidecar_values() == b.sidecar_values()
    a.verify()
    b.verify()


def test_multi_class_push_and_clone(world: World) -> None:
    a = world.init("a", "pets")
    a.write("dog/d1.jpg", 1)
    a.write("dog/sub/d2.jpg", 2)  # deeper folders inherit the label
    a.write("cat/c1.jpg", 3)
    a.write("c.jpg", 4)  # in the task root: no label, not part of the remote task
    s = a.sync()
    assert (s["uploaded"], s["labels_created"], s["failed"]) == (3, 2, [])
    assert s["tasks"][0]["created_remote_task"] is True
    remote = world.remote.by_hash()
    assert {h: r.labels for h, r in remote.items()} == {
        image_hash(1): {"dog": None},
        image_hash(2): {"dog": None},
        image_hash(3): {"cat": None},
    }
    assert remote[image_hash(2)].meta["original_file_name"] == "d2.jpg"
    [task] = world.remote.tasks()
    assert (task["name"], task["type"]) == ("pets", "multi_class")

    b = world.clone("b", task["id"])
    assert b.labels() == {"cat": 1, "dog": 2}
    # Downloads go into the label folder (deeper organising folders are not remote state).
    assert b.tree() == {
        "dog/d1.jpg": image_hash(1),
        "dog/d2.jpg": image_hash(2),
        "cat/c1.jpg": image_hash(3),
    }
    a.verify()
    b.verify()
    # A second sync on either side does nothing.
    for clone in (a, b):
        s = clone.sync()
        assert (s["uploaded"], s["downloaded"], s["relabelled"], s["deleted"]) == (0, 0, 0, 0)


def test_multi_label_push_and_clone(world: World) -> None:
    a = world.init("a", "tags", "multi_label")
    a.write("red/x.jpg", 1)
    os.makedirs(a.root / "round")
    os.link(a.root / "red/x.jpg", a.root / "round/x.jpg")  # one image, two tags
    a.write("round/y.jpg", 2)
    s = a.sync()
    assert s["uploaded"] == 2, s
    remote = world.remote.by_hash()
    assert remote[image_hash(1)].labels == {"red": None, "round": None}
    assert remote[image_hash(2)].labels == {"round": None}
    assert len(world.remote.images()) == 2

    b = world.clone("b", a.remote_task_id())
    _assert_same(a, b)
    assert b.labels() == {"red": 1, "round": 2}
    # The clone's tags of one image are hard links of one file.
    assert os.path.samefile(b.root / "red/x.jpg", b.root / "round/x.jpg")


def test_regression_push_and_clone(world: World) -> None:
    a = world.init("a", "price", "regression")
    a.write("low/a.jpg", 1)
    a.write("low/b.jpg", 2)
    a.write("high/c.jpg", 3)
    (a.root / "low/metadata.jsonl").write_text(
        json.dumps({"file_name": "a.jpg", "value": 1.5})
        + "\n"
        + json.dumps({"file_name": "b.jpg", "value": 2.25})
        + "\n"
    )
    (a.root / "high/metadata.jsonl").write_text(json.dumps({"file_name": "c.jpg", "value": 99}))
    s = a.sync()
    assert (s["uploaded"], s["failed"]) == (3, []), s
    remote = world.remote.by_hash()
    assert {h: r.labels for h, r in remote.items()} == {
        image_hash(1): {"low": 1.5},
        image_hash(2): {"low": 2.25},
        image_hash(3): {"high": 99.0},
    }
    b = world.clone("b", a.remote_task_id())
    _assert_same(a, b)
    assert b.sidecar_values() == {"low/a.jpg": 1.5, "low/b.jpg": 2.25, "high/c.jpg": 99.0}
