"""Example tests of the planner (localrepo.sync.plan): label attachments (folders and task
labels created, detached, kept while in use) and the label base, on the plansim world."""

from __future__ import annotations

from support.plansim import World

from localrepo.sync import plan as P
from localrepo.sync.plan import (
    DETACH_LABEL,
    DOWNLOAD,
    ENSURE_LABEL,
    MAKE_FOLDER,
    REMOVE_FOLDER,
    TRASH_LOCAL,
)

from .test_plan import converge, one, summary, tags, world

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
