"""`repo task remove`: a task is unbound from its folder; no file on disk and nothing on
the server changes, its catalog rows go, its folder is ignored from then on, and a task
with changes not synced yet is kept unless --force (docs/layout.md, "Removing a task")."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from support.synchelp import World, image_hash


def catalog(root: Path, sql: str, *args: object) -> list[tuple]:
    conn = sqlite3.connect(root / ".localrepo" / "catalog.db")
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def server_state(world: World) -> tuple:
    images = sorted((r.id, r.hash, tuple(sorted(r.labels))) for r in world.remote.images())
    labels = sorted((lab["name"], lab["images_count"]) for lab in world.remote.labels())
    tasks = sorted((t["id"], t["name"]) for t in world.remote.tasks())
    return images, labels, tasks


def test_task_remove_unbinds_and_deletes_nothing(world: World) -> None:
    a = world.init("a", "pets")
    a.write("dog/d.jpg", 1)
    a.write("birds/sparrow/s.jpg", 2)
    a.write("cats/tabby/t.jpg", 3)
    a.run("task", "add", "birds", "--task", "birds")
    a.run("task", "add", "cats", "--task", "cats")
    a.sync()
    (birds_id, birds_remote), (cats_id, _cats_remote) = catalog(
        a.root, "SELECT id, remote_id FROM task WHERE name IN ('birds', 'cats') ORDER BY name"
    )
    disk = a.snapshot()
    remote = server_state(world)

    # A clean, synced task: removed without --force.
    proc = a.run("task", "remove", "birds")
    assert "birds/ is untouched" in proc.stderr and "Nothing changed on the server" in proc.stderr
    assert "join the task 'pets'" in proc.stderr
    assert a.snapshot() == {**disk, ".localrepoignore": a.snapshot()[".localrepoignore"]}
    assert "/birds/" in (a.root / ".localrepoignore").read_text().splitlines()
    assert server_state(world) == remote  # the server's task keeps everything
    assert catalog(a.root, "SELECT COUNT(*) FROM task WHERE id = ?", birds_id) == [(0,)]
    for table in ("image_label", "task_label", "conflict", "scan_problem"):
        assert catalog(a.root, f"SELECT COUNT(*) FROM {table} WHERE task_id = ?", birds_id) == [
            (0,)
        ]
    assert catalog(a.root, "SELECT COUNT(*) FROM file WHERE path LIKE 'birds/%'") == [(0,)]
    assert birds_remote is not None

    # The folder is not taken into the root's task, and a sync changes nothing anywhere.
    status = a.status()
    assert sorted(t["name"] for t in status["tasks"]) == ["cats", "pets"]
    assert all(not t["pending"] for t in status["tasks"]), status
    summary = a.sync()
    assert summary["uploaded"] == summary["deleted"] == summary["relabelled"] == 0, summary
    assert server_state(world) == remote
    assert (a.root / "birds/sparrow/s.jpg").read_bytes() == disk["birds/sparrow/s.jpg"]

    # A task with a change not synced yet is kept (exit 3), unless --force.
    a.write("cats/tabby/t2.jpg", 4)
    proc = a.run("task", "remove", "cats", expect=3)
    assert "1 change not synced yet" in proc.stderr and "--force" in proc.stderr
    assert catalog(a.root, "SELECT name FROM task WHERE id = ?", cats_id) == [("cats",)]
    assert "/cats/" not in (a.root / ".localrepoignore").read_text()
    proc = a.run("task", "remove", "cats", "--force")
    assert "Gave up 1" in proc.stderr
    assert (a.root / "cats/tabby/t2.jpg").is_file()
    assert image_hash(4) not in {r.hash for r in world.remote.images()}  # never uploaded
    assert server_state(world) == remote
    assert catalog(a.root, "SELECT name FROM task") == [("pets",)]
    pending = json.loads(a.run("log", "--pending", "--json").stdout)
    assert pending == []  # the removed task's changes are history, not pending

    # The root's task stays; an unknown name says which ones exist.
    proc = a.run("task", "remove", "pets", expect=2)
    assert "task of the repository's root" in proc.stderr
    proc = a.run("task", "remove", "pest", expect=2)
    assert "did you mean 'pets'?" in proc.stderr
