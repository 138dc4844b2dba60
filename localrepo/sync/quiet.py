"""The quiet shortcut: whether a task is in sync without listing, loading or planning
it (docs/sync.md, "The quiet shortcut").

A pure decision over plain data, no I/O. The shell (sync/engine.py) asks three things:

- `ran_clean`: did this run of the task end fully clean? Only then is a mark recorded:
  a plan with no operation and no conflict before narrowing to push or pull, no safety
  stop, nothing held, refused, waiting or left for the other direction, no problem, no
  twin labels, no failure, nothing deferred, not stopped, not a dry run, the full
  listing view, a whole scan (no watcher's scope or held files) that left nothing to
  retry.
- `may_ask_feed`: may this run try the shortcut? The task's mark must name the copy of
  the listing as it stands (same source: remote URL, workspace, remote task, label ids;
  same cursor), the catalog's write epoch must not have moved since (nothing local that
  can change a plan was written: the scan found nothing, no command queued or resolved
  anything), and the remote labels (names, types) and the run's options must be the
  mark's. The run itself must be one that could record a mark.
- `quiet`: the feed's answer from the mark's cursor has no changed and no removed image.

Anything else: the full path, as without the shortcut.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Mark:
    """Where the task's last fully clean sync ended."""

    source: str  # the copy's source key (sync/changefeed.py `source_key`)
    cursor: str  # the copy's feed cursor
    epoch: int  # the catalog's write epoch (catalog/db.py)
    remote_labels: str  # `labels_key` of the task's remote labels
    options: str  # `options_key` of the run


@dataclass(frozen=True)
class Now:
    """The same facts, as this run finds them (before asking the feed)."""

    source: str
    stored: tuple[str, str] | None  # (source, cursor) of the copy in the catalog
    epoch: int
    remote_labels: str
    options: str
    eligible: bool  # `run_eligible` of this run


@dataclass(frozen=True)
class RunShape:
    """What kind of run this is."""

    dry_run: bool
    view: str  # "listing" | "catalog"
    whole_scan: bool  # no scope, no held files
    retry_later: bool  # the scan left files to read again
    stop_requested: bool
    enabled: bool  # the shortcut is not switched off (tests compare with it off)


@dataclass(frozen=True)
class RunResult:
    """What the task's run ended with (sync/report.py's TaskReport, flattened)."""

    full_plan_empty: bool  # no op and no conflict before narrowing to push/pull
    stop: bool
    held: bool
    problems: bool
    twins_left: bool
    left_for_other_side: bool
    waiting: bool
    failed: bool
    deferred: bool
    stopped: bool
    fatal: bool
    listed: bool  # the remote was read by listing or feed (not the catalog view)
    has_remote: bool


def run_eligible(shape: RunShape) -> bool:
    """Whether a run of this shape may record or use a mark."""
    return (
        shape.enabled
        and not shape.dry_run
        and shape.view == "listing"
        and shape.whole_scan
        and not shape.retry_later
        and not shape.stop_requested
    )


def ran_clean(shape: RunShape, result: RunResult) -> bool:
    """Whether the task's run may record a quiet mark."""
    return (
        run_eligible(shape)
        and result.listed
        and result.has_remote
        and result.full_plan_empty
        and not (
            result.stop
            or result.held
            or result.problems
            or result.twins_left
            or result.left_for_other_side
            or result.waiting
            or result.failed
            or result.deferred
            or result.stopped
            or result.fatal
        )
    )


def may_ask_feed(mark: Mark | None, now: Now) -> str | None:
    """None: ask the feed from the mark's cursor; else why the full path is taken."""
    if not now.eligible:
        return "not a run that uses the shortcut"
    if mark is None:
        return "no quiet mark"
    if now.stored is None or now.stored != (mark.source, mark.cursor):
        return "the copy of the listing moved"
    if now.source != mark.source:
        return "another remote, task or set of labels"
    if now.epoch != mark.epoch:
        return "the catalog changed"
    if now.remote_labels != mark.remote_labels:
        return "the task's remote labels changed"
    if now.options != mark.options:
        return "other options"
    return None


def quiet(changed: int, removed: int) -> bool:
    """The feed's answer from the mark's cursor leaves the task as it was."""
    return changed == 0 and removed == 0


def labels_key(labels: Iterable[tuple[str, str, str]]) -> str:
    """The task's remote labels (id, name, type) as a mark keeps them."""
    return json.dumps(sorted(labels))


def options_key(mode: str, policy: str, max_delete: str, force: bool, share_labels: bool) -> str:
    """The options of a run as a mark keeps them (another value: the full path)."""
    return json.dumps([mode, policy, max_delete, force, share_labels])
