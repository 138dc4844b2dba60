"""Hypothesis properties of the planner (localrepo.sync.plan), on the plansim world.

A synced state (base = local = remote) is edited on both sides by random, correlated user
edits (new images, deletes, moves, value changes, tag edits, label renames, byte edits
of a file, the same bytes added on both sides, equal edits on both sides...). Then plan -> apply (ops of one
kind shuffled: the executor may run them concurrently) -> re-plan, until a plan has no
op. Checked: it terminates, both sides and the base converge (except, with the `manual`
policy, the images in conflict, which stay untouched), one-sided changes survive, nothing
disappears that no side deleted, the outcome does not depend on the order within a kind,
and a converged state plans nothing.

CI runs a few hundred examples per test; `LOCALREPO_SOAK=1` runs 20,000 per test.
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Callable

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from support.plansim import Labels, World

from localrepo.sync import plan as P
from localrepo.vocabulary import TASK_TYPES

SOAK = os.environ.get("LOCALREPO_SOAK", "") not in ("", "0")


def examples(n: int) -> int:
    return 20_000 if SOAK else n


SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

LABELS = ("a", "b", "c", "n")
VALUES = (1.0, 2.0, 3.5)
HASHES = tuple(f"h{i}" for i in range(8))
_ABSENT = object()


@functools.cache
def label_maps(task_type: str, names: tuple[str, ...] = LABELS) -> st.SearchStrategy:
    """A non-empty label map valid for the task type."""
    if task_type == "multi_class":
        return st.sampled_from(names).map(lambda n: {n: None})
    if task_type == "multi_label":
        return st.sets(st.sampled_from(names), min_size=1, max_size=3).map(
            lambda s: dict.fromkeys(sorted(s))
        )
    return st.dictionaries(st.sampled_from(names), st.sampled_from(VALUES), min_size=1, max_size=2)


@st.composite
def synced_worlds(draw, task_type: str | None = None) -> World:
    task_type = task_type or draw(S_TASK_TYPE)
    keys = draw(S_KEYS)
    images = {k: draw(label_maps(task_type, LABELS[:3])) for k in keys}
    world = World.synced(
        task_type,
        images,
        extra_labels=draw(S_LABEL_SET),
        created_here=draw(S_HASH_SET) & set(keys),
        remote_other_labels=draw(S_HASH_SET) & set(keys),
    )
    return world


EDITS = (
    "add",
    "delete",
    "set",
    "tweak",
    "rename",
    "add_label",
    "remove_label",
    "same_bytes",
    "bytes",
)
S_TASK_TYPE = st.sampled_from(TASK_TYPES)
S_KEYS = st.lists(st.sampled_from(HASHES), unique=True, min_size=1, max_size=6)
S_HASH_SET = st.sets(st.sampled_from(HASHES))
S_LABEL_SET = st.sets(st.sampled_from(LABELS))
S_EDIT = st.sampled_from(EDITS)
S_SIDE = st.sampled_from(("local", "remote", "both"))
S_LABEL = st.sampled_from(LABELS)
S_OTHER_LABEL = {n: st.sampled_from([x for x in LABELS if x != n]) for n in LABELS}
S_VALUE = st.sampled_from(VALUES)
S_BOOL = st.booleans()


def random_edit(data: st.DataObject, world: World, counter: list[int]) -> str:
    """One user edit: on the local side, the remote side, or the same edit on both."""
    kind = data.draw(S_EDIT, label="edit")
    side = data.draw(S_SIDE, label="side")
    edit = _EDITS.get(kind, _edit_image)  # by default, an edit of one existing image
    return edit(data, world, counter, kind, side)


def _sides(side: str) -> tuple[str, ...]:
    return ("local", "remote") if side == "both" else (side,)


def _edit_add(data: st.DataObject, world: World, counter: list[int], kind: str, side: str) -> str:
    counter[0] += 1
    if side == "remote" and data.draw(S_BOOL, label="remote key"):
        key = f"remote:{counter[0]}"
    else:
        key = f"new{counter[0]}"
    labels = data.draw(label_maps(world.task_type), label="labels")
    for s in _sides(side):
        world.edit_set(s, key, labels)
    return f"add {key} {labels} on {side}"


def _edit_same_bytes(
    data: st.DataObject, world: World, counter: list[int], kind: str, side: str
) -> str:
    """The same bytes added on both sides, labelled independently."""
    counter[0] += 1
    key = f"new{counter[0]}"
    for s in ("local", "remote"):
        world.edit_set(s, key, data.draw(label_maps(world.task_type), label=f"{s} labels"))
    return f"same bytes {key}: {world.get('local', key)} / {world.get('remote', key)}"


def _edit_label(data: st.DataObject, world: World, counter: list[int], kind: str, side: str) -> str:
    """add_label, remove_label or rename: an edit of a label, not of an image."""
    name = data.draw(S_LABEL, label="label")
    if kind == "add_label":
        for s in _sides(side):
            world.edit_add_label(s, name)
    elif kind == "remove_label":
        for s in _sides(side):
            world.edit_remove_label(s, name)
    else:
        new = data.draw(S_OTHER_LABEL[name], label="new")
        for s in _sides(side):
            world.edit_rename_label(s, name, new)
        return f"rename {name} -> {new} on {side}"
    return f"{kind} {name} on {side}"


def _edit_image(data: st.DataObject, world: World, counter: list[int], kind: str, side: str) -> str:
    """bytes, delete, set or tweak: an edit of one existing image."""
    sides = _sides(side)
    # A remote:<id> image has no local bytes until it is downloaded.
    candidates = sorted(
        k
        for k in world.image_keys()
        if side == "remote" or not k.startswith(P.REMOTE_KEY_PREFIX) or k in world.local_files
    )
    if not candidates:
        return "nothing"
    key = data.draw(st.sampled_from(candidates), label="key")
    if kind == "bytes":  # the file at a path gets new content (the same on both sides)
        counter[0] += 1
        new_key = f"new{counter[0]}"
        for s in sides:
            world.edit_bytes(s, key, new_key)
        return f"new bytes {key} -> {new_key} on {side}"
    if kind == "delete":
        unlabel = data.draw(S_BOOL, label="unlabel only")
        for s in sides:
            world.edit_delete(s, key, unlabel_only=unlabel)
        return f"delete {key} on {side} (unlabel only: {unlabel})"
    if kind == "set":
        labels = data.draw(label_maps(world.task_type), label="labels")
    else:
        labels = _tweaked(data, world, sides, key)
    for s in sides:
        world.edit_set(s, key, labels)
    return f"set {key} {labels} on {side}"


def _tweaked(data: st.DataObject, world: World, sides: tuple[str, ...], key: str) -> Labels:
    """An image's labels with one label tweaked: a tag toggled, a value changed, a
    multi_class image moved."""
    current = world.get(sides[0], key) or world.get("base", key)
    name = data.draw(S_LABEL, label="label")
    labels = dict(current)
    if world.task_type == "multi_class":
        labels = {name: None}
    elif world.task_type == "multi_label":
        if name in labels:
            del labels[name]
        else:
            labels[name] = None
    else:
        labels[name] = data.draw(S_VALUE, label="value")
    return labels


# random_edit's table: the kind of edit drawn -> the edit (_edit_image for the others).
_EDITS: dict[str, Callable[[st.DataObject, World, list[int], str, str], str]] = {
    "add": _edit_add,
    "same_bytes": _edit_same_bytes,
    "add_label": _edit_label,
    "remove_label": _edit_label,
    "rename": _edit_label,
}


def random_edits(data: st.DataObject, world: World, max_edits: int = 10) -> list[str]:
    counter = [0]
    n = data.draw(st.integers(1, max_edits), label="number of edits")
    return [random_edit(data, world, counter) for _ in range(n)]


# -- checks -------------------------------------------------------------------------------


def check_sync(start: World, policy: P.Policy, seeds: tuple[int, int]) -> World:
    """Sync `start` to a fixed point twice (two shuffles) and check every property."""
    first = start.plan(policy, force=True)
    for kind in sorted({op.kind for op in first.ops}):
        event(f"op {kind}")
    for c in first.conflicts:
        event(f"conflict {c.field} {policy}")
    world = start.copy()
    plans = world.sync(policy, rng=random.Random(seeds[0]), force=True)
    other = start.copy()
    other.sync(policy, rng=random.Random(seeds[1]), force=True)
    assert world.snapshot() == other.snapshot(), "the outcome depends on the op order"

    # The bound: one round does the work, the second plans nothing.
    assert len(plans) <= 2, [p.ops for p in plans]
    again = world.plan(policy, force=True)
    assert not again.ops
    assert world.plan(policy, force=True).ops == again.ops  # and it is stable

    conflicts = check_conflicts(start, policy, first, again)
    for key in start.image_keys() | world.image_keys():
        check_image(start, world, policy, key, conflicts)
    check_label_attachments(start, world)

    # Remote images are deleted only when this repository created them and no other
    # task uses them; local files only leave when the image leaves the task.
    for key in start.remote_exists - world.remote_exists:
        assert key in start.created_here and key not in start.remote_other_labels
    return world


def check_conflicts(
    start: World, policy: P.Policy, first: P.Plan, again: P.Plan
) -> dict[str, P.Conflict]:
    """The conflicts of the first plan record both sides as they were; with `manual`
    they stay, other policies resolve them. Returns them by image key."""
    conflicts = {c.key: c for c in first.conflicts}
    for c in first.conflicts:
        assert c.resolution == (None if policy == "manual" else policy)
        assert (c.base, c.local, c.remote) == (
            P.frozen(start.get("base", c.key)),
            P.frozen(start.get("local", c.key)),
            P.frozen(start.get("remote", c.key)),
        ), "the conflict must record both sides as they were"
    if policy == "manual":
        assert {c.key for c in again.conflicts} == set(conflicts)
    else:
        assert not again.conflicts, again.conflicts
    return conflicts


def check_image(
    start: World, world: World, policy: P.Policy, key: str, conflicts: dict[str, P.Conflict]
) -> None:
    """One image after the sync: a conflict left alone (manual) or resolved by the
    policy; otherwise converged, with every change merged (check_merge)."""
    b, loc, rem = (start.get(s, key) for s in ("base", "local", "remote"))
    if key in conflicts and policy == "manual":
        for s in ("base", "local", "remote"):
            assert world.get(s, key) == start.get(s, key), f"conflict {key} touched"
        return
    assert world.converged(key), (key, world.get("local", key), world.get("remote", key))
    final = world.get("local", key)
    if key in conflicts:
        assert final == (loc if policy == "local" else rem)
        return
    check_merge(key, b, loc, rem, final)


def check_merge(key: str, b: Labels, loc: Labels, rem: Labels, final: Labels) -> None:
    """An image without conflict: base `b`, `loc` and `rem` before, `final` after."""
    # One-sided changes survive, whole.
    if rem == b:
        assert final == loc, f"{key}: the local change {b} -> {loc} was lost: {final}"
    if loc == b:
        assert final == rem, f"{key}: the remote change {b} -> {rem} was lost: {final}"
    # An edit beats a delete: the deleting side gets the item back, whole.
    if b and not loc and rem and rem != b:
        assert final == rem, f"{key}: deleted locally, edited remotely, got {final}"
    if b and not rem and loc and loc != b:
        assert final == loc, f"{key}: deleted remotely, edited locally, got {final}"
    # Label by label: a change made on one side only survives.
    if loc and rem:
        check_label_merge(key, b, loc, rem, final)
    # Nothing disappears unless a side deleted it and the other left it alone.
    if not final and (b or loc or rem):
        assert (not loc or loc == b) and (not rem or rem == b), (
            f"{key} disappeared: base {b}, local {loc}, remote {rem}"
        )


def check_label_merge(key: str, b: Labels, loc: Labels, rem: Labels, final: Labels) -> None:
    """Label by label: a change made on one side only survives."""
    for name in set(b) | set(loc) | set(rem):
        vb, vl, vr = (m.get(name, _ABSENT) for m in (b, loc, rem))
        vf = final.get(name, _ABSENT)
        if vr == vb and vl != vb:
            assert vf == vl, f"{key}: local change of {name!r} lost ({vb}->{vl})"
        if vl == vb and vr != vb:
            assert vf == vr, f"{key}: remote change of {name!r} lost ({vb}->{vr})"


def check_label_attachments(start: World, world: World) -> None:
    """Label attachments: both sides agree, every label in use is attached, and a change
    made on one side only survives (unless an image still uses the label)."""
    assert world.local_labels == world.remote_labels
    in_use = {n for side in (world.local, world.remote) for m in side.values() for n in m}
    assert in_use <= world.local_labels
    for name in start.base_labels | start.local_labels | start.remote_labels:
        inb, inl, inr = (
            name in s for s in (start.base_labels, start.local_labels, start.remote_labels)
        )
        final_in = name in world.local_labels
        if name in in_use:
            assert final_in
        elif inr == inb and inl != inb:
            assert final_in == inl, f"label {name!r}: the local change was lost"
        elif inl == inb and inr != inb:
            assert final_in == inr, f"label {name!r}: the remote change was lost"


def check_guard(start: World, policy: P.Policy) -> None:
    """Without force, a plan stops exactly when it deletes too much on one side."""
    plan = start.plan(policy)
    forced = start.plan(policy, force=True)
    assert plan.ops == forced.ops and plan.conflicts == forced.conflicts
    limit = int(len(start.base) * 0.5)
    counts = {
        "remote": len(forced.by_kind(P.REMOVE_REMOTE)),
        "local": len(forced.by_kind(P.TRASH_LOCAL)),
    }
    too_many = [s for s, c in counts.items() if c > limit and c >= P.MIN_GUARDED_DELETES]
    if too_many:
        assert plan.stop is not None and plan.stop.reason == "mass_delete"
        assert plan.stop.side == too_many[0] and plan.stop.count == counts[too_many[0]]
    else:
        assert plan.stop is None
    assert forced.stop is None


# -- the properties -----------------------------------------------------------------------

seeds = st.tuples(st.integers(0, 2**32), st.integers(0, 2**32))


@settings(max_examples=examples(800), **SETTINGS)
@given(synced_worlds(), st.sampled_from(P.POLICIES), seeds, st.data())
def test_sync_converges_without_loss(
    world: World, policy: P.Policy, shuffle: tuple[int, int], data: st.DataObject
) -> None:
    random_edits(data, world)
    check_guard(world, policy)
    check_sync(world, policy, shuffle)


@settings(max_examples=examples(300), **SETTINGS)
@given(synced_worlds(), st.sampled_from(P.POLICIES), seeds, st.data())
def test_two_rounds_of_edits(
    world: World, policy: P.Policy, shuffle: tuple[int, int], data: st.DataObject
) -> None:
    """Edit, sync, edit again, sync: the second run starts from what the first recorded."""
    random_edits(data, world)
    world = check_sync(world, policy, shuffle)
    random_edits(data, world)
    check_sync(world, policy, shuffle)


@settings(max_examples=examples(300), **SETTINGS)
@given(synced_worlds(), st.sampled_from(P.POLICIES), seeds, st.data())
def test_blocked_local_images_are_neither_pushed_nor_lost(
    world: World, policy: P.Policy, shuffle: tuple[int, int], data: st.DataObject
) -> None:
    """Images whose local state is untrustworthy: nothing of theirs is pushed while they
    are blocked, and once unblocked, the changes on both sides still merge as usual."""
    random_edits(data, world)
    keys = sorted(world.image_keys())
    blocked = data.draw(st.sets(st.sampled_from(keys)) if keys else st.just(set()))
    start = world.copy()
    world.local_blocked = set(blocked)
    # One run while blocked (it may not converge: a folder a blocked image still uses
    # locally is planned for removal each time, and the executor leaves it).
    world.run(world.plan(policy, force=True), random.Random(shuffle[0]))
    world.record_label_base()
    for key in blocked:
        assert [op for op in world.applied if op.key == key] == [], key
    world.local_blocked = set()
    # Unblocked, it must end where syncing without the blocking would have.
    direct = start.copy()
    direct.sync(policy, force=True)
    world.sync(policy, force=True)
    for key in blocked:
        for s in ("base", "local", "remote"):
            assert world.get(s, key) == direct.get(s, key), (key, s)


@settings(max_examples=examples(200), **SETTINGS)
@given(synced_worlds(), st.sampled_from(P.POLICIES), seeds, st.data())
def test_a_run_that_fails_halfway_ends_where_a_clean_run_does(
    world: World, policy: P.Policy, shuffle: tuple[int, int], data: st.DataObject
) -> None:
    """Some ops fail (their image's SET_BASE is skipped); the next runs re-derive what is
    left from the state, and the end result is the clean run's."""
    random_edits(data, world)
    clean = world.copy()
    clean.sync(policy, force=True)
    plan = world.plan(policy, force=True)
    fail = data.draw(st.sets(st.sampled_from(plan.ops)) if plan.ops else st.just(set()))
    world.run(plan, random.Random(shuffle[0]), fail=fail)
    world.record_label_base()
    world.sync(policy, rng=random.Random(shuffle[1]), force=True)
    assert world.snapshot() == clean.snapshot()
