"""`repo sync` with the server's change feed (docs/sync.md, "How a sync learns the
remote's changes"), against a real server: the feed reaches the same remote state as
a full listing after random remote edits, a sync with nothing new asks one small
request for the task's images, and a server without the feed (`--compat hosted`, as
the hosted service) is listed in full without a word."""

from __future__ import annotations

import base64
import json
import random
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from support.faultproxy import FaultProxy
from support.imagegen import image_bytes
from support.inproc import engine_sync, sim_client
from support.synchelp import tree_of

from localrepo.catalog import remote_listing
from localrepo.repository import init_repository
from localrepo.sync.changefeed import listing_order


def img(n: int) -> bytes:
    return image_bytes(n, size=(16, 12), fmt="PNG")


def _catalog(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / ".localrepo" / "catalog.db")


def _copy(root: Path) -> list[dict[str, Any]]:
    """The task's copy of the remote listing, in listing order."""
    conn = _catalog(root)
    try:
        [(task_id,)] = conn.execute("SELECT id FROM task").fetchall()
        docs = [json.loads(d) for d in remote_listing.listing(conn, task_id).values()]
    finally:
        conn.close()
    return sorted(docs, key=listing_order)


def _forget_copies(root: Path) -> None:
    """Make the next sync list in full (as a repository without a copy does)."""
    conn = _catalog(root)
    try:
        with conn:
            for (task_id,) in conn.execute("SELECT id FROM task").fetchall():
                remote_listing.forget(conn, task_id)
    finally:
        conn.close()


def _repo(tmp_path: Path, name: str, url: str, seed: int) -> Path:
    root = tmp_path / name
    init_repository(root, task="pets", task_type="multi_class", remote=url)
    (root / "cat").mkdir()
    (root / "cat" / "a.png").write_bytes(img(seed))
    return root


def _edit(api: Any, rng: random.Random, labels: dict[str, str], n: int) -> None:
    """A few random remote edits: uploads, relabels, metadata, deletes, a rename."""
    listed = api.get("training-image/", params={"page_size": 1000}).json()["results"]
    for step in range(4):
        kind = rng.choice(["upload", "upload", "relabel", "meta", "delete", "rename"])
        if kind == "upload" or not listed:
            image = api.post(
                "training-image/",
                json={
                    "base64": base64.b64encode(img(1000 + n * 10 + step)).decode(),
                    "noresize": True,
                },
            ).json()
            target = rng.choice(list(labels.values()))
            api.post(f"training-image/{image['id']}/add-label/", json={"label_id": target})
            continue
        image = rng.choice(listed)
        if kind == "relabel":
            for lab in image["labels"]:
                api.post(
                    f"training-image/{image['id']}/remove-label/", json={"label_id": lab["id"]}
                )
            api.post(
                f"training-image/{image['id']}/add-label/",
                json={"label_id": rng.choice(list(labels.values()))},
            )
        elif kind == "meta":
            api.put(f"training-image/{image['id']}/", json={"meta_data": {"n": n}})
        elif kind == "delete":
            api.delete(f"training-image/{image['id']}/")
            listed.remove(image)
        else:
            name = rng.choice(list(labels))
            renamed = f"{name.rstrip('0123456789')}{n}"
            api.patch(f"label/{labels[name]}/", json={"name": renamed})
            labels[renamed] = labels.pop(name)


def test_the_feed_reaches_the_state_a_full_listing_reaches(account: Any, tmp_path: Path) -> None:
    fed = _repo(tmp_path, "fed", account.url, 1)
    engine_sync(fed, account.url, account.token)
    full = tmp_path / "full"
    with account.client() as api:
        [task] = api.get("task/").json()["results"]
        labels = {lab["name"]: lab["id"] for lab in api.get("label/").json()["results"]}
        dog = api.post("label/", json={"name": "dog", "type": "category"}).json()
        api.post(f"task/{task['id']}/add-label/", json={"label_id": dog["id"]})
        labels["dog"] = dog["id"]
        shutil.copytree(fed, full)  # a second repository of the same task
        rng = random.Random(22)
        used_feed = []
        for n in range(5):
            _edit(api, rng, labels, n)
            used_feed.append(engine_sync(fed, account.url, account.token).tasks[0].from_feed)
            _forget_copies(full)
            assert not engine_sync(full, account.url, account.token).tasks[0].from_feed
            ids = list(labels.values())
            listed = api.get("training-image/", params={"labels": ids, "page_size": 1000}).json()[
                "results"
            ]
            assert _copy(fed) == sorted(listed, key=listing_order)
            assert tree_of(fed) == tree_of(full)
    # Renaming a label attached to the task changes no label id: every sync after the
    # first (which had no copy) used the feed, unless the task's labels changed.
    assert used_feed.count(True) >= 3, used_feed


def test_a_sync_with_nothing_new_asks_one_small_request_for_the_images(
    account: Any, tmp_path: Path
) -> None:
    proxy = FaultProxy(account.url).start()
    try:
        root = _repo(tmp_path, "r", proxy.url, 2)
        for n in range(3):
            (root / "cat" / f"more{n}.png").write_bytes(img(10 + n))
        engine_sync(root, proxy.url, account.token)  # makes the task: nothing to copy yet
        engine_sync(root, proxy.url, account.token)  # lists in full, keeps a copy
        proxy.seen.clear()
        report = engine_sync(root, proxy.url, account.token)
        assert report.tasks[0].from_feed
        images = [(m, p.split("?")[0]) for m, p, _a in proxy.seen if "training-image" in p]
        assert images == [("GET", "/recognition/v2/training-image/changes/")]
    finally:
        proxy.stop()


def test_a_server_without_the_feed_is_listed_in_full_quietly(
    server_factory: Any, tmp_path: Path, caplog: Any
) -> None:
    server = server_factory("--compat", "hosted")
    account = server.new_account()
    root = _repo(tmp_path, "hosted", account.url, 3)
    for _ in range(2):
        report = engine_sync(root, account.url, account.token)
        task = report.tasks[0]
        assert not task.from_feed and task.problems == [] and not report.outcome.failed
    assert _copy(root) == []  # nothing kept: there is no cursor to keep it by
    client = sim_client(account.url, account.token)
    try:
        assert client.change_cursor() is None
    finally:
        client.close()
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
