"""The quiet shortcut (docs/sync.md, "The quiet shortcut"; sync/quiet.py), against a
real server and real files: a second no-change sync asks the feed once and nothing
else for the task's images, and every kind of change, local or remote, takes the full
path and is synced; random edits never leave the shortcut saying "in sync" where the
full path would act."""

from __future__ import annotations

import base64
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support.faultproxy import FaultProxy
from support.imagegen import image_bytes
from support.inproc import sim_client
from support.synchelp import tree_of

from localrepo.repository import Repository, init_repository
from localrepo.sync.engine import Engine
from localrepo.sync.report import SyncOptions, SyncReport

CHANGES = "/recognition/v2/training-image/changes/"


def img(n: int) -> bytes:
    return image_bytes(n, size=(16, 12), fmt="PNG")


def sync(root: Path, url: str, token: str, **kw: Any) -> SyncReport:
    client = sim_client(url, token)
    try:
        return Engine(Repository(root), client, SyncOptions(jobs=1, **kw)).run()
    finally:
        client.close()


def _repo(tmp_path: Path, url: str, name: str = "r") -> Path:
    root = tmp_path / name
    init_repository(root, task="pets", task_type="multi_class", remote=url)
    for label in ("cat", "dog"):
        (root / label).mkdir()
    for n in range(4):
        (root / ("cat" if n % 2 else "dog") / f"i{n}.png").write_bytes(img(n))
    return root


def _backdate(root: Path) -> None:
    """Every image's mtime a minute back: a file written within two seconds of its scan
    is "racy" and read again (and its row written again) by each scan until then, which
    rightly keeps the shortcut off (docs/catalog.md)."""
    past = time.time() - 60
    for path in root.glob("*/*.png"):
        os.utime(path, (past, past))


def _settle(root: Path, url: str, token: str) -> SyncReport:
    """Sync until a run takes the shortcut (after a change: the run that syncs it, the
    one that reads its files' new stats, then the quiet one)."""
    _backdate(root)
    for _ in range(4):
        report = sync(root, url, token)
        assert report.in_sync, report
        if report.tasks[0].quiet:
            return report
    raise AssertionError("never quiet")


def _full_path_agrees(root: Path, url: str, token: str) -> None:
    """A dry run without the shortcut finds nothing to do either."""
    report = sync(root, url, token, dry_run=True, quiet=False)
    [task] = report.tasks
    assert not task.quiet
    assert task.plan is not None and task.plan.is_empty, task.plan
    assert report.in_sync


def test_a_second_no_change_sync_asks_the_feed_once(account: Any, tmp_path: Path) -> None:
    proxy = FaultProxy(account.url).start()
    try:
        root = _repo(tmp_path, proxy.url)
        _backdate(root)
        sync(root, proxy.url, account.token)  # makes the task, uploads
        first = sync(root, proxy.url, account.token)  # lists, keeps a copy, marks
        assert not first.tasks[0].quiet
        proxy.seen.clear()
        report = sync(root, proxy.url, account.token)
        assert report.tasks[0].quiet and report.in_sync
        images = [(m, p.split("?")[0]) for m, p, _a in proxy.seen if "training-image" in p]
        assert images == [("GET", CHANGES)]
        others = [p.split("?")[0] for _m, p, _a in proxy.seen if "training-image" not in p]
        assert all("/task/" in p or "/label/" in p for p in others), others  # its labels
        _full_path_agrees(root, proxy.url, account.token)
    finally:
        proxy.stop()


def test_the_command_says_in_sync_as_before(world: Any) -> None:
    a = world.init("a", "pets")
    a.write("cat/one.png", 1)
    a.sync()
    a.sync()
    quiet = a.sync()  # the shortcut: same summary, exit 0
    assert quiet["uploaded"] == quiet["downloaded"] == 0
    assert quiet["conflicts"] == 0 and quiet["failed"] == []
    assert quiet["tasks"][0]["plan"] == {} and quiet["tasks"][0]["problems"] == []


def _remote(api: Any) -> dict[str, str]:
    """{image id: its label name} on the server."""
    listed = api.get("training-image/", params={"page_size": 1000}).json()["results"]
    return {i["id"]: ",".join(sorted(lab["name"] for lab in i["labels"])) for i in listed}


def test_every_kind_of_change_takes_the_full_path(account: Any, tmp_path: Path) -> None:
    url, token = account.url, account.token
    root = _repo(tmp_path, url)
    sync(root, url, token)
    _settle(root, url, token)
    with account.client() as api:
        labels = {lab["name"]: lab["id"] for lab in api.get("label/").json()["results"]}

        def step(edit: Any, check: Any) -> None:
            edit()
            report = sync(root, url, token)
            assert not report.tasks[0].quiet, edit.__name__
            check(report)
            _settle(root, url, token)
            _full_path_agrees(root, url, token)

        def local_add() -> None:
            (root / "cat" / "new.png").write_bytes(img(50))

        step(local_add, lambda r: r.outcome.uploaded == 1)

        def local_modify() -> None:
            (root / "cat" / "new.png").write_bytes(img(51))

        step(local_modify, lambda r: r.outcome.uploaded == 1)

        def local_move() -> None:
            (root / "cat" / "new.png").rename(root / "dog" / "new.png")

        step(local_move, lambda r: r.outcome.relabelled_remote == 1)

        def local_delete() -> None:
            (root / "dog" / "new.png").unlink()

        step(local_delete, lambda r: r.outcome.deleted_remote + r.outcome.unlinked_remote == 1)

        def remote_upload() -> None:
            body = {"base64": base64.b64encode(img(60)).decode(), "noresize": True}
            image = api.post("training-image/", json=body).json()
            api.post(f"training-image/{image['id']}/add-label/", json={"label_id": labels["cat"]})

        step(remote_upload, lambda r: r.outcome.downloaded == 1)

        def remote_relabel() -> None:
            [iid] = [i for i, lab in _remote(api).items() if lab == "cat"][:1]
            api.post(f"training-image/{iid}/remove-label/", json={"label_id": labels["cat"]})
            api.post(f"training-image/{iid}/add-label/", json={"label_id": labels["dog"]})

        step(remote_relabel, lambda r: r.outcome.relabelled_local == 1)

        def remote_delete() -> None:
            iid = next(i for i, lab in _remote(api).items() if lab == "dog")
            api.delete(f"training-image/{iid}/")

        step(remote_delete, lambda r: r.outcome.trashed_local == 1)

        def remote_label_attached() -> None:  # no image changes: only the labels tell
            bird = api.post("label/", json={"name": "bird", "type": "category"}).json()
            [task] = api.get("task/").json()["results"]
            api.post(f"task/{task['id']}/add-label/", json={"label_id": bird["id"]})

        step(remote_label_attached, lambda r: (root / "bird").is_dir())
    assert tree_of(root)


def test_a_held_mass_delete_is_held_again(account: Any, tmp_path: Path) -> None:
    url, token = account.url, account.token
    root = _repo(tmp_path, url)
    sync(root, url, token)
    _settle(root, url, token)
    for path in [*root.glob("cat/*.png"), *root.glob("dog/*.png")][:3]:
        path.unlink()
    for _ in range(2):  # the rerun stops and shows it again: no mark after a stop
        report = sync(root, url, token, max_delete="1")
        [task] = report.tasks
        assert task.stop is not None and not task.quiet and task.stop_paths


def test_a_conflict_or_a_refused_name_is_shown_again(account: Any, tmp_path: Path) -> None:
    url, token = account.url, account.token
    root = _repo(tmp_path, url)
    sync(root, url, token)
    _settle(root, url, token)
    (root / "bad%FFname").mkdir()
    (root / "bad%FFname" / "x.png").write_bytes(img(70))
    for _ in range(2):
        report = sync(root, url, token)
        [task] = report.tasks
        assert not task.quiet and not report.in_sync
        assert task.problems or task.held
    shutil.rmtree(root / "bad%FFname")
    # a conflict: relabelled differently on both sides
    with account.client() as api:
        labels = {lab["name"]: lab["id"] for lab in api.get("label/").json()["results"]}
        bird = api.post("label/", json={"name": "bird", "type": "category"}).json()
        [task] = api.get("task/").json()["results"]
        api.post(f"task/{task['id']}/add-label/", json={"label_id": bird["id"]})
        _settle(root, url, token)
        iid = next(i for i, lab in _remote(api).items() if lab == "cat")
        api.post(f"training-image/{iid}/remove-label/", json={"label_id": labels["cat"]})
        api.post(f"training-image/{iid}/add-label/", json={"label_id": bird["id"]})
    moved = [p for p in (root / "cat").glob("*.png")]
    for path in moved:
        path.rename(root / "dog" / path.name)
    for _ in range(2):
        report = sync(root, url, token)
        assert report.conflicts == 1 and not report.tasks[0].quiet
    # `repo resolve` records a decision (a catalog write, no file change): the next
    # sync carries it out rather than finding the task quiet
    proc = subprocess.run(
        [sys.executable, "-m", "localrepo", "-C", str(root), "resolve", "--all", "--take", "local"],
        capture_output=True,
        text=True,
        env={**os.environ, "LOCALREPO_CONFIG_DIR": str(tmp_path / "cfg")},
    )
    assert proc.returncode == 0, proc.stderr
    report = sync(root, url, token)
    assert not report.tasks[0].quiet and report.conflicts == 0
    assert report.outcome.relabelled_remote == 1
    _settle(root, url, token)
    _full_path_agrees(root, url, token)


def test_another_remote_url_takes_the_full_path(account: Any, tmp_path: Path) -> None:
    proxy = FaultProxy(account.url).start()
    try:
        root = _repo(tmp_path, account.url)
        sync(root, account.url, account.token)
        _settle(root, account.url, account.token)
        report = sync(root, proxy.url, account.token)  # another URL: its copy is not ours
        assert not report.tasks[0].quiet and not report.tasks[0].from_feed
    finally:
        proxy.stop()


@pytest.mark.parametrize("seed", [3, 11])
def test_random_edits_never_quiet_where_the_full_path_acts(
    account: Any, tmp_path: Path, seed: int
) -> None:
    """Random local and remote edits with syncs between: the shortcut and a twin
    repository that never takes it end with the same files; each quiet run is one the
    full path finds nothing to do in."""
    url, token = account.url, account.token
    root = _repo(tmp_path, url, "quiet")
    sync(root, url, token)
    twin = tmp_path / "twin"
    shutil.copytree(root, twin)
    rng = random.Random(seed)
    quiet_runs = 0
    with account.client() as api:
        labels = {lab["name"]: lab["id"] for lab in api.get("label/").json()["results"]}
        for n in range(8):
            kind = rng.choice(["none", "none", "add", "move", "delete", "remote", "relabel"])
            files = sorted(root.glob("*/*.png"))
            if kind == "add":
                (root / rng.choice(["cat", "dog"]) / f"n{n}.png").write_bytes(img(100 + n))
            elif kind == "move" and files:
                f = rng.choice(files)
                f.rename(root / ("dog" if f.parent.name == "cat" else "cat") / f.name)
            elif kind == "delete" and files:
                rng.choice(files).unlink()
            elif kind == "remote":
                body = {"base64": base64.b64encode(img(200 + n)).decode(), "noresize": True}
                image = api.post("training-image/", json=body).json()
                target = labels[rng.choice(["cat", "dog"])]
                api.post(f"training-image/{image['id']}/add-label/", json={"label_id": target})
            elif kind == "relabel":
                remote = _remote(api)
                if remote:
                    iid = rng.choice(sorted(remote))
                    old = remote[iid]
                    new = "dog" if old == "cat" else "cat"
                    if old in labels:
                        api.post(
                            f"training-image/{iid}/remove-label/",
                            json={"label_id": labels[old]},
                        )
                    api.post(f"training-image/{iid}/add-label/", json={"label_id": labels[new]})
            report = sync(root, url, token)
            if report.tasks[0].quiet:
                quiet_runs += 1
                _full_path_agrees(root, url, token)
            sync(twin, url, token, quiet=False)
            _backdate(root)  # else the files just written keep every run on the full path
            sync(root, url, token)
            if sync(root, url, token).tasks[0].quiet:
                quiet_runs += 1
                _full_path_agrees(root, url, token)
            assert tree_of(root) == tree_of(twin), (seed, n, kind)
    assert quiet_runs >= 1
