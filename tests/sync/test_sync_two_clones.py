"""Two clones of one remote task edit concurrently and converge through the remote."""

from __future__ import annotations

import json
import os
import sqlite3

from support.synchelp import Clone, World, image_hash

from localrepo.layout import label_for_folder

NOTHING = {"uploaded": 0, "downloaded": 0, "relabelled": 0, "deleted": 0}


def counts(summary: dict) -> dict:
    return {k: summary[k] for k in NOTHING}


def labels_by_hash(clone: Clone) -> dict[str, set[str]]:
    """{hash: {the label of the first folder of each copy}} of the clone's tree ("" for
    a copy in no label folder)."""
    out: dict[str, set[str]] = {}
    for path, h in clone.tree().items():
        head = path.split("/", 1)[0] if "/" in path else ""
        out.setdefault(h, set()).add(label_for_folder(head) or "" if head else "")
    return out


def converged(world: World, *clones: Clone) -> None:
    """Every clone verifies, holds the same images under the same labels, and agrees
    with the server."""
    for c in clones:
        c.verify()
    first = labels_by_hash(clones[0])
    for c in clones[1:]:
        assert labels_by_hash(c) == first
    remote = {h: set(r.labels) for h, r in world.remote.by_hash().items() if r.labels}
    assert remote == {h: labs - {""} for h, labs in first.items() if labs - {""}}


def two_clones(world: World, seeds: dict[str, int], task_type: str = "multi_class"):
    a = world.init("a", "pets", task_type)
    for rel, seed in seeds.items():
        a.write(rel, seed)
    a.sync()
    b = world.clone("b", a.remote_task_id())
    return a, b


def conflict_rows(clone: Clone) -> list[tuple]:
    conn = sqlite3.connect(clone.root / ".localrepo" / "catalog.db")
    try:
        return [
            (path, field, json.loads(local), json.loads(remote), resolution)
            for path, field, local, remote, resolution in conn.execute(
                "SELECT path, field, local, remote, resolution FROM conflict ORDER BY id"
            )
        ]
    finally:
        conn.close()


def test_adds_moves_renames_and_swaps(world: World) -> None:
    a, b = two_clones(
        world,
        {
            "dog/d1.jpg": 1,
            "dog/d2.jpg": 2,
            "cat/c1.jpg": 3,
            "cat/c2.jpg": 4,
            "dog/p.jpg": 5,
            "cat/q.jpg": 6,
        },
    )
    converged(world, a, b)
    ids = {h: r.id for h, r in world.remote.by_hash().items()}

    # An image added on each side; the same bytes added on both (under other names).
    a.write("dog/new_a.jpg", 10)
    b.write("cat/new_b.jpg", 11)
    a.write("dog/same_a.jpg", 12)
    b.write("dog/same_b.jpg", 12)
    assert counts(a.sync()) == {**NOTHING, "uploaded": 2}
    # B adopts the remote image of the same bytes: one upload (new_b), one download.
    assert counts(b.sync()) == {**NOTHING, "uploaded": 1, "downloaded": 1}
    assert a.sync()["downloaded"] == 1
    assert len(world.remote.images()) == 9  # the same bytes are ONE remote image
    assert len(a.files_of(image_hash(12))) == 1 and len(b.files_of(image_hash(12))) == 1
    converged(world, a, b)
    ids = {h: r.id for h, r in world.remote.by_hash().items()}

    # A move dog/ -> cat/ is a relabel: no upload, the same remote image.
    a.move("dog/d1.jpg", "cat/d1.jpg")
    assert counts(a.sync()) == {**NOTHING, "relabelled": 1}
    assert counts(b.sync()) == {**NOTHING, "relabelled": 1}
    assert b.files_of(image_hash(1)) == ["cat/d1.jpg"]
    assert {h: r.id for h, r in world.remote.by_hash().items()} == ids
    converged(world, a, b)

    # A label folder renamed: every image of it relabelled, nothing uploaded.
    (a.root / "dog").rename(a.root / "hound")
    s = a.sync()
    assert s["uploaded"] == 0 and s["relabelled"] == 4 and s["deleted"] == 0, s
    s = b.sync()
    assert s["uploaded"] == s["downloaded"] == s["deleted"] == 0 and s["relabelled"] == 4, s
    assert not (b.root / "dog").exists() or not any((b.root / "dog").iterdir())
    assert "dog" not in b.labels() and b.labels()["hound"] == 4
    # The renamed-away label stays detached from the task (B must not attach it again).
    attached = world.remote._all("label/", task=a.remote_task_id())
    assert sorted(lab["name"] for lab in attached) == ["cat", "hound"]
    assert {h: r.id for h, r in world.remote.by_hash().items()} == ids
    converged(world, a, b)

    # Moved out and back between syncs: nothing to do.
    a.move("hound/d2.jpg", "cat/d2.jpg")
    a.move("cat/d2.jpg", "hound/d2.jpg")
    assert counts(a.sync()) == NOTHING

    # Two images swap names (and so labels): two relabels, no upload.
    a.move("hound/p.jpg", "hound/tmp.jpg")
    a.move("cat/q.jpg", "hound/p.jpg")
    a.move("hound/tmp.jpg", "cat/q.jpg")
    assert counts(a.sync()) == {**NOTHING, "relabelled": 2}
    assert counts(b.sync()) == {**NOTHING, "relabelled": 2}
    assert b.files_of(image_hash(5)) == ["cat/p.jpg"] and b.files_of(image_hash(6)) == [
        "hound/q.jpg"
    ]
    assert world.remote.by_hash()[image_hash(5)].labels == {"cat": None}
    assert {h: r.id for h, r in world.remote.by_hash().items()} == ids
    converged(world, a, b)


def test_label_conflicts_and_their_settlement(world: World) -> None:
    a, b = two_clones(world, {f"dog/x{i}.jpg": i for i in range(1, 5)} | {"cat/c.jpg": 9})
    for i in range(1, 4):
        a.move(f"dog/x{i}.jpg", f"cat/x{i}.jpg")
        b.move(f"dog/x{i}.jpg", f"bird/x{i}.jpg")
    assert a.sync()["relabelled"] == 3
    s = b.sync(expect=3)  # policy manual: recorded, reported, skipped; not in sync
    assert s["conflicts"] == 3 and s["relabelled"] == 0, s
    assert {c["image"] for c in s["tasks"][0]["conflicts"]} == {image_hash(i) for i in (1, 2, 3)}
    listed = b.conflicts()
    assert sorted(c["path"] for c in listed) == ["bird/x1.jpg", "bird/x2.jpg", "bird/x3.jpg"]
    assert all(c["local"] == {"bird": None} and c["remote"] == {"cat": None} for c in listed)
    assert b.status()["conflicts"] == 3
    assert "Conflicts: 3" in b.run("status").stdout
    assert b.run("status", "--exit-code", expect=3).returncode == 3
    assert world.remote.by_hash()[image_hash(1)].labels == {"cat": None}  # left alone

    # Decided offline (the server is not asked); taking the remote side moves the file now.
    b.run("resolve", "bird/x1.jpg", "--take", "local")
    b.run("resolve", "bird/x2.jpg", "--take", "remote")
    assert b.files_of(image_hash(2)) == ["cat/x2.jpg"]
    assert world.remote.by_hash()[image_hash(1)].labels == {"cat": None}  # not sent yet
    s = b.sync("--policy", "local")  # sends x1's decision; x3 by the policy
    assert s["conflicts"] == 0 and s["relabelled"] == 2, s
    assert b.conflicts() == []
    remote = world.remote.by_hash()
    assert [remote[image_hash(i)].labels for i in (1, 2, 3)] == [
        {"bird": None},
        {"cat": None},
        {"bird": None},
    ]
    # The losing side of every settled conflict is kept in the catalog.
    rows = {r[0]: r for r in conflict_rows(b)}
    assert rows["bird/x1.jpg"][2:] == ({"bird": None}, {"cat": None}, "local")
    assert rows["bird/x2.jpg"][2:] == ({"bird": None}, {"cat": None}, "remote")
    assert rows["bird/x3.jpg"][2:] == ({"bird": None}, {"cat": None}, "local")
    a.sync()
    converged(world, a, b)

    # A second round, settled by --policy remote.
    a.move("dog/x4.jpg", "cat/x4.jpg")
    b.move("dog/x4.jpg", "bird/x4.jpg")
    a.sync()
    s = b.sync("--policy", "remote")
    assert s["conflicts"] == 0 and s["tasks"][0]["conflicts"][0]["resolution"] == "remote"
    assert b.files_of(image_hash(4)) == ["cat/x4.jpg"]
    assert conflict_rows(b)[-1][2:] == ({"bird": None}, {"cat": None}, "remote")
    converged(world, a, b)


def test_relabel_beats_delete(world: World) -> None:
    a, b = two_clones(
        world,
        {
            "dog/y.jpg": 1,
            "dog/z.jpg": 2,
            "cat/keep.jpg": 3,
            "cat/k2.jpg": 4,
            "cat/k3.jpg": 5,
            "cat/k4.jpg": 6,
        },
    )
    # Relabelled on A first, deleted on B afterwards: B gets it back.
    a.move("dog/y.jpg", "cat/y.jpg")
    (b.root / "dog/y.jpg").unlink()
    assert a.sync()["relabelled"] == 1
    s = b.sync()
    assert s["downloaded"] == 1 and s["deleted"] == 0, s
    assert b.files_of(image_hash(1)) == ["cat/y.jpg"]
    # Deleted on B first (synced), relabelled on A afterwards: the relabel wins again.
    (b.root / "dog/z.jpg").unlink()
    assert b.sync()["deleted"] == 1
    a.move("dog/z.jpg", "cat/z.jpg")
    s = a.sync()
    assert s["deleted"] == 0 and s["downloaded"] == 0, s
    assert world.remote.by_hash()[image_hash(2)].labels == {"cat": None}
    assert b.sync()["downloaded"] == 1
    assert b.files_of(image_hash(2)) == ["cat/z.jpg"]
    converged(world, a, b)


def test_regression_value_conflict(world: World) -> None:
    a = world.init("a", "price", "regression")
    for i in (1, 2):
        a.write(f"v/r{i}.jpg", i)
    side = a.root / "v/metadata.jsonl"
    side.write_text(
        "".join(json.dumps({"file_name": f"r{i}.jpg", "value": i}) + "\n" for i in (1, 2))
    )
    a.sync()
    b = world.clone("b", a.remote_task_id())
    assert b.sidecar_values() == {"v/r1.jpg": 1.0, "v/r2.jpg": 2.0}

    def set_value(c: Clone, name: str, value: float) -> None:
        p = c.root / "v/metadata.jsonl"
        rows = [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
        for row in rows:
            if row["file_name"] == name:
                row["value"] = value
        p.write_text("".join(json.dumps(r) + "\n" for r in rows))

    set_value(a, "r1.jpg", 10)
    set_value(b, "r1.jpg", 20)
    set_value(b, "r2.jpg", 5)  # changed on one side only: no conflict
    assert a.sync()["relabelled"] == 1
    s = b.sync(expect=3)
    assert s["conflicts"] == 1 and s["relabelled"] == 1, s
    [c] = b.conflicts()
    assert (c["path"], c["field"], c["local"], c["remote"]) == (
        "v/r1.jpg",
        "value",
        {"v": 20.0},
        {"v": 10.0},
    )
    # In words: the two values, not the label's name twice.
    listed = b.run("conflicts").stdout
    assert "v/r1.jpg\tvalue: base v=1, local v=20, remote v=10" in listed, listed
    b.run("resolve", "v/r1.jpg", "--take", "remote")
    assert b.sidecar_values() == {"v/r1.jpg": 10.0, "v/r2.jpg": 5.0}
    assert conflict_rows(b)[-1][1:] == ("value", {"v": 20.0}, {"v": 10.0}, "remote")
    s = b.sync()  # r1 agrees on both sides now (r2 went out with the last sync)
    assert s["relabelled"] == 0 and s["conflicts"] == 0, s
    a.sync()
    assert a.sidecar_values() == {"v/r1.jpg": 10.0, "v/r2.jpg": 5.0}
    remote = world.remote.by_hash()
    assert remote[image_hash(1)].labels == {"v": 10.0} and remote[image_hash(2)].labels == {
        "v": 5.0
    }
    # A value changed on the server reaches the sidecar, other rows and keys kept.
    (a.root / "v/metadata.jsonl").write_text(
        json.dumps({"file_name": "r1.jpg", "value": 10.0})
        + "\n"
        + json.dumps({"file_name": "r2.jpg", "value": 5.0, "note": "keep"})
        + "\n"
    )
    assert counts(a.sync()) == NOTHING
    world.remote.post(
        f"training-image/{remote[image_hash(2)].id}/update-value/",
        {"label_id": world.remote.label_id("v"), "value": 7.5},
    )
    assert a.sync()["relabelled"] == 1
    assert a.sidecar_values() == {"v/r1.jpg": 10.0, "v/r2.jpg": 7.5}
    assert '"note": "keep"' in (a.root / "v/metadata.jsonl").read_text()
    b.sync()
    assert b.sidecar_values() == a.sidecar_values()
    a.verify()
    b.verify()


def test_multi_label_tags_merge_and_remote_edits_reach_disk(world: World) -> None:
    a = world.init("a", "tags", "multi_label")
    a.write("red/x.jpg", 1)
    a.write("round/y.jpg", 2)
    a.write("red/z.jpg", 3)
    a.write("red/same.jpg", 4)
    a.sync()
    b = world.clone("b", a.remote_task_id())
    # A adds a tag to x (a hard link), B adds another tag to x: both tags stay.
    os.makedirs(a.root / "round", exist_ok=True)
    os.link(a.root / "red/x.jpg", a.root / "round/x.jpg")
    os.makedirs(b.root / "big")
    os.link(b.root / "red/x.jpg", b.root / "big/x.jpg")
    # B removes a tag of nothing else; a file of the same name but other bytes on A.
    a.write("round/same.jpg", 5)
    b.write("round/same.jpg", 6)
    a.sync()
    s = b.sync()
    assert s["failed"] == [] and s["conflicts"] == 0, s
    a.sync()
    remote = world.remote.by_hash()
    assert remote[image_hash(1)].labels == {"red": None, "round": None, "big": None}
    for c in (a, b):
        assert sorted(p for p in c.files_of(image_hash(1))) == [
            "big/x.jpg",
            "red/x.jpg",
            "round/x.jpg",
        ]
        # A name clash gets a suffix, never an overwrite.
        names = {c.files_of(image_hash(5))[0], c.files_of(image_hash(6))[0]}
        assert names == {"round/same.jpg", "round/same (2).jpg"}, names
    # A remote edit by someone else: a tag removed from x, z deleted on the server.
    world.remote.relabel(remote[image_hash(1)].id, "red", None)
    r = world.remote.http.delete(f"training-image/{remote[image_hash(3)].id}/")
    assert r.status_code == 204
    s = b.sync()
    assert s["failed"] == [] and s["deleted"] == 1 and s["relabelled"] == 1, s
    assert b.files_of(image_hash(1)) == ["big/x.jpg", "round/x.jpg"]
    assert b.files_of(image_hash(3)) == []
    trashed = [p for p in (b.root / ".localrepo" / "trash").rglob("*") if p.is_file()]
    assert sorted(p.name for p in trashed) == ["x.jpg", "z.jpg"]
    a.sync()
    converged(world, a, b)
