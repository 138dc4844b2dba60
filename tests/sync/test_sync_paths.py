"""Paths, not internals (issue 18): `repo status`, `repo sync -n` / `-v` and `repo log`,
run as the real CLI against the real server, name the files with what happened to each
(new, relabelled old -> new, value changed old -> new, deleted, damaged, conflicts with
both sides), never a hash or an internal operation name; `--json` keeps its keys and
gains the same detail."""

from __future__ import annotations

import json
import re

from support.synchelp import Clone, World, image_hash

HEX16 = re.compile(r"[0-9a-f]{16}")
INTERNAL = re.compile(
    r"set_base|set_remote|set_local|remove_remote|trash_local|detach|ensure_label|attach_label|op:"
)


def _user_words(text: str) -> None:
    """No hash and no planner op name anywhere in `text`."""
    assert not HEX16.search(text), text
    assert not INTERNAL.search(text), text
    assert "None" not in text, text


def _status(clone: Clone, *args: str) -> str:
    out = clone.run("status", *args).stdout
    _user_words(out)
    return out


def _synced_pets(world: World) -> Clone:
    a = world.init("a", "pets")
    a.write("cats/a.jpg", 1)
    a.write("dogs/b.jpg", 2)
    a.write("cats/d.jpg", 3)
    a.write("dogs/e.jpg", 4)
    a.write("cats/f.jpg", 5)
    a.sync()
    return a


def test_status_dry_run_and_log_name_each_file_with_what_happened(world: World) -> None:
    a = _synced_pets(world)
    a.write("cats/new.jpg", 10)  # new
    a.move("dogs/b.jpg", "cats/b.jpg")  # relabelled
    (a.root / "cats/d.jpg").unlink()  # deleted
    (a.root / "dogs/e.jpg").write_bytes(b"no longer an image")  # damaged
    a.move("cats/f.jpg", "cats/sub/f.jpg")  # moved: the same label

    out = _status(a)
    assert "pending changes:" in out  # the counts stay
    assert "Changes not yet synced" in out
    assert "  new:           cats/new.jpg (cats)\n" in out
    assert "  relabelled:    cats/b.jpg (from dogs/b.jpg; dogs -> cats)\n" in out
    assert "  deleted:       cats/d.jpg (was cats)\n" in out
    assert "  moved:         cats/sub/f.jpg (from cats/f.jpg)\n" in out
    assert "  dogs/e.jpg: not an image\n" in out  # the damaged section names it
    assert "Nothing pending" not in out

    # --json: the old keys, and one entry per file in the same words.
    st = a.status()
    assert {"tasks", "pending_total", "damaged", "conflicts", "changes"} <= set(st)
    by_path = {c["path"]: c for c in st["file_changes"]}
    assert by_path["cats/new.jpg"]["kind"] == "new"
    assert (by_path["cats/b.jpg"]["old"], by_path["cats/b.jpg"]["new"]) == ("dogs", "cats")
    assert by_path["cats/d.jpg"]["kind"] == "deleted"
    assert "dogs/e.jpg" not in by_path  # damaged: held back, listed under `damaged`
    assert [d["path"] for d in st["damaged"]] == ["dogs/e.jpg"]

    # The dry run: one line per file, then totals in words; -v lists the same files.
    for args in (("sync", "-n"), ("sync", "-n", "-v"), ("-v", "sync", "-n")):
        proc = a.run(*args, expect=3)  # a damaged file is held back: not in sync
        _user_words(proc.stdout + proc.stderr)
        lines = proc.stdout.splitlines()
        assert "  upload: cats/new.jpg (new, cats)" in lines
        assert "  relabel on the server: cats/b.jpg (dogs -> cats)" in lines
        assert "  delete on the server: cats/d.jpg (was cats)" in lines
        assert lines[-1] == (
            "pets: would upload 1, relabel 1 on the server, delete 1 on the server"
        ), lines
        assert "held back: dogs/e.jpg" in proc.stderr
    s = a.sync("-n", expect=3)
    assert {"plan", "ops", "changes"} <= set(s["tasks"][0])  # old keys, and the detail
    assert {(c["kind"], c["side"], c["path"]) for c in s["tasks"][0]["changes"]} == {
        ("new", "remote", "cats/new.jpg"),
        ("relabelled", "remote", "cats/b.jpg"),
        ("deleted", "remote", "cats/d.jpg"),
    }

    # A plain sync stays concise: the totals only.
    proc = a.run("sync", expect=3)
    assert "upload" not in proc.stdout.replace("uploaded 1", "")
    assert proc.stdout.startswith("uploaded 1, downloaded 0, relabelled 1, deleted 1"), proc.stdout

    # The log: what happened to which file, on which side; no bookkeeping, no "-> None".
    log = a.run("log").stdout
    _user_words(log)
    assert "local   new: cats/new.jpg (cats)" in log
    assert "local   relabelled: cats/b.jpg (from dogs/b.jpg; dogs -> cats)" in log
    assert "local   deleted: cats/d.jpg (was cats)" in log
    assert "local   damaged: dogs/e.jpg (not an image)" in log
    assert "local   moved: cats/sub/f.jpg (from cats/f.jpg)" in log
    assert "server  uploaded: cats/new.jpg (cats)" in log
    assert "server  relabelled on the server: cats/b.jpg (dogs -> cats)" in log
    assert "server  deleted on the server: cats/d.jpg (was cats)" in log
    assert "server  label added on the server: cats" in log  # the first sync's
    # --debug: every entry as recorded, bookkeeping included.
    debug = a.run("log", "--debug").stdout
    assert "op:set_base" in debug and "op:upload" in debug
    # --limit counts the lines shown.
    assert len(a.run("log", "--limit", "2").stdout.splitlines()) == 2
    # --json: every entry with its old keys, and its change (null for bookkeeping).
    entries = json.loads(a.run("log", "--json").stdout)
    keys = {"id", "time", "kind", "status", "task", "path", "old_path", "hash", "detail"}
    assert all(keys | {"error", "change"} <= set(e) for e in entries)
    assert any(e["kind"] == "op:set_base" and e["change"] is None for e in entries)
    uploaded = [e["change"] for e in entries if e["kind"] == "op:upload"]
    assert {"path": "cats/new.jpg", "side": "remote", "kind": "new"}.items() <= uploaded[0].items()


def test_regression_values_read_old_to_new(world: World) -> None:
    a = world.init("a", "price", "regression")
    a.write("low/a.jpg", 1)
    a.write("low/b.jpg", 2)
    sidecar = a.root / "low/metadata.jsonl"
    sidecar.write_text(
        json.dumps({"file_name": "a.jpg", "value": 1.5})
        + "\n"
        + json.dumps({"file_name": "b.jpg", "value": 2})
        + "\n"
    )
    a.sync()
    sidecar.write_text(
        json.dumps({"file_name": "a.jpg", "value": 3})
        + "\n"
        + json.dumps({"file_name": "b.jpg", "value": 2})
        + "\n"
    )
    out = _status(a)
    assert "  value changed: low/a.jpg (low=1.5 -> low=3)\n" in out
    assert "V low/a.jpg" in a.run("status", "--porcelain").stdout  # a path, not a hash
    out = a.run("sync", "-n").stdout
    _user_words(out)
    assert "  change value on the server: low/a.jpg (low=1.5 -> low=3)" in out
    assert "price: would change 1 value on the server" in out
    a.sync()
    log = a.run("log").stdout
    _user_words(log)
    assert "local   value changed: low/a.jpg (low=1.5 -> low=3)" in log
    assert "server  value changed on the server: low/a.jpg (low=1.5 -> low=3)" in log
    assert world.remote.by_hash()[image_hash(1)].labels == {"low": 3.0}


def test_remote_changes_and_conflicts_name_files_and_both_sides(world: World) -> None:
    a = _synced_pets(world)
    b = world.clone("b", a.remote_task_id())
    a.write("dogs/x.jpg", 20)  # new on the server, once a syncs
    a.move("cats/f.jpg", "dogs/f.jpg")  # relabelled on the server
    a.move("cats/a.jpg", "dogs/a.jpg")  # ... while b relabels it otherwise: a conflict
    a.sync()
    b.move("cats/a.jpg", "birds/a.jpg")

    out = b.run("sync", "-n", expect=3).stdout
    _user_words(out)
    assert "  download: dogs/x.jpg (dogs)" in out
    assert "  relabel here: cats/f.jpg (cats -> dogs)" in out
    # (birds: the label b's side of the conflict keeps in use)
    assert "pets: would add 1 label on the server, download 1, relabel 1 here" in out, out
    # -v on a real run names what it did.
    proc = b.run("sync", "-v", expect=3)
    _user_words(proc.stdout + proc.stderr)
    assert "  downloaded: dogs/x.jpg (dogs)" in proc.stdout
    assert "  relabelled here: cats/f.jpg (cats -> dogs)" in proc.stdout
    assert "conflict in pets: birds/a.jpg label: here birds, on the server dogs" in proc.stderr

    out = _status(b)
    assert "Conflicts: 1 (settle them with 'repo resolve'" in out
    assert "  birds/a.jpg (here birds, on the server dogs)\n" in out
    log = b.run("log").stdout
    _user_words(log)
    assert "local   downloaded: dogs/x.jpg (dogs)" in log
    assert "local   relabelled here: cats/f.jpg (cats -> dogs)" in log


def test_long_lists_are_capped_and_all_lists_them(world: World) -> None:
    a = world.init("a", "pets")
    for i in range(23):
        a.write(f"cats/n{i:02}.jpg", i)
    out = _status(a)
    assert out.count("  new:") == 10
    assert "  ... and 13 more ('repo status --all' lists them all)\n" in out
    out = _status(a, "--all")
    assert out.count("  new:") == 23 and "more (" not in out

    out = a.run("sync", "-n").stdout
    _user_words(out)
    lines = out.splitlines()
    assert lines[:3] == [
        "  add label on the server: cats",
        "  upload: cats/n00.jpg (new, cats)",
        "  upload: cats/n01.jpg (new, cats)",
    ]
    assert len(lines) == 22 and out.count("  upload: ") == 19
    assert "  ... and 4 more (-v lists them all)\n" in out
    assert "pets: would add 1 label on the server, upload 23" in out
    out = a.run("sync", "-n", "-v").stdout
    assert out.count("  upload: ") == 23 and "more (" not in out
