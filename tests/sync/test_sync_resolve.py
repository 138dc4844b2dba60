"""`repo resolve` decides conflicts offline (issue 18, item 4): through the real CLI, on
real two-clone conflicts, with the server stopped. `--dry-run` changes nothing (catalog
and files byte-identical); taking the remote side changes the files at once (through
the trash, never losing one); taking the local side is sent by the next sync. The
output names the files and shows the values on each side."""

from __future__ import annotations

import json
from pathlib import Path

from support.synchelp import Clone, Remote, World, image_hash

from .test_sync_two_clones import conflict_rows, converged, two_clones


def everything(clone: Clone) -> dict[str, bytes]:
    """Every file under the root, the catalog included (not the lock file)."""
    return {
        p.relative_to(clone.root).as_posix(): p.read_bytes()
        for p in sorted(clone.root.rglob("*"))
        if p.is_file() and p.name != "lock"
    }


def offline_world(server_factory, tmp_path: Path):
    server = server_factory()
    acct = server.new_account()
    return server, World(acct.url, acct.token, tmp_path)


def server_back(server, world: World) -> None:
    server.start()
    world.remote = Remote(world.url, world.token)


def test_multi_class_decisions_are_recorded_and_applied_offline(server_factory, tmp_path):
    server, world = offline_world(server_factory, tmp_path)
    a, b = two_clones(world, {"dog/x1.jpg": 1, "dog/x2.jpg": 2, "cat/c.jpg": 9})
    for i in (1, 2):
        a.move(f"dog/x{i}.jpg", f"cat/x{i}.jpg")
        b.move(f"dog/x{i}.jpg", f"bird/x{i}.jpg")
    a.sync()
    assert b.sync(expect=3)["conflicts"] == 2
    world.remote.close()
    server.stop()  # from here on, resolve must not need it

    before = everything(b)
    proc = b.run("resolve", "--all", "--take", "remote", "--dry-run")
    assert everything(b) == before  # nothing changed: files, catalog, trash
    out = proc.stdout
    assert "bird/x1.jpg: would take the remote's cat (here: bird)" in out, out
    assert "would change now to say cat" in out and "Would record 2 decisions" in out, out
    proc = b.run("resolve", "bird/x1.jpg", "--keep", "cat", "-n")
    assert "would move bird/x1.jpg to cat/" in proc.stdout, proc.stdout
    assert everything(b) == before

    proc = b.run("resolve", "bird/x1.jpg", "--take", "remote")
    out = proc.stdout
    assert "bird/x1.jpg: takes the remote's cat (here: bird)" in out, out
    assert "moved bird/x1.jpg to cat/x1.jpg" in out and "next 'repo sync' sends it" in out, out
    assert b.files_of(image_hash(1)) == ["cat/x1.jpg"]
    proc = b.run("resolve", "bird/x2.jpg", "--take", "local")
    assert (
        "bird/x2.jpg: keeps the local bird (the server has cat); the next 'repo sync' sends it."
        in proc.stdout
    ), proc.stdout
    assert b.files_of(image_hash(2)) == ["bird/x2.jpg"]
    listed = {c["path"]: c["decision"] for c in b.conflicts()}
    assert listed == {"bird/x1.jpg": "remote", "bird/x2.jpg": "local"}
    assert "(decided: local wins at the next 'repo sync')" in b.run("conflicts").stdout
    status = b.run("status").stdout
    assert "Conflicts: 2, all decided ('repo sync' carries the decisions out):" in status
    assert (
        "bird/x2.jpg (here bird, on the server cat; decided: this side wins at the next "
        "'repo sync')" in status
    ), status

    server_back(server, world)
    # A pull cannot send the local decision: it says it is decided, not unresolved.
    pulled = b.run("pull", expect=None)
    assert (
        "bird/x2.jpg label: here bird, on the server cat (decided: this side wins; "
        "'repo push' or 'repo sync' sends it)" in pulled.stderr
    ), pulled.stderr
    assert "needs 'repo resolve'" not in pulled.stderr
    assert world.remote.by_hash()[image_hash(2)].labels == {"cat": None}  # nothing was sent
    s = b.sync()  # exit 0: in sync
    assert s["relabelled"] == 1 and s["conflicts"] == 0, s
    remote = world.remote.by_hash()
    assert remote[image_hash(1)].labels == {"cat": None}
    assert remote[image_hash(2)].labels == {"bird": None}
    rows = {r[0]: r for r in conflict_rows(b)}
    assert rows["bird/x1.jpg"][2:] == ({"bird": None}, {"cat": None}, "remote")
    assert rows["bird/x2.jpg"][2:] == ({"bird": None}, {"cat": None}, "local")
    assert b.conflicts() == []
    a.sync()
    converged(world, a, b)
    server.stop()


def set_value(c: Clone, name: str, value: float) -> None:
    p = c.root / "v/metadata.jsonl"
    rows = [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
    for row in rows:
        if row["file_name"] == name:
            row["value"] = value
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_regression_decisions_show_values_and_work_offline(server_factory, tmp_path):
    server, world = offline_world(server_factory, tmp_path)
    a = world.init("a", "price", "regression")
    for i in (1, 2):
        a.write(f"v/r{i}.jpg", i)
    (a.root / "v/metadata.jsonl").write_text(
        "".join(json.dumps({"file_name": f"r{i}.jpg", "value": i}) + "\n" for i in (1, 2))
    )
    a.sync()
    b = world.clone("b", a.remote_task_id())
    for clone, values in ((a, (10, 30)), (b, (20, 40))):
        set_value(clone, "r1.jpg", values[0])
        set_value(clone, "r2.jpg", values[1])
    a.sync()
    assert b.sync(expect=3)["conflicts"] == 2
    world.remote.close()
    server.stop()

    before = everything(b)
    proc = b.run("resolve", "v/r1.jpg", "v/r2.jpg", "--take", "remote", "-n")
    assert everything(b) == before
    assert "v/r1.jpg: would take the remote's v=10 (here: v=20)" in proc.stdout, proc.stdout
    assert "v/r2.jpg: would take the remote's v=30 (here: v=40)" in proc.stdout, proc.stdout

    proc = b.run("resolve", "v/r1.jpg", "--take", "remote")
    assert "v/r1.jpg: takes the remote's v=10 (here: v=20)" in proc.stdout, proc.stdout
    assert b.sidecar_values() == {"v/r1.jpg": 10.0, "v/r2.jpg": 40.0}
    proc = b.run("resolve", "v/r2.jpg", "--take", "local")
    assert "v/r2.jpg: keeps the local v=40 (the server has v=30)" in proc.stdout, proc.stdout
    assert b.sidecar_values() == {"v/r1.jpg": 10.0, "v/r2.jpg": 40.0}

    server_back(server, world)
    s = b.sync()
    assert s["conflicts"] == 0 and s["relabelled"] == 1, s  # r2's value sent
    remote = world.remote.by_hash()
    assert remote[image_hash(1)].labels == {"v": 10.0}
    assert remote[image_hash(2)].labels == {"v": 40.0}
    assert b.conflicts() == []
    a.sync()
    assert a.sidecar_values() == b.sidecar_values() == {"v/r1.jpg": 10.0, "v/r2.jpg": 40.0}
    a.verify()
    b.verify()
    server.stop()
