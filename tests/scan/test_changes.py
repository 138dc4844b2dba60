"""Properties of the change diff (pure): replaying the changes on the old map gives the
new one, every path is reported once, and content that moved is a move."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from localrepo.scan import changes as ch

PATHS = st.sampled_from([f"{d}/{n}.jpg" for d in ("a", "b", "c") for n in range(6)])
HASHES = st.sampled_from([f"h{i}" for i in range(8)])
MAPS = st.dictionaries(PATHS, HASHES, max_size=14)


def replay(old: dict[str, str], changes: list[ch.Change]) -> dict[str, str]:
    state = dict(old)
    for c in changes:  # sources first: a swap is two moves
        if c.kind in (ch.DELETED, ch.MOVED):
            state.pop(c.old_path, None)
    for c in changes:
        if c.kind in (ch.ADDED, ch.MODIFIED, ch.MOVED):
            state[c.path] = c.hash
    return state


@settings(max_examples=300, deadline=None)
@given(MAPS, MAPS)
def test_replaying_the_diff_gives_the_new_map(old: dict[str, str], new: dict[str, str]) -> None:
    changes = ch.diff_files(old, new)
    assert replay(old, changes) == new
    targets = [c.path for c in changes if c.path is not None]
    assert len(targets) == len(set(targets))
    assert changes == sorted(changes, key=lambda c: (c.path or c.old_path or "", c.kind))
    for c in changes:
        if c.kind == ch.MOVED:
            assert old[c.old_path] == new[c.path] == c.hash


@settings(max_examples=100, deadline=None)
@given(MAPS)
def test_a_first_scan_is_all_additions_in_path_order(new: dict[str, str]) -> None:
    changes = ch.diff_files({}, new, task_of=lambda p: len(p))
    assert [(c.kind, c.path, c.hash, c.task_id) for c in changes] == [
        (ch.ADDED, p, new[p], len(p)) for p in sorted(new)
    ]
