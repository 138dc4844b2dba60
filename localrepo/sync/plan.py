"""The planner: (local, remote, synced, policy) -> ordered ops and conflicts.

A pure function over plain data (design section 1): no I/O, no clock, no randomness.
Everything the sync engine does is decided here; the executor only carries it out.

An image's state within one task is its label map `{label name: value}` (value is None
except in regression tasks). An image that is absent, deleted, or carries no label of
the task has the empty map: on the remote side a task consists of the images with at
least one of its labels. Images are keyed by content hash, or by `remote:<id>` for a
remote image whose bytes this repository has not seen yet.

Rules (design section 3):
- a side that did not change since the synced base takes the other side's state;
- equal changes on both sides are no conflict;
- an edit beats a delete: the deleting side gets the item back, whole;
- multi_label tag sets merge (base + adds - removes, both sides);
- a multi_class label changed differently on both sides, or a regression value set
  differently on both sides, is a conflict: `manual` records it and leaves the image
  alone; `local` / `remote` settle it, and the losing state is recorded all the same;
- a multi_class image with several categories on either side (copies in two label
  folders, two categories on the server) is a conflict too, settled the same way;
- a plan that deletes more than `max_delete` images on either side, or that meets an
  empty remote listing where the base is not empty, is stopped before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from localrepo.vocabulary import (
    MULTI_CLASS,
    POLICIES,
    POLICY_LOCAL,
    POLICY_MANUAL,
    POLICY_REMOTE,
    REGRESSION,
    Policy,
)

Labels = Mapping[str, float | None]
ImageKey = str
REMOTE_KEY_PREFIX = "remote:"
MIN_GUARDED_DELETES = 3  # plans deleting fewer images than this are never stopped

_ABSENT = object()


def frozen(labels: Labels) -> tuple[tuple[str, float | None], ...]:
    """A hashable, order-independent form of a label map."""
    return tuple(sorted(labels.items()))


@dataclass(frozen=True)
class TaskState:
    """Everything the planner knows about one task, read from the catalog."""

    task_type: str
    base: Mapping[ImageKey, Labels]
    local: Mapping[ImageKey, Labels]
    remote: Mapping[ImageKey, Labels]
    # Images with a valid file under the task root (labelled or not).
    local_files: frozenset[ImageKey] = frozenset()
    # Images known to exist remotely (with labels of this task or not).
    remote_exists: frozenset[ImageKey] = frozenset()
    # Remote images that also carry labels of other tasks (never deleted by us).
    remote_other_labels: frozenset[ImageKey] = frozenset()
    # Images this repository uploaded (only those may be deleted remotely).
    created_here: frozenset[ImageKey] = frozenset()
    # Images whose local state is not trustworthy right now (a copy turned invalid, an
    # ambiguous layout): the local side is taken as unchanged for them.
    local_blocked: frozenset[ImageKey] = frozenset()
    # Task label attachments (label names), in the three states.
    base_labels: frozenset[str] = frozenset()
    local_labels: frozenset[str] = frozenset()
    remote_labels: frozenset[str] = frozenset()
    # The remote listing came back empty (as opposed to: the task has no images).
    remote_listing_empty: bool = False


# -- ops ----------------------------------------------------------------------------------
# Remote ops first, then local ops, then base-only updates (the executor keeps that order
# between kinds, and is free to run ops of one kind concurrently).

ENSURE_LABEL = "ensure_label"  # create or adopt the label, attach it to the task
DETACH_LABEL = "detach_label"
UPLOAD = "upload"  # upload the local bytes, then link `target`
SET_REMOTE = "set_remote"  # add / remove / update-value on the remote image
REMOVE_REMOTE = "remove_remote"  # unlink the task's labels (and maybe delete the image)
MAKE_FOLDER = "make_folder"
REMOVE_FOLDER = "remove_folder"  # only if empty
DOWNLOAD = "download"  # fetch the bytes into the label folders of `target`
SET_LOCAL = "set_local"  # move / link / unlink files and sidecar values to match `target`
TRASH_LOCAL = "trash_local"  # every file of the image goes to .localrepo/trash
SET_BASE = "set_base"  # both sides already agree: record it as synced

# An image's ops on each side (what `repo push` / `repo pull` keep: sync/narrow.py).
REMOTE_IMAGE_OPS = frozenset({UPLOAD, SET_REMOTE, REMOVE_REMOTE})
LOCAL_OPS = frozenset({DOWNLOAD, SET_LOCAL, TRASH_LOCAL})

OP_ORDER = (
    ENSURE_LABEL,
    UPLOAD,
    SET_REMOTE,
    REMOVE_REMOTE,
    DETACH_LABEL,
    MAKE_FOLDER,
    DOWNLOAD,
    SET_LOCAL,
    TRASH_LOCAL,
    REMOVE_FOLDER,
    SET_BASE,
)


@dataclass(frozen=True)
class Op:
    kind: str
    key: ImageKey | None = None  # image ops
    label: str | None = None  # label ops
    before: tuple[tuple[str, float | None], ...] = ()  # this side's state before the op
    target: tuple[tuple[str, float | None], ...] = ()  # the merged state to reach
    delete_image: bool = False  # REMOVE_REMOTE: also delete the remote image

    @property
    def target_map(self) -> dict[str, float | None]:
        return dict(self.target)

    @property
    def before_map(self) -> dict[str, float | None]:
        return dict(self.before)


@dataclass(frozen=True)
class Conflict:
    key: ImageKey
    field: str  # "label" (multi_class) | "value" (regression)
    base: tuple[tuple[str, float | None], ...]
    local: tuple[tuple[str, float | None], ...]
    remote: tuple[tuple[str, float | None], ...]
    resolution: Policy | None = None  # None: left for `repo resolve`


@dataclass(frozen=True)
class SafetyStop:
    reason: str  # "mass_delete" | "empty_listing"
    side: str  # "remote" | "local"
    count: int
    limit: int
    message: str
    keys: tuple[ImageKey, ...] = ()  # the images it would delete


@dataclass
class Plan:
    ops: list[Op] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    stop: SafetyStop | None = None

    def by_kind(self, kind: str) -> list[Op]:
        return [op for op in self.ops if op.kind == kind]

    @property
    def is_empty(self) -> bool:
        return not self.ops and not self.conflicts


# -- merging ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Merge:
    result: dict[str, float | None] | None  # None: an unresolved conflict
    conflict: Conflict | None = None


def _merge_keys(
    base: Labels, local: Labels, remote: Labels
) -> tuple[dict[str, float | None], list[str]]:
    """Per-label three-way merge; returns the merged map and the labels in conflict."""
    merged: dict[str, float | None] = {}
    clashes: list[str] = []
    for name in sorted(set(base) | set(local) | set(remote)):
        b = base.get(name, _ABSENT)
        loc = local.get(name, _ABSENT)
        rem = remote.get(name, _ABSENT)
        if loc == rem:
            value = loc
        elif loc == b:
            value = rem
        elif rem == b:
            value = loc
        elif loc is _ABSENT:  # removed here, changed there: the edit wins
            value = rem
        elif rem is _ABSENT:
            value = loc
        else:  # set to two different values
            clashes.append(name)
            value = loc
        if value is not _ABSENT:
            merged[name] = value  # type: ignore[assignment]
    return merged, clashes


def merge_image(
    task_type: str, key: ImageKey, base: Labels, local: Labels, remote: Labels, policy: Policy
) -> Merge:
    """The state an image should have on both sides, or a conflict."""
    merge = _merge_image(task_type, key, base, local, remote, policy)
    if task_type != MULTI_CLASS or merge.result is None or len(merge.result) < 2:
        return merge
    return _one_category(key, base, local, remote, policy, merge)


def _one_category(
    key: ImageKey, base: Labels, local: Labels, remote: Labels, policy: Policy, merge: Merge
) -> Merge:
    """A multi_class image whose merged state has several categories: a copy in two label
    folders, or a remote image given a second category (two clones uploaded the same
    bytes under different labels at once). Always a conflict, never a dead end: `manual`
    leaves it to `repo resolve`; `local` / `remote` keep that side's category, and when
    that side has several, the first by name, the same on every clone; a side that has
    none (deleted there) takes the other's (an edit beats a delete)."""
    conflict = merge.conflict or Conflict(
        key, "label", frozen(base), frozen(local), frozen(remote), None
    )
    if policy == POLICY_MANUAL:
        return Merge(None, replace(conflict, resolution=None))
    conflict = replace(conflict, resolution=policy)
    prefer, other = (local, remote) if policy == POLICY_LOCAL else (remote, local)
    for side in (prefer, other, merge.result or {}):
        if side:
            name = min(side)
            return Merge({name: side[name]}, conflict)
    return Merge(None, conflict)  # unreachable: the merged state has labels


def _merge_image(
    task_type: str, key: ImageKey, base: Labels, local: Labels, remote: Labels, policy: Policy
) -> Merge:
    if local == remote:
        return Merge(dict(local))
    if local == base:
        return Merge(dict(remote))
    if remote == base:
        return Merge(dict(local))
    # Both sides changed, differently.
    if base and not local:  # deleted (or unlabelled) here, edited there: the edit wins
        return Merge(dict(remote))
    if base and not remote:
        return Merge(dict(local))
    merged, clashes = _merge_keys(base, local, remote)
    field_name = None
    if task_type == MULTI_CLASS and len(merged) > 1:
        field_name = "label"
    elif clashes:
        field_name = "value" if task_type == REGRESSION else "label"
    elif not merged:  # each side removed what the other kept: nobody deleted the image
        field_name = "label"
    if field_name is None:
        return Merge(merged)
    conflict = Conflict(
        key,
        field_name,
        frozen(base),
        frozen(local),
        frozen(remote),
        None if policy == POLICY_MANUAL else policy,
    )
    if policy == POLICY_LOCAL:
        return Merge(dict(local), conflict)
    if policy == POLICY_REMOTE:
        return Merge(dict(remote), conflict)
    return Merge(None, conflict)


def merge_sets(base: frozenset[str], local: frozenset[str], remote: frozenset[str]) -> set[str]:
    """base + adds - removes, from both sides."""
    return (set(base) | (local - base) | (remote - base)) - (base - local) - (base - remote)


# -- the planner --------------------------------------------------------------------------


def plan_task(
    state: TaskState,
    policy: Policy = POLICY_MANUAL,
    *,
    max_delete: int | None = None,
    max_delete_fraction: float | None = 0.5,
    force: bool = False,
) -> Plan:
    """Ops and conflicts that bring local, remote and base together for one task."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}")
    plan = Plan()
    merged_images: dict[ImageKey, dict[str, float | None]] = {}
    keys = sorted(set(state.base) | set(state.local) | set(state.remote))
    for key in keys:
        base = state.base.get(key, {})
        remote = state.remote.get(key, {})
        local = base if key in state.local_blocked else state.local.get(key, {})
        merge = merge_image(state.task_type, key, base, local, remote, policy)
        if merge.conflict is not None:
            plan.conflicts.append(merge.conflict)
        if merge.result is None:
            continue  # left alone until resolved
        merged = merge.result
        merged_images[key] = merged
        plan.ops.extend(_image_ops(state, key, base, local, remote, merged))

    # Task label attachments: merged like tag sets; a label some image keeps is kept.
    in_use = {name for labels in merged_images.values() for name in labels}
    for key in keys:
        if key not in merged_images:  # an unresolved conflict keeps its labels in use
            for side in (state.local, state.remote):  # (either side may win; not the base)
                in_use |= set(side.get(key, {}))
    labels = merge_sets(state.base_labels, state.local_labels, state.remote_labels) | in_use
    for name in sorted(labels - state.remote_labels):
        plan.ops.append(Op(ENSURE_LABEL, label=name))
    for name in sorted(state.remote_labels - labels):
        plan.ops.append(Op(DETACH_LABEL, label=name))
    for name in sorted(labels - state.local_labels):
        plan.ops.append(Op(MAKE_FOLDER, label=name))
    for name in sorted(state.local_labels - labels):
        plan.ops.append(Op(REMOVE_FOLDER, label=name))

    plan.ops.sort(key=lambda op: (OP_ORDER.index(op.kind), op.key or "", op.label or ""))
    plan.stop = _safety_stop(state, plan, max_delete, max_delete_fraction, force)
    return plan


def _image_ops(
    state: TaskState,
    key: ImageKey,
    base: Labels,
    local: Labels,
    remote: Labels,
    merged: dict[str, float | None],
) -> list[Op]:
    ops: list[Op] = []
    target = frozen(merged)
    if merged != remote:
        if not merged:
            ops.append(
                Op(
                    REMOVE_REMOTE,
                    key,
                    before=frozen(remote),
                    delete_image=key in state.created_here and key not in state.remote_other_labels,
                )
            )
        elif key in state.remote_exists or remote:
            ops.append(Op(SET_REMOTE, key, before=frozen(remote), target=target))
        else:
            ops.append(Op(UPLOAD, key, before=(), target=target))
    if merged != local and key not in state.local_blocked:
        if not merged:
            ops.append(Op(TRASH_LOCAL, key, before=frozen(local)))
        elif key in state.local_files:
            ops.append(Op(SET_LOCAL, key, before=frozen(local), target=target))
        else:
            ops.append(Op(DOWNLOAD, key, before=(), target=target))
    if (merged != base or ops) and key not in state.local_blocked:
        # Recorded as synced once this image's other ops are done. Not for a blocked
        # image: its local side has not taken `merged` yet.
        ops.append(Op(SET_BASE, key, before=frozen(base), target=target))
    return ops


def _safety_stop(
    state: TaskState,
    plan: Plan,
    max_delete: int | None,
    max_delete_fraction: float | None,
    force: bool,
) -> SafetyStop | None:
    if force:
        return None
    if state.remote_listing_empty and state.base:
        return SafetyStop(
            "empty_listing",
            "remote",
            len(state.base),
            0,
            f"The remote listing of this task came back empty, but {len(state.base)} images "
            "were synced before. If the remote task was really emptied, run again with "
            "--force; otherwise check the task id and the workspace.",
        )
    total = len(state.base)
    limit = max_delete
    if limit is None and max_delete_fraction is not None:
        limit = int(total * max_delete_fraction)
    if limit is None:
        return None
    for side, kind in (("remote", REMOVE_REMOTE), ("local", TRASH_LOCAL)):
        keys = tuple(op.key for op in plan.by_kind(kind) if op.key is not None)
        count = len(keys)
        if count > limit and count >= MIN_GUARDED_DELETES:
            if side == "remote":
                what = f"delete {count} of {total} images on the server, deleted here"
                why = "If you deleted these files on purpose"
            else:
                what = f"move {count} of {total} images here to the trash, deleted on the server"
                why = "If they were deleted on the server on purpose"
            return SafetyStop(
                "mass_delete",
                side,
                count,
                limit,
                f"This sync would {what}: more than the limit of {limit} (--max-delete). "
                f"Nothing was changed. {why}, run again with --force; otherwise restore "
                "them (repo sync -n shows the plan).",
                keys,
            )
    return None
