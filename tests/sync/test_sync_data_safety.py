"""Issue 16's cases, each through the real CLI on two clones against a real server: a
damaged file, odd folder names, two tasks sharing label names, a takeover by
`repo init`, and the same bytes added under two labels at once never lose an image
nor leave a clone stuck. (Kills during local moves: test_sync_crash.py.)"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from support.faultproxy import FaultProxy
from support.synchelp import Clone, World, image_hash, img
from support.waiting import limit, until

from .test_sync_two_clones import converged, labels_by_hash

NOTHING = {"uploaded": 0, "downloaded": 0, "relabelled": 0, "deleted": 0}


def counts(summary: dict) -> dict:
    return {k: summary[k] for k in NOTHING}


def remote_state(world: World) -> dict[str, tuple[str | None, dict]]:
    return {r.id: (r.hash, r.labels) for r in world.remote.images()}


def held(summary: dict) -> dict[str, str]:
    return {h["path"]: h["reason"] for t in summary["tasks"] for h in t["held"]}


def task_label_ids(world: World, task_id: str) -> dict[str, str]:
    return {lab["name"]: lab["id"] for lab in world.remote._all("label/", task=task_id)}


# -- 1. damage is never deletion ------------------------------------------------------------


def test_a_damaged_file_is_held_back_on_every_run_and_never_deleted(world: World) -> None:
    a = world.init("a", "pets")
    seeds = {"dog/trunc.jpg": 1, "dog/empty.jpg": 2, "cat/garbage.jpg": 3, "cat/fifo.jpg": 4}
    for rel, seed in {**seeds, "cat/ok.jpg": 5}.items():
        a.write(rel, seed)
    a.sync()
    b = world.clone("b", a.remote_task_id())
    before, disk_b = remote_state(world), b.snapshot()

    whole = img(1)
    (a.root / "dog/trunc.jpg").write_bytes(whole[: len(whole) // 2])  # a copy cut short
    (a.root / "dog/empty.jpg").write_bytes(b"")  # a crashed tool
    (a.root / "cat/garbage.jpg").write_bytes(b"<html>not an image</html>")
    (a.root / "cat/fifo.jpg").unlink()
    os.mkfifo(a.root / "cat/fifo.jpg")  # no longer a regular file

    for _ in range(3):  # the run that sees the damage, and every later one
        s = a.sync(expect=3)
        assert counts(s) == NOTHING and s["failed"] == [] and not s["tasks"][0]["stop"], s
        reasons = held(s)
        assert set(reasons) == set(seeds), reasons
        assert all(r.startswith("damaged (") for r in reasons.values()), reasons
        assert remote_state(world) == before
    assert "held back: dog/trunc.jpg: damaged (" in a.run("sync", expect=3).stderr
    st = a.status()
    assert {d["path"] for d in st["damaged"]} == set(seeds), st["damaged"]
    assert "Damaged (4)" in a.run("status").stdout
    # The other clone's good copies stay where they are.
    s = b.sync()
    assert counts(s) == NOTHING, s
    assert b.snapshot() == disk_b

    # Valid again with the same bytes: nothing to do, and nothing held.
    (a.root / "cat/fifo.jpg").unlink()
    for rel, seed in seeds.items():
        a.write(rel, seed)
    s = a.sync()
    assert counts(s) == NOTHING and held(s) == {}, s
    assert a.status()["damaged"] == []
    # Damaged, then valid with other bytes: an ordinary change (a new image there).
    (a.root / "cat/ok.jpg").write_bytes(b"")
    assert held(a.sync(expect=3)) == {"cat/ok.jpg": "damaged (empty file)"}
    a.write("cat/ok.jpg", 9)
    s = a.sync()
    assert s["uploaded"] == 1 and s["deleted"] == 1, s
    b.sync()
    converged(world, a, b)
    assert b.files_of(image_hash(9)) == ["cat/ok.jpg"] and b.files_of(image_hash(5)) == []


# -- 2. one naming rule, both directions -----------------------------------------------------


def test_a_folder_name_that_cannot_round_trip_is_refused_and_loses_nothing(
    world: World,
) -> None:
    a = world.init("a", "pets")
    a.write("dog/d1.jpg", 1)
    a.write("dog/d2.jpg", 2)
    a.write("cat/c1.jpg", 3)
    a.sync()
    b = world.clone("b", a.remote_task_id())
    before, disk_b = remote_state(world), b.snapshot()
    current = "dog"
    for odd, plain in (
        ("dog ", "dog"),
        (" dog", "dog"),
        ("dog\u00a0x", "dog x"),
        ("dog\tx", "dog x"),
        ("do\u200bg", "dog"),
        ("dog\\x", "dog-x"),
    ):
        os.rename(a.root / current, a.root / odd)
        current = odd
        proc = a.run("sync", expect=3)
        assert f"folder '{odd}' cannot be a label folder" in proc.stderr, (odd, proc.stderr)
        assert f"rename it to '{plain}'" in proc.stderr, (odd, proc.stderr)
        s = a.sync(expect=3)
        assert counts(s) == NOTHING and not s["tasks"][0]["stop"], (odd, s)
        assert set(held(s)) == {f"{odd}/d1.jpg", f"{odd}/d2.jpg"}, (odd, s)
        assert remote_state(world) == before
        [problem] = [p for p in a.status()["problems"] if p["kind"] == "folder_name"]
        assert problem["path"] == odd
    # A new image in a refused folder is not uploaded either.
    a.write(f"{current}/new.jpg", 4)
    s = a.sync(expect=3)
    assert s["uploaded"] == 0 and f"{current}/new.jpg" in held(s), s
    os.rename(a.root / current, a.root / "dog")  # renamed as the message said
    s = a.sync()
    assert (s["uploaded"], s["deleted"], held(s)) == (1, 0, {}), s
    assert b.sync()["downloaded"] == 1
    assert b.snapshot() == {**disk_b, "dog/new.jpg": img(4)}

    # Names a folder holds only escaped, and a long one (220 bytes), round-trip.
    long = "é" * 110
    a.write(f"{long}/l.jpg", 5)
    a.write("a%2Fb/s.jpg", 6)
    a.write("%5Fx/u.jpg", 7)
    a.write("100%/p.jpg", 8)
    s = a.sync()
    assert s["uploaded"] == 4 and held(s) == {}, s
    names = {lab["name"] for lab in world.remote.labels()}
    assert {long, "a/b", "_x", "100%"} <= names, names
    assert b.sync()["downloaded"] == 4
    for rel, seed in ((f"{long}/l.jpg", 5), ("a%2Fb/s.jpg", 6), ("%5Fx/u.jpg", 7)):
        assert b.files_of(image_hash(seed)) == [rel]
    assert b.files_of(image_hash(8)) == ["100%/p.jpg"]
    converged(world, a, b)


# -- 3. isolation between tasks --------------------------------------------------------------


def test_two_tasks_with_the_same_label_names_keep_their_images_apart(world: World) -> None:
    pets = world.init("pets", "pets")
    pets.write("dog/p1.jpg", 1)
    pets.write("cat/p2.jpg", 2)
    pets.write("dog/shared.jpg", 3)
    pets.sync()
    zoo = world.init("zoo", "zoo")
    zoo.write("dog/z1.jpg", 4)
    zoo.write("cat/z2.jpg", 5)
    zoo.write("cat/shared.jpg", 3)  # the same bytes: one server image, two tasks
    zoo.sync()
    pets_id, zoo_id = pets.remote_task_id(), zoo.remote_task_id()
    pets_labels, zoo_labels = task_label_ids(world, pets_id), task_label_ids(world, zoo_id)
    assert set(pets_labels) == set(zoo_labels) == {"dog", "cat"}
    assert not set(pets_labels.values()) & set(zoo_labels.values())  # never adopted
    pets2, zoo2 = world.clone("pets2", pets_id), world.clone("zoo2", zoo_id)
    assert sorted(pets2.tree().values()) == sorted(image_hash(s) for s in (1, 2, 3))
    assert sorted(zoo2.tree().values()) == sorted(image_hash(s) for s in (3, 4, 5))
    assert pets2.files_of(image_hash(3)) == ["dog/shared.jpg"]
    assert zoo2.files_of(image_hash(3)) == ["cat/shared.jpg"]

    # A delete in one task takes that task's label off; the image stays for the other.
    (pets.root / "dog/shared.jpg").unlink()
    (pets.root / "dog/p1.jpg").unlink()
    s = pets.sync()
    assert s["deleted"] == 2, s
    shared = world.remote.by_hash()[image_hash(3)]
    assert set(shared.labels) == {"cat"} and image_hash(1) not in world.remote.by_hash()
    ids = {
        lab["id"] for lab in world.remote.http.get(f"training-image/{shared.id}/").json()["labels"]
    }
    assert ids == {zoo_labels["cat"]}
    assert pets2.sync()["deleted"] == 2
    for clone in (zoo, zoo2):
        s = clone.sync()
        assert counts(s) == NOTHING, s
        assert clone.files_of(image_hash(3)) == ["cat/shared.jpg"]
    in_task(world, pets_id, pets, pets2)
    in_task(world, zoo_id, zoo, zoo2)


# -- 4. no silent takeover -------------------------------------------------------------------


def test_init_never_takes_over_a_server_task_with_content(world: World) -> None:
    a = world.init("a", "pets")
    for i, rel in enumerate(("dog/a.jpg", "dog/b.jpg", "cat/c.jpg")):
        a.write(rel, i)
    a.sync()
    before = remote_state(world)
    task_id = a.remote_task_id()

    # With the server reachable, init refuses and creates nothing.
    other = world.tmp / "other"
    proc = Clone(world.tmp, world.env()).run(
        "init", str(other), "--task", "pets", "--remote", world.url, expect=7
    )
    for words in (
        "task 'pets'",
        "3 images and 2 labels",
        f"repo clone {world.url} --remote-task {task_id}",
        "repo init --task NEW_NAME",
        "--join",
    ):
        assert words in proc.stderr, (words, proc.stderr)
    assert not (other / ".localrepo").exists()

    # Made offline (no token to ask with), its first sync refuses, the dry run too,
    # and neither records anything.
    offline = world.tmp / "offline"
    Clone(world.tmp, world.env(token="")).run(
        "init", str(offline), "--task", "pets", "--remote", world.url
    )
    o = Clone(offline, world.env())
    o.write("bird/x.jpg", 7)
    assert "task 'pets'" in o.run("sync", "-n", expect=7).stderr
    assert "3 images and 2 labels" in o.run("sync", expect=7).stderr
    conn = sqlite3.connect(offline / ".localrepo" / "catalog.db")
    assert conn.execute("SELECT remote_id FROM task").fetchall() == [(None,)]
    conn.close()
    assert remote_state(world) == before and len(world.remote.tasks()) == 1
    # Another name: a task of its own.
    o.run("task", "rename", "pets", "birds")
    s = o.sync()
    assert s["uploaded"] == 1 and s["tasks"][0]["created_remote_task"], s
    assert sorted(t["name"] for t in world.remote.tasks()) == ["birds", "pets"]
    assert {h for h, _labels in remote_state(world).values()} == {
        image_hash(i) for i in (0, 1, 2, 7)
    }

    # Joining on purpose.
    joined = world.tmp / "joined"
    Clone(world.tmp, world.env()).run(
        "init", str(joined), "--task", "pets", "--remote", world.url, "--join"
    )
    j = Clone(joined, world.env())
    assert j.remote_task_id() == task_id
    assert j.sync()["downloaded"] == 3
    in_task(world, task_id, a, j)


def task_state(world: World, task_id: str) -> dict[str, set[str]]:
    """{content hash: label names} of one server task's images."""
    ids = set(task_label_ids(world, task_id).values())
    out: dict[str, set[str]] = {}
    for item in world.remote._all("training-image/", labels=",".join(ids)):
        digest = (item.get("meta_data") or {}).get("content_hash", "").split(":")[-1]
        out[digest] = {lab["name"] for lab in item["labels"] if lab["id"] in ids}
    return out


def in_task(world: World, task_id: str, *clones: Clone) -> None:
    """Every clone verifies and holds exactly the task's images under their labels."""
    want = task_state(world, task_id)
    for clone in clones:
        clone.verify()
        assert labels_by_hash(clone) == want


# -- 5. no stuck states ----------------------------------------------------------------------


def _sync_in_background(clone: Clone) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "localrepo", "-C", str(clone.root), "sync", "--json", "-j", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clone.env,
    )


def test_the_same_bytes_added_on_two_clones_at_once_make_one_conflict(world: World) -> None:
    a = world.init("a", "pets")
    a.write("dog/seed.jpg", 1)
    a.sync()
    b = world.clone("b", a.remote_task_id())
    proxy = FaultProxy(world.url).start()
    try:
        b.run("remote", "set", proxy.url)
        # b's upload is held at the proxy until a has uploaded the same bytes and
        # labelled them (an event: a's sync has returned, however long it took).
        held = proxy.add("POST", r"training-image/?$", "hold")
        a.write("cat/x.jpg", 7)
        b.write("dog/x.jpg", 7)
        running = _sync_in_background(b)
        until(
            lambda: held.arrived.is_set() or running.poll() is not None,
            what="b's upload to reach the proxy",
        )
        assert running.poll() is None, running.communicate()
        assert a.sync()["uploaded"] == 1
        held.release.set()
        out, err = running.communicate(timeout=limit(120))
    finally:
        proxy.stop()
    assert running.returncode == 3, (out, err)
    s = json.loads(out)
    assert s["conflicts"] == 1 and s["failed"] == [], s
    assert world.remote.by_hash()[image_hash(7)].labels == {"cat": None}  # one category
    b.run("remote", "set", world.url)
    [c] = b.conflicts()
    assert (c["path"], c["local"], c["remote"]) == ("dog/x.jpg", {"dog": None}, {"cat": None})
    b.run("resolve", "dog/x.jpg", "--take", "local")
    b.sync()
    assert world.remote.by_hash()[image_hash(7)].labels == {"dog": None}
    assert a.sync()["relabelled"] == 1
    converged(world, a, b)


def test_two_categories_on_the_server_or_in_two_folders_are_settled_by_keeping_one(
    world: World,
) -> None:
    a = world.init("a", "pets")
    a.write("cat/x.jpg", 7)
    a.write("dog/y.jpg", 8)
    a.sync()
    b = world.clone("b", a.remote_task_id())
    # The worst race: the server image got a second category.
    x = world.remote.by_hash()[image_hash(7)]
    world.remote.relabel(x.id, None, "dog")
    for clone in (a, b):
        s = clone.sync(expect=3)
        assert s["conflicts"] == 1 and counts(s) == NOTHING, s
        [c] = clone.conflicts()
        assert c["remote"] == {"cat": None, "dog": None}, c
    proc = a.run("resolve", "cat/x.jpg", "--keep", "cat")
    a.sync()
    assert world.remote.by_hash()[image_hash(7)].labels == {"cat": None}, proc.stderr
    assert b.sync()["relabelled"] == 0 and b.conflicts() == []
    converged(world, a, b)

    # A copy in a second label folder: a conflict on that image, kept in one by the user.
    (b.root / "cat/y-copy.jpg").write_bytes(img(8))
    s = b.sync(expect=3)
    assert s["conflicts"] == 1 and counts(s) == NOTHING, s
    proc = b.run("resolve", "cat/y-copy.jpg", "--keep", "dog")
    assert "cat/y-copy.jpg to the trash" in proc.stdout, proc.stdout
    assert b.files_of(image_hash(8)) == ["dog/y.jpg"]
    assert list((b.root / ".localrepo" / "trash").rglob("y-copy.jpg"))
    b.sync()
    assert a.sync()["relabelled"] == 0
    converged(world, a, b)


def test_resolve_says_what_it_needs(world: World, tmp_path: Path) -> None:
    a = world.init("a", "pets")
    a.write("dog/x.jpg", 1)
    a.sync()
    assert "no open conflicts" in a.run("resolve", "--all", "--take", "local", expect=1).stderr
    assert (
        "no open conflict for: dog/x.jpg"
        in a.run("resolve", "dog/x.jpg", "--take", "local", expect=1).stderr
    )
    assert "--take" in a.run("resolve", "dog/x.jpg", expect=2).stderr


def test_a_remote_label_whose_folder_is_ignored_here_is_left_alone(world: World) -> None:
    """Downloads into a folder the ignore rules hide would be invisible to the next scan,
    which would take them for deletes: such a label is reported and left alone."""
    a = world.init("a", "pets")
    a.write("raw/r.jpg", 1)
    a.write("dog/d.jpg", 2)
    a.sync()
    b = world.clone("b", a.remote_task_id())
    (b.root / ".localrepoignore").write_text("# scratch space\nraw/\n")
    a.write("raw/r2.jpg", 3)
    a.sync()
    before = remote_state(world)
    for _ in range(2):
        proc = b.run("sync", expect=3)  # not in sync: the label is left alone
        assert "remote label 'raw' would live in raw/, which .localrepoignore (line 2" in (
            proc.stderr
        ), proc.stderr
        assert remote_state(world) == before
    assert b.files_of(image_hash(3)) == [] and b.files_of(image_hash(1)) == ["raw/r.jpg"]
    assert world.remote.by_hash()[image_hash(1)].labels == {"raw": None}
    (b.root / ".localrepoignore").unlink()
    s = b.sync()
    assert s["downloaded"] == 1 and s["deleted"] == 0, s
    converged(world, a, b)
