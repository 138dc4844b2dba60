"""Example tests of the planner (localrepo.sync.plan), where the two sides meet: tag sets
that merge, conflicts and their policies, and label attachments, on the plansim world."""

from __future__ import annotations

import pytest
from support.plansim import World

from localrepo.sync import plan as P
from localrepo.sync.plan import (
    DETACH_LABEL,
    DOWNLOAD,
    ENSURE_LABEL,
    MAKE_FOLDER,
    REMOVE_FOLDER,
    REMOVE_REMOTE,
    SET_BASE,
    SET_LOCAL,
    SET_REMOTE,
    TRASH_LOCAL,
)

from .test_plan import converge, image_ops, one, summary, tags, world

# -- multi_label tag sets merge --------------------------------------------------------------


def test_tag_sets_merge_adds_and_removes_from_both_sides() -> None:
    w = world("multi_label", h0=tags("a", "b", "c"))
    w.edit_set("local", "h0", tags("a", "c", "d"))  # -b +d
    w.edit_set("remote", "h0", tags("b", "c", "e"))  # -a +e
    plan = w.plan()
    merged = tags("c", "d", "e")
    assert one(plan, SET_REMOTE, "h0").target_map == merged
    assert one(plan, SET_LOCAL, "h0").target_map == merged
    assert one(plan, SET_BASE, "h0").target_map == merged
    assert plan.conflicts == []
    converge(w)


def test_tag_sets_merge_when_both_sides_add_the_same_bytes() -> None:
    w = world("multi_label", h0=tags("a"))
    w.edit_set("local", "h1", tags("a", "b"))
    w.edit_set("remote", "h1", tags("b", "c"))
    plan = w.plan()
    assert one(plan, SET_REMOTE, "h1").target_map == tags("a", "b", "c")
    assert one(plan, SET_LOCAL, "h1").target_map == tags("a", "b", "c")


@pytest.mark.parametrize("policy", P.POLICIES)
def test_tag_edits_that_together_remove_every_tag_are_a_conflict(policy: P.Policy) -> None:
    # Found by Hypothesis (shrunk): the merge base + adds - removes was empty, so the image
    # was trashed locally and deleted remotely although neither side deleted it.
    w = world("multi_label", h0=tags("a", "b", "c"), h1=tags("a"))
    w.edit_set("local", "h0", tags("c"))
    w.edit_set("remote", "h0", tags("a", "b"))
    plan = w.plan(policy)
    assert plan.by_kind(REMOVE_REMOTE) == [] and plan.by_kind(TRASH_LOCAL) == []
    (conflict,) = plan.conflicts
    assert conflict.key == "h0" and conflict.field == "label"
    assert conflict.local == P.frozen(tags("c")) and conflict.remote == P.frozen(tags("a", "b"))
    if policy == "manual":
        assert image_ops(plan, "h0") == []
        assert conflict.resolution is None
    else:
        assert conflict.resolution == policy
        converge(w, policy)
        assert w.local["h0"] == (tags("c") if policy == "local" else tags("a", "b"))


def test_regression_labels_that_together_remove_every_label_are_a_conflict() -> None:
    w = world("regression", h0={"a": 1.0, "b": 2.0})
    w.edit_set("local", "h0", {"a": 1.0})
    w.edit_set("remote", "h0", {"b": 2.0})
    plan = w.plan()
    assert [c.key for c in plan.conflicts] == ["h0"] and image_ops(plan, "h0") == []


# -- conflicts --------------------------------------------------------------------------------


def test_multi_class_different_labels_on_both_sides_manual_leaves_the_image_alone() -> None:
    w = world("multi_class", h0=tags("a"), h1=tags("a"))
    w.edit_set("local", "h0", tags("b"))
    w.edit_set("remote", "h0", tags("c"))
    plan = w.plan("manual")
    assert image_ops(plan, "h0") == []
    assert plan.conflicts == [
        P.Conflict("h0", "label", (("a", None),), (("b", None),), (("c", None),), None)
    ]
    # Both candidate labels stay attached while the conflict is open.
    assert summary(plan) == [(ENSURE_LABEL, "b"), (MAKE_FOLDER, "c")]
    w.sync("manual")
    assert w.get("local", "h0") == tags("b") and w.get("remote", "h0") == tags("c")
    assert w.get("base", "h0") == tags("a")
    assert [c.key for c in w.plan("manual").conflicts] == ["h0"]  # still reported


@pytest.mark.parametrize("policy", ["local", "remote"])
def test_multi_class_conflict_settled_by_policy_records_the_loser(policy: P.Policy) -> None:
    w = world("multi_class", h0=tags("a"))
    w.edit_set("local", "h0", tags("b"))
    w.edit_set("remote", "h0", tags("c"))
    plan = w.plan(policy)
    (conflict,) = plan.conflicts
    assert conflict.resolution == policy
    assert conflict.local == (("b", None),) and conflict.remote == (("c", None),)
    assert conflict.base == (("a", None),)
    winner = tags("b") if policy == "local" else tags("c")
    if policy == "local":
        assert image_ops(plan, "h0") == [SET_REMOTE, SET_BASE]
    else:
        assert image_ops(plan, "h0") == [SET_LOCAL, SET_BASE]
    assert one(plan, SET_BASE, "h0").target_map == winner
    converge(w, policy)
    assert w.local["h0"] == w.remote["h0"] == winner
    assert w.plan(policy).conflicts == []
    # Label attachments are not part of the image conflict: a/ is empty but still there,
    # and each side's new label is kept.
    assert w.local_labels == w.remote_labels == {"a", "b", "c"}


@pytest.mark.parametrize("policy", P.POLICIES)
def test_the_same_bytes_added_with_different_labels_is_a_conflict(policy: P.Policy) -> None:
    w = world("multi_class", h0=tags("a"))
    w.edit_set("local", "h1", tags("a"))
    w.edit_set("remote", "h1", tags("b"))
    plan = w.plan(policy)
    (conflict,) = plan.conflicts
    assert conflict.key == "h1" and conflict.base == ()
    if policy == "manual":
        assert image_ops(plan, "h1") == []
    else:
        converge(w, policy)


@pytest.mark.parametrize("policy", P.POLICIES)
def test_regression_value_set_differently_is_a_value_conflict(policy: P.Policy) -> None:
    w = world("regression", h0={"a": 1.0})
    w.edit_set("local", "h0", {"a": 2.0})
    w.edit_set("remote", "h0", {"a": 3.0})
    plan = w.plan(policy)
    (conflict,) = plan.conflicts
    assert conflict.field == "value"
    assert (conflict.base, conflict.local, conflict.remote) == (
        (("a", 1.0),),
        (("a", 2.0),),
        (("a", 3.0),),
    )
    if policy == "manual":
        assert plan.ops == [] and conflict.resolution is None
    else:
        assert conflict.resolution == policy
        converge(w, policy)
        assert w.local["h0"] == {"a": 2.0 if policy == "local" else 3.0}


def test_regression_value_on_one_side_and_move_on_the_other_merge() -> None:
    w = world("regression", h0={"a": 1.0, "b": 1.0})
    w.edit_set("local", "h0", {"a": 2.0, "b": 1.0})  # a new value for a
    w.edit_set("remote", "h0", {"a": 1.0, "b": 5.0})  # a new value for b
    plan = w.plan()
    assert plan.conflicts == []
    assert one(plan, SET_BASE, "h0").target_map == {"a": 2.0, "b": 5.0}


# -- label attachments ------------------------------------------------------------------------


def test_a_new_empty_local_folder_becomes_a_task_label() -> None:
    w = world("multi_class", h0=tags("a"))
    w.edit_add_label("local", "x")
    assert summary(w.plan()) == [(ENSURE_LABEL, "x")]
    converge(w)


def test_a_new_remote_label_gets_a_folder() -> None:
    w = world("multi_class", h0=tags("a"))
    w.edit_add_label("remote", "x")
    assert summary(w.plan()) == [(MAKE_FOLDER, "x")]
    converge(w)


def test_an_unused_label_removed_locally_is_detached() -> None:
    w = World.synced("multi_class", {"h0": tags("a")}, extra_labels={"x"})
    w.edit_remove_label("local", "x")
    assert summary(w.plan()) == [(DETACH_LABEL, "x")]
    converge(w)


def test_an_unused_label_detached_remotely_loses_its_folder() -> None:
    w = World.synced("multi_class", {"h0": tags("a")}, extra_labels={"x"})
    w.edit_remove_label("remote", "x")
    assert summary(w.plan()) == [(REMOVE_FOLDER, "x")]
    converge(w)


def test_a_label_still_used_by_an_image_is_never_detached() -> None:
    # The remote detached "a" (unlinking its image h0); meanwhile a new local image went
    # into a/: the label stays, and the remote gets it back.
    w = world("multi_class", h0=tags("a"), h1=tags("b"))
    w.edit_remove_label("remote", "a")
    w.edit_set("local", "h2", tags("a"))
    plan = w.plan()
    assert (ENSURE_LABEL, "a") in summary(plan)
    assert (REMOVE_FOLDER, "a") not in summary(plan)
    assert one(plan, TRASH_LOCAL, "h0")
    converge(w)
    assert "a" in w.remote_labels and w.remote["h2"] == tags("a")


def test_a_local_folder_removed_while_the_remote_edited_an_image_of_it_stays() -> None:
    w = world("multi_label", h0=tags("a"), h1=tags("a", "b"))
    w.edit_remove_label("local", "a")  # h0 gone, h1 now only b
    w.edit_set("remote", "h0", tags("a", "c"))  # edit beats delete
    plan = w.plan()
    assert (DETACH_LABEL, "a") not in summary(plan)
    assert (MAKE_FOLDER, "a") in summary(plan)
    assert one(plan, DOWNLOAD, "h0").target_map == tags("a", "c")
    converge(w)


def test_an_open_conflict_keeps_its_labels_but_not_its_base_labels() -> None:
    w = World.synced("multi_class", {"h0": tags("a")}, extra_labels={"b", "c"})
    w.edit_set("local", "h0", tags("b"))
    w.edit_set("remote", "h0", tags("c"))
    w.edit_remove_label("local", "a")
    plan = w.plan()
    assert summary(plan) == [(DETACH_LABEL, "a")]  # neither b nor c goes


def test_label_ops_are_merged_like_tag_sets() -> None:
    w = World.synced("multi_label", {"h0": tags("a")}, extra_labels={"x", "y"})
    w.edit_remove_label("local", "x")
    w.edit_add_label("local", "p")
    w.edit_remove_label("remote", "y")
    w.edit_add_label("remote", "q")
    plan = w.plan()
    assert sorted(summary(plan)) == sorted(
        [(ENSURE_LABEL, "p"), (DETACH_LABEL, "x"), (MAKE_FOLDER, "q"), (REMOVE_FOLDER, "y")]
    )
    converge(w)
    assert w.local_labels == {"a", "p", "q"}


def test_the_label_base_must_be_settled_by_the_executor() -> None:
    # The planner emits no op for the synced label set (SET_BASE is per image), and
    # nothing changes a label removed on both sides: unless the run records the base
    # (sync/catalog_side.py's settle_task_labels; plansim's record_label_base), it stays stale and
    # a later one-sided re-add is reverted.
    def run(settle: bool) -> P.Plan:
        w = World.synced("multi_class", {"h0": tags("a")}, extra_labels={"x"})
        w.edit_remove_label("local", "x")
        w.edit_remove_label("remote", "x")
        w.sync(record_label_base=settle)
        w.edit_add_label("local", "x")  # a new, empty folder x/
        return w.plan()

    assert summary(run(settle=False)) == [(REMOVE_FOLDER, "x")]  # the stale base
    assert summary(run(settle=True)) == [(ENSURE_LABEL, "x")]
