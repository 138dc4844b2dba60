"""A plan narrowed to what a run was asked to do (localrepo.sync.narrow): `repo push` /
`repo pull` keep one direction's half, `repo resolve` re-plans the images it names. The
plans are the planner's own, for small task states."""

from __future__ import annotations

import pytest

from localrepo.sync import plan as P
from localrepo.sync.narrow import filter_plan, left_for_other_side, with_resolutions


def tags(*names: str) -> dict[str, None]:
    return dict.fromkeys(names)


# multi_label: "up" is new here, "down" new on the server, "both" got a tag on each side
# (work on both sides), "same" is in sync; the folder "old" went on the server, the
# label "gone" here.
TWO_WAY = P.TaskState(
    task_type="multi_label",
    base={"both": tags("a"), "same": tags("a")},
    local={"both": tags("a", "x"), "same": tags("a"), "up": tags("a")},
    remote={"both": tags("a", "y"), "same": tags("a"), "down": tags("b")},
    local_files=frozenset({"both", "same", "up"}),
    remote_exists=frozenset({"both", "same", "down"}),
    created_here=frozenset({"both", "same"}),
    base_labels=frozenset({"a", "old", "gone"}),
    local_labels=frozenset({"a", "x", "old"}),
    remote_labels=frozenset({"a", "y", "b", "gone"}),
)


# What changes the server (and recording an image as synced, which both halves do).
PUSH_KINDS = {P.ENSURE_LABEL, P.UPLOAD, P.SET_REMOTE, P.REMOVE_REMOTE, P.DETACH_LABEL, P.SET_BASE}


def summary(plan: P.Plan) -> list[tuple[str, str | None]]:
    return [(op.kind, op.key if op.key is not None else op.label) for op in plan.ops]


@pytest.fixture
def full() -> P.Plan:
    plan = P.plan_task(TWO_WAY)
    # The world is what the tests below claim it is.
    assert {(op.kind, op.key) for op in plan.ops if op.key == "both"} == {
        (P.SET_REMOTE, "both"),
        (P.SET_LOCAL, "both"),
        (P.SET_BASE, "both"),
    }
    return plan


def test_sync_keeps_the_whole_plan(full: P.Plan) -> None:
    assert filter_plan(full, "sync") is full


def test_push_keeps_only_what_changes_the_remote(full: P.Plan) -> None:
    pushed = filter_plan(full, "push")
    assert summary(pushed) == [
        (P.ENSURE_LABEL, "x"),
        (P.UPLOAD, "up"),
        (P.DETACH_LABEL, "gone"),
        (P.SET_BASE, "up"),
    ]
    assert {op.kind for op in pushed.ops} <= PUSH_KINDS


def test_pull_keeps_only_what_changes_the_disk(full: P.Plan) -> None:
    pulled = filter_plan(full, "pull")
    assert summary(pulled) == [
        (P.MAKE_FOLDER, "b"),
        (P.MAKE_FOLDER, "y"),
        (P.DOWNLOAD, "down"),
        (P.REMOVE_FOLDER, "old"),
        (P.SET_BASE, "down"),
    ]
    assert not {op.kind for op in pulled.ops} & PUSH_KINDS - {P.SET_BASE}


@pytest.mark.parametrize("mode", ["push", "pull"])
def test_an_image_with_work_on_both_sides_is_left_whole_for_a_full_sync(
    full: P.Plan, mode: str
) -> None:
    narrowed = filter_plan(full, mode)
    # Not even recorded as synced: the next run would undo the other half.
    assert all(op.key != "both" for op in narrowed.ops)
    # "both", and the image the other direction brings ("down" for push, "up" for pull).
    assert left_for_other_side(full, narrowed) == 2


def test_nothing_is_left_for_the_other_side_of_a_full_sync(full: P.Plan) -> None:
    assert left_for_other_side(full, filter_plan(full, "sync")) == 0


def test_recording_an_image_as_synced_is_not_work_left() -> None:
    settled = P.Plan(ops=[P.Op(P.SET_BASE, "k")])
    assert left_for_other_side(settled, P.Plan()) == 0


def test_conflicts_and_the_stop_stay_with_the_narrowed_plan() -> None:
    stop = P.SafetyStop("mass_delete", "local", 9, 3, "stopped", ("k",))
    conflict = P.Conflict("c", "label", (), (("a", None),), (("b", None),))
    plan = P.Plan(ops=[P.Op(P.DOWNLOAD, "k")], conflicts=[conflict], stop=stop)
    pushed = filter_plan(plan, "push")
    assert pushed.ops == [] and pushed.conflicts == [conflict] and pushed.stop is stop


# multi_class: "c" and "d" moved to a different folder on each side (conflicts), "e" is
# in sync.
CLASH = P.TaskState(
    task_type="multi_class",
    base={"c": tags("dog"), "d": tags("dog"), "e": tags("dog")},
    local={"c": tags("cat"), "d": tags("cat"), "e": tags("dog")},
    remote={"c": tags("bird"), "d": tags("bird"), "e": tags("dog")},
    local_files=frozenset({"c", "d", "e"}),
    remote_exists=frozenset({"c", "d", "e"}),
    created_here=frozenset({"c", "d", "e"}),
    base_labels=frozenset({"dog", "cat", "bird"}),
    local_labels=frozenset({"dog", "cat", "bird"}),
    remote_labels=frozenset({"dog", "cat", "bird"}),
)


def test_a_resolution_settles_only_the_images_it_names() -> None:
    manual = P.plan_task(CLASH)
    assert [c.key for c in manual.conflicts] == ["c", "d"] and not manual.ops
    settled = with_resolutions(manual, CLASH, frozenset({"c"}), "local")
    assert summary(settled) == [(P.SET_REMOTE, "c"), (P.SET_BASE, "c")]
    assert settled.ops[0].target_map == {"cat": None}
    by_key = {c.key: c.resolution for c in settled.conflicts}
    assert by_key == {"c": "local", "d": None}  # the losing side is still recorded


def test_the_other_side_can_win() -> None:
    settled = with_resolutions(P.plan_task(CLASH), CLASH, frozenset({"c", "d"}), "remote")
    assert summary(settled) == [
        (P.SET_LOCAL, "c"),
        (P.SET_LOCAL, "d"),
        (P.SET_BASE, "c"),
        (P.SET_BASE, "d"),
    ]
    assert all(op.target_map == {"bird": None} for op in settled.ops)


def test_a_resolution_without_a_conflict_changes_nothing() -> None:
    manual = P.plan_task(CLASH)
    assert with_resolutions(manual, CLASH, frozenset({"e", "nope"}), "local") is manual
