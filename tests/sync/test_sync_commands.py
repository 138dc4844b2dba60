"""The safety limit, push / pull / dry runs, the summary (JSON and the line), the
requests of a no-change sync, and remote names that must never escape the task root."""

from __future__ import annotations

import base64
import re
import uuid

import httpx
from support.synchelp import World, api_requests, image_hash, img, snapshot_of
from support.waiting import limit, until

SUMMARY_KEYS = {
    "dry_run",
    "stopped",
    "uploaded",
    "downloaded",
    "relabelled",
    "deleted",
    "labels_created",
    "conflicts",
    "failed",
    "tasks",
    "seconds",
}
TASK_KEYS = {
    "task",
    "remote_id",
    "created_remote_task",
    "plan",
    "ops",
    "changes",
    "conflicts",
    "problems",
    "held",
    "left_for_other_side",
    "twins_left",
    "stop",
    "stop_paths",
}


def remote_state(world: World) -> dict[str, tuple[str, dict]]:
    return {r.id: (r.hash, r.labels) for r in world.remote.images()}


def test_mass_delete_stops_until_forced(world: World) -> None:
    a = world.init("a", "pets")
    for i in range(10):
        a.write(f"{'dog' if i % 2 else 'cat'}/i{i}.jpg", i)
    a.sync()
    b = world.clone("b", a.remote_task_id())
    before_remote = remote_state(world)
    for i in range(8):  # 80% of the images
        (a.root / f"{'dog' if i % 2 else 'cat'}/i{i}.jpg").unlink()
    disk = a.snapshot()
    proc = a.run("sync", expect=7)
    assert "--force" in proc.stderr and "8 of 10" in proc.stderr, proc.stderr
    # It names what it would delete: the files deleted here.
    for i in range(8):
        assert f"would delete: {'dog' if i % 2 else 'cat'}/i{i}.jpg" in proc.stderr, proc.stderr
    s = a.sync(expect=7)
    assert s["tasks"][0]["stop"] and s["deleted"] == 0
    assert s["tasks"][0]["stop_paths"] == sorted(
        f"{'dog' if i % 2 else 'cat'}/i{i}.jpg" for i in range(8)
    )
    assert remote_state(world) == before_remote
    assert a.snapshot() == disk
    s = a.sync("--force")
    assert s["deleted"] == 8 and s["tasks"][0]["stop"] is None, s
    assert sorted(h for h, labels in remote_state(world).values() if labels) == sorted(
        [image_hash(8), image_hash(9)]
    )
    # The other clone would trash 8 of its 10 files: stopped the same way, disk untouched.
    disk_b = b.snapshot()
    proc = b.run("sync", expect=7)
    assert "8 of 10" in proc.stderr and "would delete: cat/i0.jpg" in proc.stderr
    assert b.snapshot() == disk_b
    assert b.sync("--max-delete", "9")["deleted"] == 8
    assert sorted(b.tree().values()) == sorted([image_hash(8), image_hash(9)])
    a.verify()
    b.verify()
    # Every label detached on the server: an empty listing where the base is not empty
    # stops the run (a wrong task or workspace must not empty the disk).
    task_id = a.remote_task_id()
    for lab in world.remote._all("label/", task=task_id):
        world.remote.post(f"task/{task_id}/remove-label/", {"label_id": lab["id"]})
    disk = a.snapshot()
    assert "empty" in a.run("sync", expect=7).stderr
    assert a.snapshot() == disk


def test_push_pull_and_dry_run(world: World, live_server) -> None:
    a = world.init("a", "pets")
    for i in range(4):
        a.write(f"dog/d{i}.jpg", i)
    a.sync()
    b = world.clone("b", a.remote_task_id())
    b.move("dog/d0.jpg", "cat/d0.jpg")
    b.sync()
    a.write("dog/new.jpg", 7)
    a.move("dog/d1.jpg", "cat/d1.jpg")

    # sync -n: the plan, and no change anywhere.
    remote = remote_state(world)
    disk = a.snapshot()
    s = a.sync("-n")
    assert s["dry_run"] is True
    assert s["tasks"][0]["plan"] == {"upload": 1, "set_remote": 1, "set_local": 1, "set_base": 3}
    kinds = sorted(op["kind"] for op in s["tasks"][0]["ops"])
    assert kinds == ["set_base"] * 3 + ["set_local", "set_remote", "upload"]
    assert (s["uploaded"], s["downloaded"], s["relabelled"]) == (0, 0, 0)
    out = a.run("sync", "-n").stdout
    # One line per file, in the user's words, then the totals.
    assert "upload: dog/new.jpg (new, dog)" in out
    assert "relabel on the server: cat/d1.jpg (dog -> cat)" in out
    assert "relabel here: dog/d0.jpg (dog -> cat)" in out
    assert "pets: would upload 1, relabel 1 on the server, relabel 1 here" in out, out
    assert "uploaded" not in out
    assert remote_state(world) == remote and a.snapshot() == disk

    # push: the remote takes A's changes, A's disk does not take B's (so A is not in
    # sync yet: exit 3, one image left for a pull).
    s = a.sync(cmd="push", expect=3)
    assert (s["uploaded"], s["relabelled"], s["downloaded"]) == (1, 1, 0), s
    assert s["tasks"][0]["left_for_other_side"] == 1, s
    assert a.snapshot() == disk
    by_hash = world.remote.by_hash()
    assert by_hash[image_hash(7)].labels == {"dog": None}
    assert by_hash[image_hash(1)].labels == {"cat": None}
    assert a.files_of(image_hash(0)) == ["dog/d0.jpg"]

    # pull: A's disk takes B's change, and pull sends no writing request.
    remote = remote_state(world)
    mark = len(live_server.log_text())
    s = a.sync(cmd="pull")
    assert (s["uploaded"], s["relabelled"], s["downloaded"]) == (0, 1, 0), s
    assert a.files_of(image_hash(0)) == ["cat/d0.jpg"]
    assert remote_state(world) == remote
    sent = api_requests(_log_after(live_server, mark))
    assert sent and {m for m, _p, _s in sent} == {"GET"}, sent
    for c in (a, b):
        c.sync()
        c.verify()


def _log_after(server, mark: int) -> str:
    """The server's access log from `mark` up to now. The server logs each answer on its
    one event loop, in order; a marker request sent now is logged after every answer the
    command got, so once its line is there, so are theirs (it is cut off)."""
    marker = f"log-marker-{uuid.uuid4().hex}"
    httpx.get(server.url + marker, timeout=limit(30))
    text = until(
        lambda: marker in (t := server.log_text()[mark:]) and t,
        what=f"the access log line of GET /{marker}",
    )
    return text[: text.rfind("\n", 0, text.index(marker)) + 1]


def test_no_change_sync_only_lists(world: World, live_server) -> None:
    a = world.init("a", "pets")
    a.write("dog/a.jpg", 1)
    a.write("cat/b.jpg", 2)
    a.sync()
    mark = len(live_server.log_text())
    s = a.sync()
    sent = api_requests(_log_after(live_server, mark))
    assert sent, "the sync sent nothing at all?"
    assert all(method == "GET" for method, _p, _s in sent), sent
    # task, its labels, and one page of images: nothing per image.
    assert len(sent) <= 4, sent
    assert all(
        v == 0
        for k, v in s.items()
        if k in ("uploaded", "downloaded", "relabelled", "deleted", "labels_created")
    )


def test_summary_json_shape_and_line(world: World) -> None:
    a = world.init("a", "pets")
    a.write("dog/a.jpg", 1)
    a.write("dog/b.jpg", 2)
    a.write("cat/c.jpg", 3)
    s = a.sync()
    assert set(s) == SUMMARY_KEYS
    [t] = s["tasks"]
    assert set(t) == TASK_KEYS
    assert (s["uploaded"], s["labels_created"], s["failed"], s["conflicts"]) == (3, 2, [], 0)
    assert t["task"] == "pets" and t["remote_id"] == a.remote_task_id()
    assert t["plan"] == {"ensure_label": 2, "upload": 3, "set_base": 3}
    assert t["ops"] == [] and t["conflicts"] == [] and t["stop"] is None
    assert isinstance(s["seconds"], float)
    b = world.clone("b", t["remote_id"])
    a.move("dog/a.jpg", "cat/a.jpg")
    (a.root / "dog/b.jpg").unlink()
    a.write("cat/d.jpg", 4)
    b.write("dog/e.jpg", 5)
    b.sync()
    out = a.run("sync").stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        r"uploaded 1, downloaded 1, relabelled 1, deleted 1, conflicts 0, failed 0 "
        r"\(\d+\.\ds\)",
        out,
    ), out
    b.sync()
    a.verify()
    b.verify()


def test_remote_names_never_escape_the_task_root(world: World) -> None:
    a = world.init("a", "pets")
    a.write("dog/ok.jpg", 1)
    a.sync()
    task_id = a.remote_task_id()
    r = world.remote
    # Labels a folder holds only escaped (labelnames.py), and two no folder can hold: a
    # name not in NFC, a name of 260 bytes.
    escaped = {
        "../../x": "%2E.%2F..%2Fx",
        "a/b": "a%2Fb",
        ".hidden": "%2Ehidden",
        "_x": "%5Fx",
        "..": "%2E.",
    }
    bad_labels = ["cafe\u0301", "é" * 130]
    for n, name in enumerate([*escaped, *bad_labels]):
        lab = r.post("label/", {"name": name, "type": "category"})
        r.post(f"task/{task_id}/add-label/", {"label_id": lab["id"]})
        image = r.post(
            "training-image/", {"base64": base64.b64encode(img(20 + n)).decode(), "noresize": True}
        )
        r.post(f"training-image/{image['id']}/add-label/", {"label_id": lab["id"]})
    dog = r.label_id("dog")
    bad_files = [
        "../../../escaped.jpg",
        "/etc/evil.jpg",
        ".hidden.jpg",
        "sub/dir.jpg",
        "..\\..\\win.jpg",
        ".localrepo-tmp",
    ]
    for n, name in enumerate(bad_files):
        image = r.post(
            "training-image/",
            {
                "base64": base64.b64encode(img(40 + n)).decode(),
                "noresize": True,
                "meta_data": {"original_file_name": name},
            },
        )
        r.post(f"training-image/{image['id']}/add-label/", {"label_id": dog})

    outside = snapshot_of(world.tmp)
    clone_proc = world.tmp / "b"
    b = world.clone("b", task_id, expect=3)  # not in sync: two labels have no folder
    after = snapshot_of(world.tmp)
    assert {k: v for k, v in after.items() if not k.startswith(("b/", "a/.localrepo"))} == {
        k: v for k, v in outside.items() if not k.startswith("a/.localrepo")
    }
    assert clone_proc.is_dir()
    full_tree = b.tree()
    # Labels that need escapes are folders of escaped names, one level down, and read
    # back as the same labels.
    for n, folder in enumerate(escaped.values()):
        [path] = [p for p, h in full_tree.items() if h == image_hash(20 + n)]
        assert path.startswith(folder + "/") and path.count("/") == 1, path
    assert b.labels() == {**{name: 1 for name in escaped}, "dog": 1 + len(bad_files)}
    tree = {p: h for p, h in full_tree.items() if p.startswith("dog/")}
    # The safe images are all there, under safe names in dog/.
    assert sorted(tree.values()) == sorted(
        [image_hash(1)] + [image_hash(40 + n) for n in range(len(bad_files))]
    )
    assert all(p.count("/") == 1 for p in tree), tree
    assert all(not p.split("/")[1].startswith(".") for p in tree), tree
    assert "dir.jpg" in {p.split("/")[1] for p in tree}
    assert set(full_tree.values()) == set(tree.values()) | {
        image_hash(20 + n) for n in range(len(escaped))
    }
    # Images of unusable labels are left alone, and every such label is reported.
    proc = b.run("sync", expect=3)
    for name in bad_labels:
        assert repr(name) in proc.stderr, (name, proc.stderr)
    # a's pull sees the same and leaves the disk alone too.
    disk_a = a.snapshot()
    a.sync(cmd="pull", expect=3)
    assert set(a.snapshot()) - set(disk_a) == set(full_tree) - {"dog/ok.jpg"}
    # Renamed on the server to usable names, they sync.
    for name in bad_labels:
        lab_id = r.label_id(name)
        r.http.patch(f"label/{lab_id}/", json={"name": "fixed" + str(bad_labels.index(name))})
    for c in (b, a):
        s = c.sync()
        assert s["failed"] == [] and not s["tasks"][0]["problems"], s
    assert b.labels()["fixed0"] == 1 and b.labels()["fixed1"] == 1
    for c in (a, b):
        c.sync()
        c.verify()


def test_an_image_in_two_category_folders_is_a_conflict_not_an_unlink(world: World) -> None:
    """Copies of one multi_class image in two label folders link no label locally; that
    must not read as a delete: it is a conflict on its label, until one copy goes."""
    import shutil

    a = world.init("a", "pets")
    a.write("dog/d.jpg", 1)
    a.write("cat/c.jpg", 2)
    a.sync()
    before = remote_state(world)
    shutil.copy(a.root / "dog/d.jpg", a.root / "cat/d-copy.jpg")
    s = a.sync(expect=3)
    assert s["deleted"] == 0 and s["relabelled"] == 0 and s["conflicts"] == 1, s
    [c] = a.conflicts()
    assert c["field"] == "label" and sorted(c["local"]) == ["cat", "dog"], c
    assert sorted(c["remote"]) == ["dog"], c
    assert remote_state(world) == before
    (a.root / "cat/d-copy.jpg").unlink()  # made clear again: nothing to do
    s = a.sync()
    assert s["deleted"] == 0 and s["relabelled"] == 0 and not s["tasks"][0]["problems"], s
    assert s["conflicts"] == 0 and a.conflicts() == []
    assert remote_state(world) == before
    a.verify()
