"""The watcher's pure decisions (localrepo/watch/coalesce.py) with a fake clock."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from localrepo.watch.coalesce import (
    CREATED,
    DELETED,
    FULL,
    LOCAL,
    MODIFIED,
    MOVED,
    PULL,
    RETRY,
    Coalescer,
    FsEvent,
    Schedule,
    backoff,
    is_relevant,
    split_echoes,
    touched_folders,
)

S1 = (100, 1_000, 7)
S2 = (200, 2_000, 7)


def test_ignored_names_and_the_state_folder():
    for path in (
        ".localrepo/catalog.db",
        ".localrepo/logs/daemon.log",
        "cats/.tom.jpg.localrepo-tmp",  # the engine's temp files
        "cats/tom.jpg.tmp",
        "cats/tom.jpg.part",
        "cats/tom.jpg.crdownload",
        "cats/tom.jpg~",
        "cats/~$doc.jpg",
        ".git/objects/x",
        "cats/.hidden/a.jpg",
        "__MACOSX/cats/a.jpg",
        "cats/Thumbs.db",
        "",
    ):
        assert not is_relevant(path), path
    for path in ("cats/tom.jpg", "cats/metadata.jsonl", ".localrepoignore", "cats/sub/x.png"):
        assert is_relevant(path), path
    assert not is_relevant("__MACOSX", True)


def test_a_file_is_ready_after_a_quiet_debounce_with_a_stable_stat():
    c = Coalescer(debounce=2.0)
    c.observe(FsEvent(CREATED, "cats/a.jpg"), 10.0, {"cats/a.jpg": S1})
    c.observe(FsEvent(MODIFIED, "cats/a.jpg"), 11.0, {"cats/a.jpg": S1})
    assert c.due(12.9) == [] and c.next_due() == 13.0
    assert c.settle(12.9, {"cats/a.jpg": S1}) == []
    assert c.settle(13.0, {"cats/a.jpg": S1}) == ["cats/a.jpg"]
    assert c.pending == {} and c.next_due() is None


def test_a_file_still_growing_waits_another_debounce():
    c = Coalescer(debounce=1.0)
    c.observe(FsEvent(CREATED, "a.jpg"), 0.0, {"a.jpg": S1})
    assert c.settle(1.0, {"a.jpg": S2}) == []  # grew without an event (a slow copy)
    assert c.next_due() == 2.0
    assert c.settle(2.0, {"a.jpg": S2}) == ["a.jpg"]


def test_an_atomic_save_is_one_create_of_the_real_name():
    c = Coalescer(debounce=0.5)
    c.observe(FsEvent(CREATED, "cats/a.jpg.tmp"), 0.0, {"cats/a.jpg.tmp": S1})
    c.observe(FsEvent(MODIFIED, "cats/a.jpg.tmp"), 0.125, {"cats/a.jpg.tmp": S1})
    c.observe(FsEvent(MOVED, "cats/a.jpg.tmp", "cats/a.jpg"), 0.25, {"cats/a.jpg": S1})
    assert list(c.pending) == ["cats/a.jpg"]
    assert c.settle(0.75, {"cats/a.jpg": S1}) == ["cats/a.jpg"]


def test_a_move_is_a_delete_and_a_create():
    c = Coalescer(debounce=0.5)
    c.observe(FsEvent(MOVED, "cats/a.jpg", "dogs/a.jpg"), 0.0, {"dogs/a.jpg": S1})
    assert c.settle(0.5, {"cats/a.jpg": None, "dogs/a.jpg": S1}) == ["cats/a.jpg", "dogs/a.jpg"]


def test_a_deleted_file_is_ready_at_once_after_the_debounce():
    c = Coalescer(debounce=0.5)
    c.observe(FsEvent(DELETED, "cats/a.jpg"), 0.0, {"cats/a.jpg": S1})
    assert c.settle(0.5, {"cats/a.jpg": None}) == ["cats/a.jpg"]


def test_folders_are_ready_without_a_stat_check_and_never_echoes():
    c = Coalescer(debounce=0.5)
    c.observe(FsEvent(CREATED, "birds", is_dir=True), 0.0, {"birds": S1})
    dirs = c.dirs()
    ready = c.settle(0.5, {"birds": S2})
    assert ready == ["birds"] and dirs == {"birds"}
    assert split_echoes(ready, {"birds": S2}, {}, dirs) == (["birds"], [])


def test_echoes_are_paths_whose_disk_state_is_the_catalogs():
    disk = {"a.jpg": S1, "b.jpg": S2, "gone.jpg": None, "new.jpg": S1}
    catalog = {"a.jpg": S1, "b.jpg": S1}
    changed, echoes = split_echoes(["a.jpg", "b.jpg", "gone.jpg", "new.jpg"], disk, catalog)
    assert echoes == ["a.jpg", "gone.jpg"]  # the engine's write, the engine's move away
    assert changed == ["b.jpg", "new.jpg"]  # edited since, and a file the catalog lacks


def test_touched_folders():
    assert touched_folders(["cats/a.jpg", "cats/b.jpg", "dogs/x/c.jpg"]) == ["cats", "dogs/x"]
    assert touched_folders(["cats/a.jpg", "top.jpg"]) == [""]
    assert touched_folders(["cats/x/a.jpg", "cats"], dirs=["cats"]) == ["cats"]
    assert touched_folders(["cats/x/a.jpg", "cats/x"], dirs=["cats/x"]) == ["cats/x"]
    assert touched_folders(["birds", "bird"], dirs=["bird", "birds"]) == ["bird", "birds"]
    assert touched_folders([]) == []


def test_backoff_is_exponential_and_capped():
    assert [backoff(n, 2, 30) for n in range(7)] == [0, 2, 4, 8, 16, 30, 30]
    assert backoff(10_000, 2, 300) == 300


def test_schedule_full_scan_first_then_pull_timer_and_local_changes():
    s = Schedule(interval=30, full_every=3600)
    assert s.decide(0.0, local=False) == (FULL, False)
    s.succeeded(0.0, FULL)
    assert s.decide(1.0, local=False) == (None, False)
    assert s.decide(1.0, local=True) == (LOCAL, False)
    s.succeeded(1.0, LOCAL)  # a push run lists nothing: the pull timer runs from 0.0
    assert s.wake_at() == 30.0
    assert s.decide(29.0, local=True) == (LOCAL, False)
    assert s.decide(30.0, local=True) == (PULL, False)  # local changes never starve a pull
    s.succeeded(30.0, PULL)
    assert s.wake_at() == 60.0
    assert s.decide(3600.0, local=False) == (FULL, False)


def test_schedule_offline_journals_local_changes_and_retries_with_backoff():
    s = Schedule(interval=30, full_every=3600, backoff_base=2, backoff_cap=10)
    s.succeeded(0.0, FULL)
    assert s.failed(5.0, PULL) == 2 and s.offline and s.wake_at() == 7.0
    assert s.decide(6.0, local=True) == (None, True)  # scan and journal only
    s.journalled()
    assert s.decide(6.5, local=False) == (None, False)
    assert s.decide(7.0, local=False) == (RETRY, False)
    assert s.failed(7.0, RETRY) == 4
    assert s.failed(11.0, RETRY) == 8
    assert s.failed(19.0, RETRY) == 10  # capped
    s.succeeded(29.0, RETRY)
    assert not s.offline and s.failures == 0 and not s.owed
    assert s.decide(30.0, local=False) == (None, False)


def test_schedule_sends_what_was_journalled_offline_even_without_new_events():
    s = Schedule(interval=30, full_every=3600)
    s.succeeded(0.0, FULL)
    s.failed(1.0, PULL)
    s.journalled()
    s.retry_at = None  # as if the retry moment passed and the remote answered a probe
    assert s.decide(4.0, local=False) == (LOCAL, False)


# -- properties ------------------------------------------------------------------------------

PATHS = ["cats/a.jpg", "cats/b.jpg", "dogs/c.jpg", "cats/.a.jpg.localrepo-tmp", "x.part"]
events = st.lists(
    st.tuples(
        st.floats(0, 3, allow_nan=False),  # gap since the previous event
        st.sampled_from([CREATED, MODIFIED, DELETED]),
        st.sampled_from(PATHS),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(events, st.floats(0.1, 2.5, allow_nan=False))
def test_every_relevant_path_is_ready_once_and_never_early(evs, debounce):
    c = Coalescer(debounce)
    now, last_event = 0.0, {}
    for gap, kind, path in evs:
        now += gap
        c.observe(FsEvent(kind, path), now, {path: S1})
        last_event[path] = (now, kind)
        stable = {p: (None if k == DELETED else S1) for p, (_t, k) in last_event.items()}
        for p in c.settle(now, stable):  # never before a quiet `debounce`
            assert now - last_event[p][0] >= debounce
            del last_event[p]
    stats = {p: (None if k == DELETED else S1) for p, (_t, k) in last_event.items()}
    final = c.settle(now + debounce + 1e-6, stats)
    assert len(final) == len(set(final))
    assert set(final) == {p for p in last_event if is_relevant(p)}
    assert c.pending == {}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["a", "b", "a/b", "c", "a/x"]), max_size=4), max_size=8))
def test_touched_folders_cover_every_path_with_no_nesting(parts):
    paths = ["/".join([*p, "f.jpg"]) for p in parts]
    out = touched_folders(paths)
    for path in paths:
        folder = path.rpartition("/")[0]
        assert any(not o or folder == o or folder.startswith(o + "/") for o in out)
    for a in out:
        for b in out:
            assert a == b or not (not b or a.startswith(b + "/"))


@given(st.integers(0, 200), st.floats(0.1, 10), st.floats(1, 1000))
def test_backoff_never_shrinks_and_never_passes_the_cap(n, base, cap):
    assert backoff(n, base, cap) <= max(cap, 0)
    assert backoff(n + 1, base, cap) >= backoff(n, base, cap)
