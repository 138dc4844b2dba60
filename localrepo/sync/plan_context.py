"""The engine's catalog work around one task's plan (sync/engine.py calls these in order).

`held_back` runs the pure `holds.hold_back` over what the catalog knows of the task's
files; `adopt_remote_ids` records the id under which the listing shows a known image;
`decided` reads the conflicts `repo resolve` settled (`waiting`: those this run's
direction cannot carry out); `plan_paths` finds, for the user's
words (cli/describe.py), the file each changed image is, was or will be. The catalog's
SQL stays in localrepo/catalog/; this module only chooses what to ask it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from localrepo.catalog import conflicts as catalog_conflicts
from localrepo.catalog import files as catalog_files
from localrepo.catalog import images as catalog_images
from localrepo.catalog import journal
from localrepo.catalog import problems as catalog_problems
from localrepo.catalog.db import transaction
from localrepo.labelnames import folder_for_label
from localrepo.layout import TaskBinding
from localrepo.sync import plan as P
from localrepo.sync.holds import Hold, TaskFiles, hold_back
from localrepo.sync.names import file_name
from localrepo.sync.snapshot import META_NAME, RemoteSnapshot
from localrepo.vocabulary import POLICY_LOCAL, POLICY_REMOTE


def held_back(
    conn: sqlite3.Connection,
    binding: TaskBinding,
    state: P.TaskState,
    files: dict[str, list[str]],
) -> tuple[P.TaskState, list[Hold], list[str]]:
    """`hold_back` (sync/holds.py) over what the catalog knows of the task's files, and
    the scanner's word on each refused folder (what to rename it to). Read from the
    catalog, so a hold lasts across runs until its reason is gone."""
    refused = catalog_problems.refused_folders(conn, binding.task_id)
    task_files = TaskFiles(
        binding.type,
        binding.root,
        files,
        catalog_files.damaged_files(conn, binding.root),
        tuple(refused),
    )
    state, held = hold_back(state, task_files)
    return state, held, list(refused.values())


def plan_paths(
    conn: sqlite3.Connection,
    binding: TaskBinding,
    plan: P.Plan,
    files: Mapping[str, list[str]],
    snapshot: RemoteSnapshot,
) -> dict[str, list[str]]:
    """{image key: files} of the images the plan changes or finds in conflict, for the
    user (cli/describe.py):
    where each is now, where it was last seen, or where a download will write it."""
    keys = {op.key for op in plan.ops if op.key is not None and op.kind != P.SET_BASE}
    keys |= {c.key for c in plan.conflicts}
    out = {k: list(files[k]) for k in keys if files.get(k)}
    gone = sorted(k for k in keys if k not in out and not k.startswith(P.REMOTE_KEY_PREFIX))
    out.update((k, [path]) for k, path in journal.last_paths(conn, gone).items())
    for op in plan.by_kind(P.DOWNLOAD):
        view = snapshot.images.get(op.key or "")
        folder = folder_for_label(min(op.target_map)) if op.target else None
        if view is not None and folder is not None:
            name = file_name(view.meta_data.get(META_NAME), view.id, None)
            out[view.key] = [
                f"{binding.root}/{folder}/{name}" if binding.root else f"{folder}/{name}"
            ]
    return out


def adopt_remote_ids(conn: sqlite3.Connection, listed: Mapping[str, Any]) -> None:
    """Record the remote id under which the listing shows a known image.

    An image deleted on the server and uploaded again (by another clone, or by hand) is
    listed, by its content hash, under a new id; the plan has nothing to do for it, and
    the catalog kept the dead id (found by the simulation, seed 899). The new remote image
    is recorded as not created here: only its uploader may delete it.
    """
    known = catalog_images.remote_ids(conn)
    moved = [
        (view.id, key) for key, view in listed.items() if key in known and known[key] != view.id
    ]
    if moved:
        with transaction(conn):
            catalog_images.adopt_remote_ids(conn, moved)


def decided(
    conn: sqlite3.Connection, binding: TaskBinding, mode: str
) -> dict[P.Policy, frozenset[str]]:
    """The images whose conflicts `repo resolve` decided, by the side they take; a side
    this run's direction cannot carry out (`pull` sends nothing, `push` writes nothing
    here) waits, decided, for a run that can."""
    skip = {"pull": POLICY_LOCAL, "push": POLICY_REMOTE}.get(mode)
    by_side: dict[P.Policy, set[str]] = {}
    for key, side in catalog_conflicts.decisions(conn, binding.task_id).items():
        if side in (POLICY_LOCAL, POLICY_REMOTE) and side != skip:
            by_side.setdefault(side, set()).add(key)  # type: ignore[arg-type]
    return {side: frozenset(keys) for side, keys in by_side.items()}


def waiting(conn: sqlite3.Connection, binding: TaskBinding, mode: str) -> dict[str, str]:
    """{image key: side} of the decisions `decided` leaves for a run of the other
    direction (a `pull` holding a local decision, a `push` a remote one): the report
    says they are decided, not that they need `repo resolve`."""
    skip = {"pull": POLICY_LOCAL, "push": POLICY_REMOTE}.get(mode)
    found = catalog_conflicts.decisions(conn, binding.task_id).items()
    return {key: side for key, side in found if side == skip}
