"""The watcher's REMOTE view without a listing (state.catalog_snapshot): pure functions."""

from __future__ import annotations

from types import SimpleNamespace as NS

from localrepo.sync import plan as P
from localrepo.sync.snapshot import (
    MAX_FETCH,
    catalog_snapshot,
    catalog_view_blocker,
    changed_keys,
)

LABELS = [NS(id="L1", name="cats", type="category"), NS(id="L2", name="dogs", type="category")]


def test_changed_keys_are_the_images_whose_local_state_left_the_synced_one():
    base = {"a": {"cats": None}, "b": {"dogs": None}, "c": {"cats": None}}
    local = {"a": {"cats": None}, "b": {"cats": None}, "n": {"dogs": None}}
    assert changed_keys(base, local) == {"b", "c", "n"}  # moved, deleted, new


def test_untouched_images_are_seen_as_synced_and_fetched_ones_as_they_are_now():
    base = {"a": {"cats": None}, "b": {"dogs": None}, "c": {"cats": None}}
    remote_ids = {"a": "ra", "b": "rb", "c": "rc"}
    fetched = {
        "b": NS(id="rb", img_path="", meta_data={}, labels=[NS(id="L1")]),  # edited there
        "c": None,  # deleted there
        "n": None,  # new here: nothing to fetch
    }
    by_id = {v: k for k, v in remote_ids.items()}
    snap = catalog_snapshot("T", "multi_class", LABELS, fetched, base, remote_ids, by_id)
    assert {k: v.labels for k, v in snap.images.items()} == {
        "a": {"cats": None},
        "b": {"cats": None},
    }
    assert snap.images["a"].id == "ra" and snap.labels == {"cats": "L1", "dogs": "L2"}
    # Planned from it: b is a conflict (dogs -> cats there, dogs -> birds here).
    state = P.TaskState(
        task_type="multi_class",
        base=base,
        local={"a": {"cats": None}, "b": {"birds": None}, "n": {"dogs": None}},
        remote={k: v.labels for k, v in snap.images.items()},
        local_files=frozenset({"a", "b", "n"}),
        remote_exists=frozenset(remote_ids),
        base_labels=frozenset({"cats", "dogs"}),
        local_labels=frozenset({"cats", "dogs"}),
        remote_labels=frozenset(snap.labels),
    )
    plan = P.plan_task(state)
    kinds = sorted((op.kind, op.key) for op in plan.ops if op.key)
    # a: untouched, nothing to do; c: gone on both sides, recorded; n: uploaded.
    assert kinds == [(P.SET_BASE, "c"), (P.SET_BASE, "n"), (P.UPLOAD, "n")]
    assert [(c.key, c.remote, c.local) for c in plan.conflicts] == [
        ("b", (("cats", None),), (("birds", None),))
    ]


def test_a_listing_is_needed_when_labels_changed_there_or_many_images_changed():
    cats = ["cats"]
    assert catalog_view_blocker(cats, cats, cats, 3, True) is None
    assert catalog_view_blocker(cats, cats, ["cats", "new"], 3, True) is None  # added here
    assert "labels" in (catalog_view_blocker(["cats", "new"], cats, cats, 0, True) or "")
    assert "labels" in (catalog_view_blocker([], cats, cats, 0, True) or "")
    assert "gone here" in (catalog_view_blocker(cats, cats, ["fox"], 0, True) or "")
    assert catalog_view_blocker(cats, cats, cats, MAX_FETCH + 1, True) is not None
    assert catalog_view_blocker(cats, cats, cats, 0, False) is not None
