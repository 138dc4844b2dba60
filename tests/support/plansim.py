"""A small in-memory world for testing the planner (localrepo.sync.plan).

`World` holds the three states of one task (base, local, remote label maps per image
key), the facts the planner reads besides them (which images have a local file, which
exist remotely, ...), and the task's label attachments. `state()` gives the planner its
`TaskState`; `apply(op)` carries out one op the way the executor would, and asserts the
preconditions the executor relies on (an op's `before` is what that side holds now, an
uploaded image has local bytes, a linked label is attached, a removed folder is empty, an
image with other tasks' labels is never deleted, ...): breaking one is a planner bug.

The `edit_*` functions are user edits on one side, for the property tests. They keep the
world's invariants: an image with labels on a side has a file there (local) or exists
there (remote), and every label an image carries is in that side's label set.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from localrepo.sync import plan as P

Labels = dict[str, float | None]

LOCAL_OPS = frozenset({P.MAKE_FOLDER, P.REMOVE_FOLDER, P.DOWNLOAD, P.SET_LOCAL, P.TRASH_LOCAL})


@dataclass
class World:
    task_type: str
    base: dict[str, Labels] = field(default_factory=dict)
    local: dict[str, Labels] = field(default_factory=dict)
    remote: dict[str, Labels] = field(default_factory=dict)
    local_files: set[str] = field(default_factory=set)
    remote_exists: set[str] = field(default_factory=set)
    created_here: set[str] = field(default_factory=set)
    remote_other_labels: set[str] = field(default_factory=set)
    base_labels: set[str] = field(default_factory=set)
    local_labels: set[str] = field(default_factory=set)
    remote_labels: set[str] = field(default_factory=set)
    local_blocked: set[str] = field(default_factory=set)
    remote_listing_empty: bool = False
    applied: list[P.Op] = field(default_factory=list)
    _after_failure: bool = False  # some op of the current run failed

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def synced(
        cls,
        task_type: str,
        images: dict[str, Labels],
        *,
        extra_labels: Iterable[str] = (),
        created_here: Iterable[str] | None = None,
        remote_other_labels: Iterable[str] = (),
    ) -> World:
        """A world where base = local = remote = `images` (every image on both sides)."""
        images = {k: dict(v) for k, v in images.items() if v}
        labels = {name for m in images.values() for name in m} | set(extra_labels)
        keys = set(images)
        return cls(
            task_type,
            base=copy.deepcopy(images),
            local=copy.deepcopy(images),
            remote=copy.deepcopy(images),
            local_files=set(keys),
            remote_exists=set(keys),
            created_here=set(keys if created_here is None else created_here),
            remote_other_labels=set(remote_other_labels),
            base_labels=set(labels),
            local_labels=set(labels),
            remote_labels=set(labels),
        )

    def copy(self) -> World:
        def maps(m: dict[str, Labels]) -> dict[str, Labels]:
            return {k: dict(v) for k, v in m.items()}

        return World(
            self.task_type,
            maps(self.base),
            maps(self.local),
            maps(self.remote),
            *(
                set(s)
                for s in (
                    self.local_files,
                    self.remote_exists,
                    self.created_here,
                    self.remote_other_labels,
                    self.base_labels,
                    self.local_labels,
                    self.remote_labels,
                    self.local_blocked,
                )
            ),
            remote_listing_empty=self.remote_listing_empty,
        )

    # -- reading --------------------------------------------------------------------------

    def state(self) -> P.TaskState:
        return P.TaskState(
            task_type=self.task_type,
            base={k: dict(v) for k, v in self.base.items()},
            local={k: dict(v) for k, v in self.local.items()},
            remote={k: dict(v) for k, v in self.remote.items()},
            local_files=frozenset(self.local_files),
            remote_exists=frozenset(self.remote_exists),
            remote_other_labels=frozenset(self.remote_other_labels),
            created_here=frozenset(self.created_here),
            local_blocked=frozenset(self.local_blocked),
            base_labels=frozenset(self.base_labels),
            local_labels=frozenset(self.local_labels),
            remote_labels=frozenset(self.remote_labels),
            remote_listing_empty=self.remote_listing_empty,
        )

    def plan(self, policy: P.Policy = "manual", **kwargs) -> P.Plan:
        return P.plan_task(self.state(), policy, **kwargs)

    def image_keys(self) -> set[str]:
        return set(self.base) | set(self.local) | set(self.remote)

    def side(self, name: str) -> dict[str, Labels]:
        return {"local": self.local, "remote": self.remote, "base": self.base}[name]

    def get(self, side: str, key: str) -> Labels:
        return dict(self.side(side).get(key, {}))

    def converged(self, key: str) -> bool:
        return self.get("local", key) == self.get("remote", key) == self.get("base", key)

    def snapshot(self) -> tuple:
        """Everything that matters about the world, comparable with ==."""

        def norm(m: dict[str, Labels]) -> dict[str, Labels]:
            return {k: dict(v) for k, v in m.items() if v}

        return (
            norm(self.base),
            norm(self.local),
            norm(self.remote),
            frozenset(self.local_files),
            frozenset(self.remote_exists),
            frozenset(self.base_labels),
            frozenset(self.local_labels),
            frozenset(self.remote_labels),
        )

    # -- the executor ---------------------------------------------------------------------

    def apply(self, op: P.Op) -> None:
        """Carry out one op as the executor would."""
        self.applied.append(op)
        apply_kind = _APPLY.get(op.kind)
        if apply_kind is None:  # pragma: no cover
            raise AssertionError(f"unknown op {op}")
        apply_kind(self, op)

    # Like the executor, a label op on the remote records the label's synced state too;
    # folder ops touch the local side only.

    def _apply_ensure_label(self, op: P.Op) -> None:
        self.remote_labels.add(op.label)
        self.base_labels.add(op.label)

    def _apply_detach_label(self, op: P.Op) -> None:
        users = sorted(k for k, m in self.remote.items() if op.label in m)
        if users and self._after_failure:
            return  # an image op failed: the executor must keep the label it still uses
        assert not users, f"detaching label {op.label!r} still used remotely by {users}"
        self.remote_labels.discard(op.label)
        self.base_labels.discard(op.label)

    def _apply_make_folder(self, op: P.Op) -> None:
        self.local_labels.add(op.label)

    def _apply_remove_folder(self, op: P.Op) -> None:
        users = sorted(k for k, m in self.local.items() if op.label in m)
        if users and (self._after_failure or set(users) <= self.local_blocked):
            return  # the executor removes empty folders only
        assert not users, f"removing folder {op.label!r} still used locally by {users}"
        self.local_labels.discard(op.label)

    def _apply_upload(self, op: P.Op) -> None:
        key, target = op.key, op.target_map
        assert key in self.local_files, f"upload of {key} without a local file"
        assert key not in self.remote_exists, f"upload of {key}, which exists remotely"
        assert not self.get("remote", key) and op.before == ()
        self._check_attached(target, self.remote_labels, op)
        self.remote[key] = target
        self.remote_exists.add(key)
        self.created_here.add(key)

    def _apply_set_remote(self, op: P.Op) -> None:
        key, target = op.key, op.target_map
        assert op.before == P.frozen(self.get("remote", key)), op
        assert target, f"set_remote with an empty target: {op}"
        self._check_attached(target, self.remote_labels, op)
        self.remote[key] = target
        self.remote_exists.add(key)

    def _apply_remove_remote(self, op: P.Op) -> None:
        key = op.key
        assert op.before == P.frozen(self.get("remote", key)), op
        assert op.before, f"remove_remote of an image without labels: {op}"
        if op.delete_image:
            assert key in self.created_here, f"deleting {key}, not created here"
            assert key not in self.remote_other_labels, f"deleting {key}, used elsewhere"
            self.remote_exists.discard(key)
        self.remote.pop(key, None)

    def _apply_download(self, op: P.Op) -> None:
        key, target = op.key, op.target_map
        assert key in self.remote_exists, f"download of {key}, which is not remote"
        assert key not in self.local_files and op.before == ()
        self._check_attached(target, self.local_labels, op)
        self.local[key] = target
        self.local_files.add(key)

    def _apply_set_local(self, op: P.Op) -> None:
        key, target = op.key, op.target_map
        assert key in self.local_files, f"set_local of {key} without a local file"
        assert op.before == P.frozen(self.get("local", key)), op
        assert target, f"set_local with an empty target: {op}"
        self._check_attached(target, self.local_labels, op)
        self.local[key] = target

    def _apply_trash_local(self, op: P.Op) -> None:
        key = op.key
        assert op.before == P.frozen(self.get("local", key)), op
        assert op.before, f"trash_local of an image without labels: {op}"
        self.local.pop(key, None)
        self.local_files.discard(key)

    def _apply_set_base(self, op: P.Op) -> None:
        key, target = op.key, op.target_map
        assert op.before == P.frozen(self.get("base", key)), op
        if target:
            self.base[key] = target
        else:
            self.base.pop(key, None)

    @staticmethod
    def _check_attached(target: Labels, attached: set[str], op: P.Op) -> None:
        missing = sorted(set(target) - attached)
        assert not missing, f"{op.kind} {op.key} links unattached labels {missing}"

    def run(
        self,
        plan: P.Plan,
        rng: random.Random | None = None,
        fail: Iterable[P.Op] = (),
    ) -> None:
        """Apply a plan kind by kind (OP_ORDER), shuffling the ops within each kind.

        The ops in `fail` fail, as the executor handles it: a failed image op skips the
        image's later ops (its SET_BASE too); a failed ENSURE_LABEL / MAKE_FOLDER fails
        the image ops that would link that label on that side.
        """
        assert plan.stop is None, plan.stop
        fail = set(fail)
        self._after_failure = False
        failed_keys: set[str] = set()
        missing = {"remote": set(), "local": set()}
        for kind in P.OP_ORDER:
            batch = plan.by_kind(kind)
            if rng is not None:
                rng.shuffle(batch)
            for op in batch:
                if op.key is not None:
                    side = "local" if op.kind in LOCAL_OPS else "remote"
                    if op.key in failed_keys or set(op.target_map) & missing[side]:
                        failed_keys.add(op.key)
                        self._after_failure = True
                        continue
                if op in fail:
                    self._after_failure = True
                    if op.key is not None:
                        failed_keys.add(op.key)
                    elif op.kind == P.ENSURE_LABEL:
                        missing["remote"].add(op.label)
                    elif op.kind == P.MAKE_FOLDER:
                        missing["local"].add(op.label)
                    continue
                self.apply(op)

    def record_label_base(self) -> None:
        """Record the agreed label set as the synced one, once both sides agree.

        The planner emits no op for the base of the label attachments (SET_BASE is per
        image), so the executor records it at the end of a run (_settle_task_labels); a
        stale base reverts later one-sided label changes (see
        tests/sync/test_plan_labels.py::test_the_label_base_must_be_settled_by_the_executor).
        """
        if self.local_labels == self.remote_labels:
            self.base_labels = set(self.local_labels)

    def sync(
        self,
        policy: P.Policy = "manual",
        rng: random.Random | None = None,
        max_rounds: int = 3,
        record_label_base: bool = True,
        **kwargs,
    ) -> list[P.Plan]:
        """Plan and apply until a plan has no op; returns the plans (the last one empty)."""
        plans = []
        for _ in range(max_rounds + 1):
            plan = self.plan(policy, **kwargs)
            plans.append(plan)
            if not plan.ops:
                if record_label_base:
                    self.record_label_base()
                return plans
            self.run(plan, rng)
            if record_label_base:
                self.record_label_base()
        raise AssertionError(f"no convergence in {max_rounds} rounds: {plans[-1].ops}")

    # -- user edits -----------------------------------------------------------------------

    def _labels_of(self, side: str) -> set[str]:
        return self.local_labels if side == "local" else self.remote_labels

    def edit_set(self, side: str, key: str, labels: Labels) -> None:
        """Give an image a new label map on one side (add, relabel, value change...).

        An empty map deletes it (locally: the file is gone; remotely: the task's labels
        are unlinked, the image itself stays).
        """
        labels = dict(labels)
        states = self.side(side)
        if labels:
            states[key] = labels
            self._labels_of(side).update(labels)
            (self.local_files if side == "local" else self.remote_exists).add(key)
        else:
            states.pop(key, None)
            if side == "local":
                self.local_files.discard(key)

    def edit_delete(self, side: str, key: str, *, unlabel_only: bool = False) -> None:
        """Delete an image on one side. Remotely `unlabel_only=False` deletes the image
        (gone from the listing); locally `unlabel_only=True` moves it to _unlabeled."""
        self.side(side).pop(key, None)
        if side == "local" and not unlabel_only:
            self.local_files.discard(key)
        if side == "remote" and not unlabel_only:
            self.remote_exists.discard(key)

    def edit_bytes(self, side: str, key: str, new_key: str) -> None:
        """New bytes for an image: locally the file at its path now holds other content
        (a new image with the same labels, the old one gone from disk); remotely the image
        is deleted and the new bytes uploaded with its labels."""
        labels = self.get(side, key)
        self.edit_delete(side, key)
        if labels:
            self.edit_set(side, new_key, labels)

    def edit_rename_label(self, side: str, old: str, new: str) -> None:
        """Rename a label on one side: every image of `old` now carries `new`."""
        states = self.side(side)
        for labels in states.values():
            if old in labels:
                value = labels.pop(old)
                if new not in labels:
                    labels[new] = value
        attached = self._labels_of(side)
        attached.discard(old)
        attached.add(new)

    def edit_add_label(self, side: str, name: str) -> None:
        """An empty label folder / a label attached to the task with no image."""
        self._labels_of(side).add(name)

    def edit_remove_label(self, side: str, name: str) -> None:
        """Remove a label on one side (folder deleted with its files / label detached)."""
        states = self.side(side)
        for key in list(states):
            if name in states[key]:
                del states[key][name]
                if not states[key]:
                    self.edit_delete(side, key, unlabel_only=side == "remote")
        self._labels_of(side).discard(name)


# World.apply's table: the op kind -> how the executor carries it out.
_APPLY: dict[str, Callable[[World, P.Op], None]] = {
    P.ENSURE_LABEL: World._apply_ensure_label,
    P.DETACH_LABEL: World._apply_detach_label,
    P.MAKE_FOLDER: World._apply_make_folder,
    P.REMOVE_FOLDER: World._apply_remove_folder,
    P.UPLOAD: World._apply_upload,
    P.SET_REMOTE: World._apply_set_remote,
    P.REMOVE_REMOTE: World._apply_remove_remote,
    P.DOWNLOAD: World._apply_download,
    P.SET_LOCAL: World._apply_set_local,
    P.TRASH_LOCAL: World._apply_trash_local,
    P.SET_BASE: World._apply_set_base,
}
