"""cli/describe.py (pure): pending label states, a plan's ops and journal rows become
one user-level change per file and side, and their text names files, labels and
values, never hashes or the planner's op names."""

from __future__ import annotations

import re
from collections.abc import Callable

from localrepo.cli import describe as D
from localrepo.sync import plan as P

HASH_A = "a" * 32
HASH_B = "b" * 32
HASH_C = "c" * 32
HASH_D = "d" * 32
HEX16 = re.compile(r"[0-9a-f]{16}")
OP_NAMES = re.compile(r"set_base|set_remote|set_local|detach|ensure_label|remove_remote|op:")


def _clean(text: str) -> None:
    assert not HEX16.search(text), text
    assert not OP_NAMES.search(text), text


# -- pending changes (repo status) ---------------------------------------------------------


def test_pending_changes_name_each_file_with_its_kind() -> None:
    base = {HASH_A: {"cats": None}, HASH_B: {"cats": None}, HASH_C: {"age": 3.0}}
    local = {HASH_A: {"dogs": None}, HASH_C: {"age": 4.0}, HASH_D: {"cats": None}}
    paths = {HASH_A: ["dogs/a.jpg"], HASH_C: ["age/c.jpg"], HASH_D: ["cats/d.jpg"]}
    changes = D.pending_changes(
        base, local, paths, {HASH_B: "cats/b.jpg"}, {HASH_A: ("cats/a.jpg", "dogs/a.jpg")}, ()
    )
    assert changes == [
        D.FileChange(D.NEW, "cats/d.jpg", new="cats", side=D.LOCAL),
        D.FileChange(D.RELABELLED, "dogs/a.jpg", "cats", "dogs", D.LOCAL, "cats/a.jpg"),
        D.FileChange(D.VALUE, "age/c.jpg", "age=3", "age=4", D.LOCAL),
        D.FileChange(D.DELETED, "cats/b.jpg", old="cats", side=D.LOCAL),
    ]
    texts = [D.change_text(c) for c in changes]
    assert texts == [
        "cats/d.jpg (cats)",
        "dogs/a.jpg (from cats/a.jpg; cats -> dogs)",
        "age/c.jpg (age=3 -> age=4)",
        "cats/b.jpg (was cats)",
    ]


def test_a_new_file_without_a_label_is_listed_and_a_synced_unlabelled_one_gains_one() -> None:
    base = {HASH_A: {}}
    local = {HASH_A: {"cats": None}, HASH_B: {}}
    paths = {HASH_A: ["cats/a.jpg"], HASH_B: ["b.jpg"]}
    changes = D.pending_changes(base, local, paths, {}, {}, ())
    assert [D.change_text(c) for c in changes] == [
        "b.jpg (no label)",
        "cats/a.jpg ((none) -> cats)",
    ]
    assert [c.kind for c in changes] == [D.NEW, D.RELABELLED]


def test_a_move_that_keeps_the_labels_is_a_move_and_unchanged_images_are_silent() -> None:
    base = {HASH_A: {"cats": None}, HASH_B: {"cats": None}}
    changes = D.pending_changes(
        base,
        dict(base),
        {HASH_A: ["cats/deep/a.jpg"], HASH_B: ["cats/b.jpg"]},
        {},
        {HASH_A: ("cats/a.jpg", "cats/deep/a.jpg")},
        (),
    )
    assert changes == [
        D.FileChange(D.MOVED, "cats/deep/a.jpg", side=D.LOCAL, old_path="cats/a.jpg")
    ]
    assert D.change_text(changes[0]) == "cats/deep/a.jpg (from cats/a.jpg)"


def test_new_bytes_at_a_deleted_files_path_is_one_modification() -> None:
    changes = D.pending_changes(
        {HASH_A: {"cats": None}},
        {HASH_B: {"cats": None}},
        {HASH_B: ["cats/a.jpg"]},
        {HASH_A: "cats/a.jpg"},
        {},
        (),
    )
    assert changes == [D.FileChange(D.MODIFIED, "cats/a.jpg", "cats", "cats", D.LOCAL)]
    assert D.change_text(changes[0]) == "cats/a.jpg (new content)"
    relabelled = D.FileChange(D.MODIFIED, "a.jpg", "cats", "dogs", D.LOCAL)
    assert D.change_text(relabelled) == "a.jpg (new content; cats -> dogs)"
    assert D.change_text(D.FileChange(D.MODIFIED, "a.jpg", side=D.LOCAL)) == "a.jpg (new content)"


def test_damaged_images_are_left_to_their_own_section() -> None:
    changes = D.pending_changes(
        {HASH_A: {"cats": None}}, {}, {}, {HASH_A: "cats/a.jpg"}, {}, {HASH_A}
    )
    assert changes == []


def test_a_file_left_without_a_label_is_relabelled_to_none_and_unknown_paths_are_words() -> None:
    changes = D.pending_changes(
        {HASH_A: {"cats": None}, HASH_B: {"cats": None}},
        {},
        {HASH_A: ["a.jpg"]},
        {},
        {},
        (),
    )
    assert [D.change_text(c) for c in changes] == [
        "a.jpg (cats -> (none))",
        f"{D.NOT_ON_DISK} (was cats)",
    ]


def test_multi_label_tag_sets_read_as_lists() -> None:
    [c] = D.pending_changes(
        {HASH_A: {"red": None}},
        {HASH_A: {"red": None, "round": None}},
        {HASH_A: ["red/a.jpg", "round/a.jpg"]},
        {},
        {},
        (),
    )
    assert (c.kind, c.path, c.old, c.new) == (D.RELABELLED, "red/a.jpg", "red", "red, round")


def test_conflicts_show_both_sides() -> None:
    c = D.conflict_change("cats/a.jpg", {"cats": None}, {"dogs": None})
    assert D.change_text(c) == "cats/a.jpg (here cats, on the server dogs)"
    c = D.conflict_change(None, {"age": 3.0}, {"age": 5.5})
    assert D.change_text(c) == f"{D.NOT_ON_DISK} (here age=3, on the server age=5.5)"


def test_a_decided_conflict_says_which_side_wins() -> None:
    c = D.conflict_change("v/a.jpg", {"age": 3.0}, {"age": 5.5}, decided="remote")
    assert D.change_text(c) == (
        "v/a.jpg (here age=3, on the server age=5.5; decided: the server's side wins at "
        "the next 'repo sync')"
    )
    c = D.conflict_change("v/a.jpg", {"age": 3.0}, {"age": 5.5}, decided="local")
    assert D.change_text(c).endswith("; decided: this side wins at the next 'repo sync')")


def test_the_conflicts_heading_counts_the_decided_ones() -> None:
    from localrepo.cli.report import conflicts_heading

    assert conflicts_heading(2, 0).startswith("Conflicts: 2 (settle them with 'repo resolve'")
    assert conflicts_heading(2, 2).startswith("Conflicts: 2, all decided")
    assert conflicts_heading(3, 1).startswith("Conflicts: 3, 1 decided")


# -- a plan's ops (repo sync -n, -v) -------------------------------------------------------


def test_plan_changes_one_line_per_file_and_side_without_bookkeeping() -> None:
    ops = [
        P.Op(P.ENSURE_LABEL, label="dogs"),
        P.Op(P.UPLOAD, HASH_A, target=(("cats", None),)),
        P.Op(P.SET_REMOTE, HASH_B, before=(("cats", None),), target=(("dogs", None),)),
        P.Op(P.SET_REMOTE, HASH_C, before=(("age", 3.0),), target=(("age", 4.0),)),
        P.Op(P.REMOVE_REMOTE, HASH_D, before=(("cats", None),), delete_image=True),
        P.Op(P.DETACH_LABEL, label="birds"),
        P.Op(P.MAKE_FOLDER, label="dogs"),
        P.Op(P.DOWNLOAD, "remote:17", target=(("dogs", None),)),
        P.Op(P.SET_LOCAL, HASH_B, before=(("cats", None),), target=(("dogs", None),)),
        P.Op(P.TRASH_LOCAL, HASH_D, before=(("cats", None),)),
        P.Op(P.REMOVE_FOLDER, label="birds"),
        P.Op(P.SET_BASE, HASH_A, target=(("cats", None),)),
    ]
    paths = {
        HASH_A: ["cats/a.jpg"],
        HASH_B: ["cats/b.jpg"],
        HASH_C: ["age/c.jpg"],
        HASH_D: ["cats/d.jpg"],
        "remote:17": ["dogs/x.jpg"],
    }
    changes = D.plan_changes(ops, paths)
    lines = [D.action_line(c) for c in changes]
    assert lines == [
        "add label on the server: dogs",
        "upload: cats/a.jpg (new, cats)",
        "change value on the server: age/c.jpg (age=3 -> age=4)",
        "relabel on the server: cats/b.jpg (cats -> dogs)",
        "delete on the server: cats/d.jpg (was cats)",
        "remove label on the server: birds",
        "make folder: dogs/",
        "download: dogs/x.jpg (dogs)",
        "relabel here: cats/b.jpg (cats -> dogs)",
        "move to the trash: cats/d.jpg (was cats)",
        "remove empty folder: birds/",
    ]
    for line in lines:
        _clean(line)
    assert D.totals_text(changes) == (
        "add 1 label on the server, upload 1, change 1 value on the server, relabel 1 on the"
        " server, delete 1 on the server, remove 1 label on the server, make 1 folder,"
        " download 1, relabel 1 here, move 1 to the trash, remove 1 empty folder"
    )
    done = [D.action_line(c, done=True) for c in (changes[1], changes[3])]
    assert done == [
        "uploaded: cats/a.jpg (new, cats)",
        "relabelled on the server: cats/b.jpg (cats -> dogs)",
    ]


def test_totals_count_and_pluralise() -> None:
    ops = [P.Op(P.ENSURE_LABEL, label=n) for n in ("a", "b")] + [
        P.Op(P.UPLOAD, k, target=(("a", None),)) for k in (HASH_A, HASH_B, HASH_C)
    ]
    assert D.totals_text(D.plan_changes(ops, {})) == "add 2 labels on the server, upload 3"


def test_an_image_kept_by_other_tasks_is_only_unlinked_and_no_path_is_never_a_hash() -> None:
    [c] = D.plan_changes([P.Op(P.REMOVE_REMOTE, HASH_A, before=(("cats", None),))], {})
    assert D.action_line(c) == f"remove from the task on the server: {D.NOT_ON_DISK} (was cats)"
    _clean(D.action_line(c))


def test_an_unlabelled_remote_image_gets_its_label_from_none() -> None:
    [c] = D.plan_changes(
        [P.Op(P.SET_REMOTE, HASH_A, target=(("cats", None),))], {HASH_A: ["c/a.jpg"]}
    )
    assert D.action_line(c) == "relabel on the server: c/a.jpg (now cats)"


def test_capped_lists_say_how_many_more() -> None:
    lines = [str(i) for i in range(12)]
    assert D.capped(lines, 10, "--all") == [*lines[:10], "... and 2 more (--all)"]
    assert D.capped(lines, None, "--all") == lines
    assert D.capped(lines[:10], 10, "--all") == lines[:10]


# -- journal rows (repo log) ---------------------------------------------------------------


def _row(kind: str, status: str = "done", path=None, old_path=None, key=None, detail=None):
    return D.JournalRow(kind, status, path, old_path, key, detail)


def _label_of(path: str) -> str | None:
    return path.split("/")[0] if "/" in path else None


def _path_of(key: str | None) -> str | None:
    return {HASH_A: "age/a.jpg"}.get(key or "")


def _log(row: D.JournalRow) -> D.FileChange | None:
    return D.journal_change(row, _path_of, _label_of)


def test_observations_read_as_what_happened_on_disk() -> None:
    assert _log(_row("added", path="cats/a.jpg")) == D.FileChange(
        D.NEW, "cats/a.jpg", new="cats", side=D.LOCAL
    )
    deleted = _log(_row("deleted", old_path="cats/x.jpg", key=HASH_B))
    assert deleted == D.FileChange(D.DELETED, "cats/x.jpg", old="cats", side=D.LOCAL)
    assert "None" not in D.change_text(deleted)
    moved = _log(_row("moved", path="dogs/a.jpg", old_path="cats/a.jpg"))
    assert moved == D.FileChange(D.RELABELLED, "dogs/a.jpg", "cats", "dogs", D.LOCAL, "cats/a.jpg")
    renamed = _log(_row("moved", path="cats/deep/a.jpg", old_path="cats/a.jpg"))
    assert renamed is not None and renamed.kind == D.MOVED
    value = _log(_row("value_changed", key=HASH_A, detail={"age": [3.0, 4.5]}))
    assert D.change_text(value) == "age/a.jpg (age=3 -> age=4.5)"
    tags = _log(_row("labels_changed", key=HASH_A, detail={"from": ["red"], "to": ["red", "sq"]}))
    assert D.change_text(tags) == "age/a.jpg (red -> red, sq)"
    damaged = _log(_row("modified", path="cats/e.jpg", detail={"invalid": "not an image"}))
    assert (damaged.kind, D.change_text(damaged)) == (D.DAMAGED, "cats/e.jpg (not an image)")
    modified = _log(_row("modified", path="cats/e.jpg", key=HASH_C))
    assert modified == D.FileChange(D.MODIFIED, "cats/e.jpg", side=D.LOCAL)
    folder = _log(_row("label_renamed", path="felines", old_path="cats", detail={"images": 3}))
    assert D.change_text(folder) == "cats/ -> felines/ (3 images)"


def test_op_rows_read_as_what_the_sync_did_and_bookkeeping_is_hidden() -> None:
    up = _log(_row("op:upload", path="cats/a.jpg", key=HASH_B, detail={"target": {"cats": None}}))
    assert D.action_line(up, done=True) == "uploaded: cats/a.jpg (new, cats)"
    relabel = _log(
        _row(
            "op:set_local",
            path="cats/b.jpg",
            key=HASH_B,
            detail={"before": {"cats": None}, "target": {"dogs": None}},
        )
    )
    assert D.action_line(relabel, done=True) == "relabelled here: cats/b.jpg (cats -> dogs)"
    # A row from before `before` was journalled: the old labels are unknown, not "(none)".
    old_row = _log(_row("op:set_remote", key=HASH_A, detail={"target": {"age": 2.0}}))
    assert D.action_line(old_row, done=True) == "relabelled on the server: age/a.jpg (now age=2)"
    gone = _log(_row("op:remove_remote", key=HASH_D, detail={"delete_image": True}))
    assert D.action_line(gone, done=True) == f"deleted on the server: {D.NOT_ON_DISK}"
    label = _log(_row("op:ensure_label", detail={"label": "cats"}))
    assert D.action_line(label, done=True) == "label added on the server: cats"
    assert _log(_row("op:set_base", key=HASH_A, detail={"target": {"age": 2.0}})) is None
    superseded = _row("op:upload", status="superseded", key=HASH_A, detail={"target": {"a": None}})
    assert _log(superseded) is None
    assert _log(_row("something_new")) is None


def test_json_of_a_change_has_every_field() -> None:
    c = D.FileChange(D.DELETED, "x.jpg", old="cats", side=D.REMOTE, delete_image=False)
    assert D.FileChange(**c.as_json()) == c


def test_the_first_of_each_kind_are_sort_changes_cut_short_and_every_change_is_counted() -> None:
    """`repo status` builds only the changes it prints (first_of_each_kind): the first
    `cap` of each kind are those sort_changes puts first, ties (the same kind, path and
    side) kept in the order they came, whatever order they are handed over in."""
    import random

    rng = random.Random(7)
    kinds = [D.NEW, D.MOVED, D.DELETED, D.CONFLICT]
    paths = [f"p{n:02}.jpg" for n in range(30)] + [D.NOT_ON_DISK]
    came = [
        (rng.choice(kinds), rng.choice(paths), rng.choice([D.LOCAL, None]), n) for n in range(500)
    ]
    changes = [D.FileChange(kind, path, old=f"#{n}", side=side) for kind, path, side, n in came]
    expected = D.sort_changes(changes)  # stable: ties in the order they came
    built: list[int] = []

    def found(n: int) -> tuple[D.SortKey, Callable[[], D.FileChange]]:
        c = changes[n]

        def build() -> D.FileChange:
            built.append(n)
            return c

        return D.sort_key(c.kind, c.path, c.side, (n,)), build

    shuffled = list(range(len(changes)))
    rng.shuffle(shuffled)
    for cap in (3, 10, None):
        built.clear()
        listing = D.first_of_each_kind((found(n) for n in shuffled), cap)
        assert listing.counts == {k: sum(1 for c in changes if c.kind == k) for k in kinds}
        want = [c for k in D.KINDS for c in [c for c in expected if c.kind == k][:cap]]
        assert list(listing.changes) == want
        assert len(built) == len(want)  # the others were counted, never built
    assert D.first_of_each_kind([], 10) == D.Listing((), {})


def test_a_capped_list_says_how_many_more_of_a_total() -> None:
    assert D.capped(["a", "b"], 2, "--all", total=5) == ["a", "b", "... and 3 more (--all)"]
    assert D.capped(["a", "b"], 2, "--all", total=2) == ["a", "b"]
