"""A plan narrowed to what this run was asked to do: one direction's half (`repo push`,
`repo pull`), or the conflicts the user chose a side for (`repo resolve`).

Pure functions over the planner's data (sync/plan.py): a plan (and, to re-plan, the
task's state) in, a plan out. The engine (sync/engine.py) plans every image with the
configured policy, then calls `with_resolutions` for the images `repo resolve` names
and `filter_plan` for the run's mode, and reports `left_for_other_side`.
"""

from __future__ import annotations

from dataclasses import replace

from localrepo.sync import plan as P
from localrepo.sync.plan import LOCAL_OPS, REMOTE_IMAGE_OPS

PUSH_LABEL_OPS = frozenset({P.ENSURE_LABEL, P.DETACH_LABEL})
PULL_LABEL_OPS = frozenset({P.MAKE_FOLDER, P.REMOVE_FOLDER})


def filter_plan(plan: P.Plan, mode: str) -> P.Plan:
    """`push` does only what changes the remote, `pull` only what changes the disk.

    An image that needs work on the other side too is left for a full sync: recording
    it as synced after one half would make the next run undo the other half.
    """
    if mode == "sync":
        return plan
    keep_image_ops = REMOTE_IMAGE_OPS if mode == "push" else LOCAL_OPS
    drop_image_ops = LOCAL_OPS if mode == "push" else REMOTE_IMAGE_OPS
    keep_labels = PUSH_LABEL_OPS if mode == "push" else PULL_LABEL_OPS
    skip = {op.key for op in plan.ops if op.key is not None and op.kind in drop_image_ops}
    ops = [
        op
        for op in plan.ops
        if (op.key is None and op.kind in keep_labels)
        or (op.key is not None and op.key not in skip and op.kind in keep_image_ops | {P.SET_BASE})
    ]
    return P.Plan(ops=ops, conflicts=plan.conflicts, stop=plan.stop)


def left_for_other_side(full: P.Plan, narrowed: P.Plan) -> int:
    """How many images with work in `full` (more than recording them as synced) have
    none in `narrowed`, `filter_plan`'s answer: left for a full sync."""
    return len(
        {op.key for op in full.ops if op.key is not None and op.kind != P.SET_BASE}
        - {op.key for op in narrowed.ops if op.key is not None}
    )


def with_resolutions(
    plan: P.Plan, state: P.TaskState, keys: frozenset[str], take: P.Policy
) -> P.Plan:
    """Re-plan the images of `keys` with the policy the user chose for them."""
    keys = keys & {c.key for c in plan.conflicts}
    if not keys:
        return plan
    sub = replace(
        state,
        base={k: v for k, v in state.base.items() if k in keys},
        local={k: v for k, v in state.local.items() if k in keys},
        remote={k: v for k, v in state.remote.items() if k in keys},
    )
    settled = P.plan_task(sub, take, force=True)
    ops = [op for op in plan.ops if op.key not in keys]
    ops += [op for op in settled.ops if op.key in keys]
    ops.sort(key=lambda op: (P.OP_ORDER.index(op.kind), op.key or "", op.label or ""))
    conflicts = [c for c in plan.conflicts if c.key not in keys] + settled.conflicts
    return P.Plan(ops=ops, conflicts=conflicts, stop=plan.stop)
