"""The watcher's runs for local changes: a scoped rescan and a push without a listing.

The watcher loop runs in-process (real inotify events, the real engine, the real
client) against the real server through a recording proxy, so a test can see which
folders a run walked and which requests it sent. The pull timer is set far away: every
run after the start-up full scan is a run for local changes.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from support.faultproxy import FaultProxy
from support.synchelp import Clone, Remote, World, image_hash, img
from support.waiting import limit

from localrepo.remote.client import RecognitionClient
from localrepo.repository import Repository
from localrepo.scan import statpass
from localrepo.watch.coalesce import FULL, LOCAL
from localrepo.watch.daemon import Watcher, WatchOptions

from .watchhelp import until

LISTING = re.compile(r"/training-image/?(\?|$)")  # GET of the image list (not one image)
# What a sync reads the task's images with: the list, or (from localrepo-server) the
# change feed against the copy of the last listing (docs/sync.md).
TASK_READ = re.compile(r"/training-image/(changes/)?(\?|$)")


@dataclass
class Running:
    clone: Clone
    watcher: Watcher
    proxy: FaultProxy
    remote: Remote
    runs: list[tuple[str, frozenset[str] | None]]  # (why, scope) of every sync run
    walked: list[tuple[str, bool]]  # (start, recursive) of every scanner walk
    busy: list[str]  # the work the loop is running now (empty between runs)

    def listings(self) -> list[str]:
        return [p for m, p, _a in self.proxy.seen if m == "GET" and LISTING.search(p)]

    def idle(self) -> None:
        """Wait until the watcher is idle: no run in progress, no event queued or
        pending, no settled change waiting for a run."""
        w = self.watcher
        until(
            lambda: not self.busy and w.events.empty() and not w.coalescer.pending and not w.local,
            what="the watcher to be idle",
        )

    def settle(self) -> None:
        """Wait until the watcher is idle, then forget what it did."""
        self.idle()
        self.runs.clear()
        self.walked.clear()
        self.proxy.seen.clear()


@pytest.fixture
def running(account, tmp_path, monkeypatch) -> Iterator[Running]:
    proxy = FaultProxy(account.url).start()
    world = World(proxy.url, account.token, tmp_path)
    world.remote.close()
    remote = Remote(account.url, account.token)  # the test's own view, not recorded
    clone = world.init("photos", "animals")
    for i in range(4):
        clone.write(f"cats/c{i}.jpg", 10 + i)
        clone.write(f"dogs/d{i}.jpg", 20 + i)
        clone.write(f"fish/deep/f{i}.jpg", 30 + i)  # never touched
    clone.write("birds/b.jpg", 50)
    clone.sync()

    walked: list[tuple[str, bool]] = []
    real_walk = statpass.walk

    def spy(root, rules=None, start="", on_folder=None, *, recursive=True):
        walked.append((start, recursive))
        return real_walk(root, rules, start, on_folder, recursive=recursive)

    monkeypatch.setattr(statpass, "walk", spy)
    client = RecognitionClient(proxy.url, account.token)
    opts = WatchOptions(interval=3600, full_every=3600, debounce=0.3, grace=5)
    watcher = Watcher(Repository(clone.root), client, opts, hard_exit=lambda _code: None)
    runs: list[tuple[str, frozenset[str] | None]] = []
    sync = watcher._sync

    def recorded(why: str, hold: frozenset[str], scope: frozenset[str] | None = None) -> None:
        runs.append((why, scope))
        sync(why, hold, scope)

    watcher._sync = recorded  # type: ignore[method-assign]
    # The loop runs each piece of work through _run_in_worker and returns when it ended:
    # marked busy from before it starts (the loop's own thread) to after it ends.
    busy: list[str] = []
    in_worker = watcher._run_in_worker

    def tracked(work, what: str) -> None:  # type: ignore[no-untyped-def]
        busy.append(what)
        try:
            in_worker(work, what)
        finally:
            busy.remove(what)

    watcher._run_in_worker = tracked  # type: ignore[method-assign]
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    r = Running(clone, watcher, proxy, remote, runs, walked, busy)
    try:
        until(lambda: watcher.state.syncs >= 1, what="the start-up full scan")
        assert runs[0] == (FULL, None)
        r.settle()
        yield r
    finally:
        watcher.request_stop()
        thread.join(limit(60))
        client.close()
        remote.close()
        proxy.stop()


def labels_of(remote: Remote, seed: int) -> dict[str, float | None] | None:
    row = remote.by_hash().get(image_hash(seed))
    return None if row is None else row.labels


def test_local_changes_rescan_only_touched_folders_and_list_nothing(running: Running):
    r = running
    r.clone.move("cats/c0.jpg", "dogs/c0.jpg")  # relabel
    (r.clone.root / "dogs/d0.jpg").unlink()  # unlink
    r.clone.write("horses/h.jpg", 40)  # a new label folder, a new upload

    until(lambda: labels_of(r.remote, 10) == {"dogs": None}, what="c0 relabelled dogs")
    until(lambda: labels_of(r.remote, 40) == {"horses": None}, what="h uploaded into horses")
    until(lambda: not labels_of(r.remote, 20), what="d0 unlinked")
    r.idle()  # the server shows a run's work before the run has ended
    assert r.runs and all(why == LOCAL and scope is not None for why, scope in r.runs), r.runs
    scanned = {f for _why, scope in r.runs for f in scope or ()}
    assert scanned <= {"cats", "dogs", "horses"}, scanned
    deep = [start for start, rec in r.walked if rec and not start.startswith(tuple(scanned))]
    assert deep == [], f"walked untouched folders recursively: {deep}"
    assert not any(start.startswith("fish") for start, _rec in r.walked)
    assert r.listings() == [], "a push listed the remote task"
    assert r.watcher.state.last_result["listed"] is False
    # What the catalog-planned push did is what a full sync agrees with.
    assert r.clone.sync()["uploaded"] == 0
    r.clone.verify()


def test_a_remote_edit_to_a_locally_moved_image_is_a_conflict(running: Running):
    r = running
    row = r.remote.by_hash()[image_hash(11)]  # cats/c1.jpg
    r.remote.relabel(row.id, "cats", "birds")  # changed on the server meanwhile
    r.clone.move("cats/c1.jpg", "dogs/c1.jpg")  # and locally, differently

    until(lambda: r.clone.conflicts(), what="the conflict to be recorded")
    r.idle()
    [conflict] = r.clone.conflicts()
    assert conflict["path"] == "dogs/c1.jpg", conflict
    assert labels_of(r.remote, 11) == {"birds": None}  # not overwritten
    assert (r.clone.root / "dogs/c1.jpg").is_file()  # nor the local move undone
    assert r.listings() == []
    assert [why for why, _scope in r.runs] == [LOCAL] * len(r.runs)


def test_a_new_file_already_labelled_on_the_server_is_planned_from_a_listing(running: Running):
    r = running
    data = img(60)
    meta = {"content_hash": "xxh3_128:" + image_hash(60), "original_file_name": "z.jpg"}
    up = r.remote.post(
        "training-image/", {"base64": base64.b64encode(data).decode(), "meta_data": meta}
    )
    r.remote.relabel(up["id"], None, "cats")  # another clone sent these bytes, as a cat
    r.clone.write("dogs/z.jpg", 60)  # here they land as a dog

    until(lambda: r.clone.conflicts(), what="the conflict to be recorded")
    r.idle()
    [conflict] = r.clone.conflicts()
    assert conflict["path"] == "dogs/z.jpg", conflict
    assert labels_of(r.remote, 60) == {"cats": None}  # the blind upload linked nothing
    # The push uploaded first (no listing), met the labelled duplicate, then read the
    # task's images (the feed, here: the copy of the last listing is kept).
    calls = [(m, p) for m, p, _a in r.proxy.seen]
    upload = calls.index(("POST", "/recognition/v2/training-image/"))
    first_read = next(i for i, (m, p) in enumerate(calls) if m == "GET" and TASK_READ.search(p))
    assert upload < first_read, calls
    assert len([row for row in r.remote.images() if row.hash == image_hash(60)]) == 1
