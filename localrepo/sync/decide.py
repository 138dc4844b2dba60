"""`repo resolve --take local|remote`: what a decision does at once, offline, and what
it leaves for the next sync (docs/sync.md, "Conflicts").

The decision is recorded in the catalog either way (catalog/conflicts.py `decide`);
the next sync carries it out (sync/narrow.py `with_resolutions`). Taking the remote
side changes this side only, so it is applied to the disk at once when the disk can
say it: the image's files are laid out in the folders (and the sidecar values) of the
remote's labels, through the executor's disk side (moves, links, the trash; nothing
is lost). Taking the local side changes the server: it waits for the next sync.

`local_target` is the pure core: a conflict and a side in, the labels the files take
now (None: nothing changes on disk now).
"""

from __future__ import annotations

from collections.abc import Mapping

from localrepo.vocabulary import MULTI_CLASS, POLICY_REMOTE

Labels = Mapping[str, float | None]


def local_target(task_type: str, side: str, remote: Labels) -> dict[str, float | None] | None:
    """The labels (and values) the image's files take now for a decision on `side`, or
    None when only a sync can carry it out: the local side (the server must change), a
    remote side with no label (deleted or unlabelled there: the planner decides between
    a delete and an edit). A multi_class image keeps one category: of several on the
    server, the first by name, the rule the planner follows (sync/plan.py
    `_one_category`)."""
    if side != POLICY_REMOTE or not remote:
        return None
    if task_type == MULTI_CLASS:
        name = min(remote)
        return {name: remote[name]}
    return dict(remote)
