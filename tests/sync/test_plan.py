"""Example tests of the planner (localrepo.sync.plan): every rule of design section 3 and of
the planner's docstring, for the three task types, on the plansim world.
Here: converged states, push, pull, equal changes, edit beats delete, tag sets and
conflicts; label attachments in test_plan_labels.py, blocked images, the delete guards
and op order in test_plan_safety.py (both use the helpers below)."""

from __future__ import annotations

import pytest
from support.plansim import World

from localrepo.sync import plan as P
from localrepo.sync.plan import (
    DETACH_LABEL,
    DOWNLOAD,
    ENSURE_LABEL,
    MAKE_FOLDER,
    REMOVE_REMOTE,
    SET_BASE,
    SET_LOCAL,
    SET_REMOTE,
    TRASH_LOCAL,
    UPLOAD,
)
from localrepo.vocabulary import TASK_TYPES

# Per task type: an image's state A, and an edit of it B (a move, a tag edit, a new value).
A = {
    "multi_class": {"a": None},
    "multi_label": {"a": None, "b": None},
    "regression": {"a": 1.0},
}
B = {
    "multi_class": {"b": None},
    "multi_label": {"b": None, "c": None},
    "regression": {"a": 2.5},
}
# A third state, different from both.
C = {
    "multi_class": {"c": None},
    "multi_label": {"a": None, "c": None},
    "regression": {"a": 7.0},
}


def tags(*names: str) -> dict[str, None]:
    return dict.fromkeys(names)


def summary(plan: P.Plan) -> list[tuple[str, str | None]]:
    """(kind, key or label) of every op, in plan order."""
    return [(op.kind, op.key if op.key is not None else op.label) for op in plan.ops]


def image_ops(plan: P.Plan, key: str) -> list[str]:
    return [op.kind for op in plan.ops if op.key == key]


def one(plan: P.Plan, kind: str, key: str | None = None) -> P.Op:
    found = [op for op in plan.by_kind(kind) if key is None or op.key == key]
    assert len(found) == 1, (kind, key, plan.ops)
    return found[0]


def world(task_type: str, **images: dict) -> World:
    """A synced world with images h0, h1, ... (keyword = key)."""
    return World.synced(task_type, images)


def converge(w: World, policy: P.Policy = "manual") -> None:
    """Sync to a fixed point and check that everything agrees and re-planning is empty."""
    w.sync(policy, force=True)
    again = w.plan(policy)
    assert again.ops == []
    for key in w.image_keys():
        if key not in {c.key for c in again.conflicts}:
            assert w.converged(key), key
    assert w.local_labels == w.remote_labels


# -- converged states ---------------------------------------------------------------------


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_a_converged_state_plans_nothing(task_type: str) -> None:
    w = World.synced(
        task_type,
        {"h0": A[task_type], "h1": B[task_type], "h2": C[task_type]},
        extra_labels={"empty"},
    )
    for policy in P.POLICIES:
        plan = w.plan(policy)
        assert plan.is_empty and plan.stop is None


def test_an_empty_task_plans_nothing() -> None:
    assert World("multi_class").plan().is_empty


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="policy"):
        world("multi_class", h0=tags("a")).plan("newest")  # type: ignore[arg-type]


def test_the_planner_is_pure_and_deterministic() -> None:
    w = world("multi_label", h0=tags("a", "b"), h1=tags("b"))
    w.edit_set("local", "h0", tags("a", "c"))
    w.edit_set("remote", "h1", tags("b", "d"))
    w.edit_set("local", "h2", tags("e"))
    state = w.state()
    before = repr(state)
    first = P.plan_task(state, "manual")
    assert repr(state) == before
    assert P.plan_task(state, "manual") == first


# -- push -----------------------------------------------------------------------------------


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_a_new_local_image_is_uploaded_and_new_labels_ensured(task_type: str) -> None:
    w = world(task_type, h0=A[task_type])
    new = {"new" + name: value for name, value in B[task_type].items()}
    w.edit_set("local", "h1", new)
    plan = w.plan()
    upload = one(plan, UPLOAD, "h1")
    assert upload.target_map == new and upload.before == ()
    assert sorted(op.label for op in plan.by_kind(ENSURE_LABEL)) == sorted(new)
    assert image_ops(plan, "h1") == [UPLOAD, SET_BASE]
    assert one(plan, SET_BASE, "h1").target_map == new
    assert image_ops(plan, "h0") == []
    assert plan.by_kind(MAKE_FOLDER) == []  # the folders exist already
    converge(w)
    assert w.remote["h1"] == new and "h1" in w.created_here


def test_a_new_local_image_with_known_labels_needs_no_label_op() -> None:
    w = world("multi_class", h0=tags("a"))
    w.edit_set("local", "h1", tags("a"))
    assert summary(w.plan()) == [(UPLOAD, "h1"), (SET_BASE, "h1")]


def test_a_new_local_image_whose_bytes_exist_remotely_is_linked_not_uploaded() -> None:
    w = world("multi_class", h0=tags("a"))
    w.remote_exists.add("h1")  # on the server, without this task's labels
    w.edit_set("local", "h1", tags("a"))
    plan = w.plan()
    assert summary(plan) == [(SET_REMOTE, "h1"), (SET_BASE, "h1")]
    assert one(plan, SET_REMOTE).before == () and one(plan, SET_REMOTE).target_map == tags("a")


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_a_local_edit_is_a_relabel_never_an_upload(task_type: str) -> None:
    w = world(task_type, h0=A[task_type])
    w.edit_set("local", "h0", B[task_type])
    plan = w.plan()
    op = one(plan, SET_REMOTE, "h0")
    assert op.before_map == A[task_type] and op.target_map == B[task_type]
    assert image_ops(plan, "h0") == [SET_REMOTE, SET_BASE]
    converge(w)
    assert w.remote["h0"] == B[task_type]


def test_a_label_rename_relinks_every_image_then_detaches_the_old_label() -> None:
    w = world("multi_class", h0=tags("a"), h1=tags("a"), h2=tags("b"))
    w.edit_rename_label("local", "a", "z")
    plan = w.plan()
    assert summary(plan) == [
        (ENSURE_LABEL, "z"),
        (SET_REMOTE, "h0"),
        (SET_REMOTE, "h1"),
        (DETACH_LABEL, "a"),
        (SET_BASE, "h0"),
        (SET_BASE, "h1"),
    ]
    converge(w)
    assert w.remote_labels == {"b", "z"}


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_a_local_delete_of_an_image_created_here_deletes_it_remotely(task_type: str) -> None:
    w = world(task_type, h0=A[task_type], h1=B[task_type])
    w.edit_delete("local", "h0")
    plan = w.plan()
    op = one(plan, REMOVE_REMOTE, "h0")
    assert op.delete_image and op.before_map == A[task_type]
    assert image_ops(plan, "h0") == [REMOVE_REMOTE, SET_BASE]
    assert one(plan, SET_BASE, "h0").target == ()
    converge(w)
    assert "h0" not in w.remote_exists and "h0" not in w.base


def test_a_local_delete_only_unlinks_an_image_not_created_here() -> None:
    w = World.synced("multi_class", {"h0": tags("a")}, created_here=())
    w.edit_delete("local", "h0")
    assert one(w.plan(), REMOVE_REMOTE, "h0").delete_image is False
    converge(w)
    assert "h0" in w.remote_exists and "h0" not in w.remote


def test_a_local_delete_only_unlinks_an_image_that_other_tasks_use() -> None:
    w = World.synced("multi_label", {"h0": tags("a")}, remote_other_labels={"h0"})
    w.edit_delete("local", "h0")
    assert one(w.plan(), REMOVE_REMOTE, "h0").delete_image is False


def test_moving_a_file_to_unlabeled_unlinks_it_and_keeps_the_file() -> None:
    w = world("multi_class", h0=tags("a"))
    w.edit_delete("local", "h0", unlabel_only=True)
    plan = w.plan()
    assert summary(plan) == [(REMOVE_REMOTE, "h0"), (SET_BASE, "h0")]
    converge(w)
    assert "h0" in w.local_files


# -- pull -----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["h9", "remote:42"])
@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_a_new_remote_image_is_downloaded(task_type: str, key: str) -> None:
    w = world(task_type, h0=A[task_type])
    new = {"new" + name: value for name, value in B[task_type].items()}
    w.edit_set("remote", key, new)
    plan = w.plan()
    download = one(plan, DOWNLOAD, key)
    assert download.target_map == new and download.before == ()
    assert sorted(op.label for op in plan.by_kind(MAKE_FOLDER)) == sorted(new)
    assert image_ops(plan, key) == [DOWNLOAD, SET_BASE]
    assert plan.by_kind(ENSURE_LABEL) == []
    converge(w)
    assert w.local[key] == new and key in w.local_files


def test_a_remote_image_already_on_disk_unlabelled_is_moved_not_downloaded() -> None:
    w = world("multi_class", h0=tags("a"))
    w.local_files.add("h1")  # under _unlabeled/
    w.edit_set("remote", "h1", tags("a"))
    plan = w.plan()
    assert summary(plan) == [(SET_LOCAL, "h1"), (SET_BASE, "h1")]
    assert one(plan, SET_LOCAL).before == ()


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_a_remote_edit_is_applied_locally(task_type: str) -> None:
    w = world(task_type, h0=A[task_type])
    w.edit_set("remote", "h0", B[task_type])
    plan = w.plan()
    op = one(plan, SET_LOCAL, "h0")
    assert op.before_map == A[task_type] and op.target_map == B[task_type]
    assert image_ops(plan, "h0") == [SET_LOCAL, SET_BASE]
    converge(w)


@pytest.mark.parametrize("unlabel_only", [False, True])
@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_a_remote_delete_trashes_the_local_file(task_type: str, unlabel_only: bool) -> None:
    w = world(task_type, h0=A[task_type], h1=B[task_type])
    w.edit_delete("remote", "h0", unlabel_only=unlabel_only)
    plan = w.plan()
    op = one(plan, TRASH_LOCAL, "h0")
    assert op.before_map == A[task_type]
    assert image_ops(plan, "h0") == [TRASH_LOCAL, SET_BASE]
    assert plan.by_kind(REMOVE_REMOTE) == []
    converge(w)
    assert "h0" not in w.local_files


# -- equal changes ----------------------------------------------------------------------------


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_equal_changes_on_both_sides_only_record_the_base(task_type: str) -> None:
    w = world(task_type, h0=A[task_type], h1=A[task_type], h2=B[task_type])
    for side in ("local", "remote"):
        w.edit_set(side, "h0", B[task_type])  # the same edit
        w.edit_delete(side, "h1")  # the same delete
        w.edit_set(side, "h3", C[task_type])  # the same bytes, the same labels
    plan = w.plan()
    assert summary(plan) == [(SET_BASE, "h0"), (SET_BASE, "h1"), (SET_BASE, "h3")]
    assert one(plan, SET_BASE, "h0").target_map == B[task_type]
    assert one(plan, SET_BASE, "h1").target == ()
    assert plan.conflicts == []
    converge(w)


# -- an edit beats a delete -------------------------------------------------------------------


@pytest.mark.parametrize("unlabel_only", [False, True])
@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_local_delete_remote_edit_gives_the_image_back_locally(
    task_type: str, unlabel_only: bool
) -> None:
    w = world(task_type, h0=A[task_type])
    w.edit_delete("local", "h0", unlabel_only=unlabel_only)
    w.edit_set("remote", "h0", B[task_type])
    plan = w.plan()
    kind = SET_LOCAL if unlabel_only else DOWNLOAD  # the file is still there, or not
    assert image_ops(plan, "h0") == [kind, SET_BASE]
    assert one(plan, kind).target_map == B[task_type]  # whole
    assert plan.conflicts == []
    converge(w)
    assert w.local["h0"] == B[task_type]


@pytest.mark.parametrize("unlabel_only", [False, True])
@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_remote_delete_local_edit_gives_the_image_back_remotely(
    task_type: str, unlabel_only: bool
) -> None:
    w = world(task_type, h0=A[task_type])
    w.edit_delete("remote", "h0", unlabel_only=unlabel_only)
    w.edit_set("local", "h0", B[task_type])
    plan = w.plan()
    kind = SET_REMOTE if unlabel_only else UPLOAD  # the image still exists, or not
    assert image_ops(plan, "h0") == [kind, SET_BASE]
    assert one(plan, kind).target_map == B[task_type]
    assert plan.conflicts == []
    converge(w)
    assert w.remote["h0"] == B[task_type]


def test_edit_beats_delete_brings_every_tag_back() -> None:
    w = world("multi_label", h0=tags("a", "b", "c"))
    w.edit_delete("remote", "h0")
    w.edit_set("local", "h0", tags("a", "b", "c", "d"))  # one tag added
    plan = w.plan()
    assert one(plan, UPLOAD, "h0").target_map == tags("a", "b", "c", "d")


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
