"""The shell of the quiet shortcut (sync/quiet.py decides; docs/sync.md, "The quiet
shortcut"): read the task's mark and what it is compared with, ask the feed from the
mark's cursor, and after a run record a mark or forget it.

What the attempt read (the task's remote labels, the feed's answer) is handed to the
full path when the task is not quiet, so that a sync with something to do asks the
server nothing twice."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from localrepo.catalog import quiet_marks
from localrepo.layout import TaskBinding
from localrepo.remote.api import RemoteAPI
from localrepo.remote.changes import ImageChanges
from localrepo.scan.report import ScanReport
from localrepo.sync import quiet
from localrepo.sync.report import SyncOptions, TaskReport
from localrepo.sync.snapshot import list_remote_labels
from localrepo.sync.twins import label_twins
from localrepo.vocabulary import LABEL_TYPE

log = logging.getLogger("localrepo.sync")


@dataclass
class Attempt:
    """What a try at the shortcut found."""

    in_sync: bool = False
    attached: list[Any] | None = None  # the task's remote labels, as listed
    # (cursor asked from, label ids asked for, the answer): reused by the full path.
    changes: tuple[str, tuple[str, ...], ImageChanges] | None = None
    why: str = ""
    labels_key: str = ""
    options_key: str = field(default="")


def shape(options: SyncOptions, scan: ScanReport, view: str, stop: bool) -> quiet.RunShape:
    """The kind of run the engine is making."""
    return quiet.RunShape(
        dry_run=options.dry_run,
        view=view,
        whole_scan=options.scope is None and not options.hold,
        retry_later=bool(scan.retry_later),
        stop_requested=stop,
        enabled=options.quiet,
    )


def options_key(options: SyncOptions) -> str:
    return quiet.options_key(
        options.mode, options.policy, options.max_delete, options.force, options.share_labels
    )


def attempt(
    conn: sqlite3.Connection,
    client: RemoteAPI,
    binding: TaskBinding,
    remote_task_id: str,
    options: SyncOptions,
    *,
    eligible: bool,
    visible: Callable[[list[Any]], list[Any] | None],
    source: Callable[[Sequence[str]], str],
) -> Attempt:
    """Try the shortcut for one task. `visible(labels)`: the labels whose folders the
    scanner sees, None when one is hidden (a problem: never quiet); `source(label_ids)`:
    the feed source key of the copy."""
    out = Attempt(options_key=options_key(options))
    stored = quiet_marks.mark(conn, binding.task_id)
    if stored is None or not eligible:
        out.why = "no quiet mark" if eligible else "not a run that uses the shortcut"
        return out
    mark = quiet.Mark(*stored)
    out.attached = list_remote_labels(client, remote_task_id)
    own = [lab for lab in out.attached if lab.type == LABEL_TYPE[binding.type]]
    shown = visible(out.attached)
    if label_twins(own) or shown is None:
        out.why = "labels of one name, or a label folder hidden"
        return out
    label_ids = [lab.id for lab in shown]
    out.labels_key = quiet.labels_key((lab.id, lab.name, lab.type) for lab in out.attached)
    now = quiet.Now(
        source=source(label_ids),
        stored=quiet_marks.stored_feed(conn, binding.task_id),
        epoch=quiet_marks.epoch(conn),
        remote_labels=out.labels_key,
        options=out.options_key,
        eligible=eligible,
    )
    why = quiet.may_ask_feed(mark, now)
    if why is not None or not label_ids:
        out.why = why or "no labels"
        return out
    answer = client.image_changes(mark.cursor, label_ids)
    if answer is None:
        out.why = "the feed cannot tell"
        return out
    out.changes = (mark.cursor, tuple(label_ids), answer)
    if not quiet.quiet(len(answer.changed), len(answer.removed)):
        out.why = "the remote changed"
        return out
    if answer.cursor != mark.cursor:  # nothing for this task: the copy is as of now
        quiet_marks.record(
            conn,
            binding.task_id,
            remote_labels=out.labels_key,
            options=out.options_key,
            epoch=mark.epoch,
            cursor=answer.cursor,
        )
    out.in_sync = True
    return out


def result_of(rep: TaskReport, full_plan_empty: bool) -> quiet.RunResult:
    o = rep.outcome
    return quiet.RunResult(
        full_plan_empty=full_plan_empty,
        stop=rep.stop is not None,
        held=bool(rep.held),
        problems=bool(rep.problems),
        twins_left=bool(rep.twins_left),
        left_for_other_side=bool(rep.left_for_other_side),
        waiting=bool(rep.waiting),
        failed=bool(o.failed),
        deferred=bool(o.deferred),
        stopped=bool(o.stopped),
        fatal=o.fatal is not None,
        listed=rep.listed,
        has_remote=bool(rep.remote_id),
    )


def settle(
    conn: sqlite3.Connection,
    task_id: int,
    shape: quiet.RunShape,
    result: quiet.RunResult,
    labels: Sequence[tuple[str, str, str]],
    options: SyncOptions,
    epoch: int,
) -> None:
    """After a full run of the task: record a mark when it ended fully clean and nothing
    was written since `epoch` (read before the run read the task), else drop the one it
    had (a dry run writes nothing)."""
    if shape.dry_run:
        return
    if quiet.ran_clean(shape, result):
        quiet_marks.record(
            conn,
            task_id,
            remote_labels=quiet.labels_key(labels),
            options=options_key(options),
            epoch=epoch,
        )
    else:
        quiet_marks.forget(conn, task_id)
