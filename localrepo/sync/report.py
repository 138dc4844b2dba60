"""What a sync run is asked (`SyncOptions`) and what it reports (`TaskReport` per task,
`SyncReport` for the run): plain data, filled in by the engine (sync/engine.py) and read
by the commands and the watcher. `SyncReport.in_sync` is the rule the exit codes
follow: disk, catalog and server agree (design section 3, "Exit codes")."""

from __future__ import annotations

from dataclasses import dataclass, field

from localrepo.scan.report import ScanReport
from localrepo.sync import plan as P
from localrepo.sync.holds import Hold
from localrepo.sync.results import Outcome
from localrepo.vocabulary import POLICY_MANUAL


@dataclass
class SyncOptions:
    mode: str = "sync"  # sync | push | pull
    dry_run: bool = False
    policy: P.Policy = POLICY_MANUAL
    max_delete: str = "50%"
    force: bool = False
    jobs: int = 8
    noresize: bool = True
    # The watcher: files still being written, left as the catalog knows them (see Scanner).
    hold: frozenset[str] = frozenset()
    # The watcher: the folders its events touched (a scoped scan); None scans everything.
    scope: frozenset[str] | None = None
    # "listing": list every image of each task (what `repo sync` does). "catalog": the
    # watcher's push of local changes, planned without listing (see `_catalog_snapshot`).
    remote_view: str = "listing"
    # Adopt a label of another task by name (`[sync] share_labels`); never by default.
    share_labels: bool = False
    # Bind a task never synced to a server task of its name that holds labels or images
    # (sync/binding.py); without it such a run stops.
    join: bool = False
    # The quiet shortcut (sync/quiet.py); off only to compare with it (tests).
    quiet: bool = True


@dataclass
class TaskReport:
    task: str
    remote_id: str | None
    plan: P.Plan | None = None
    outcome: Outcome = field(default_factory=Outcome)
    conflicts: list[P.Conflict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    stop: P.SafetyStop | None = None
    created_remote_task: bool = False
    # Images held back (damaged files, refused folder names, no value): not synced.
    held: list[Hold] = field(default_factory=list)
    # What a safety stop would have deleted, as paths (or remote image keys).
    stop_paths: list[str] = field(default_factory=list)
    # Labels still attached beside another of their name (sync/twins.py settles them).
    twins_left: int = 0
    # `push` / `pull`: images with work left for the other direction (a full sync's).
    left_for_other_side: int = 0
    listed: bool = True  # the remote task was listed (not the watcher's catalog view)
    from_feed: bool = False  # ... and its images came from the change feed (changefeed.py)
    quiet: bool = False  # ... which said nothing changed since a clean sync (sync/quiet.py)
    # {image key: its files} for the images the plan changes (engine `_plan_paths`).
    paths: dict[str, list[str]] = field(default_factory=dict)
    # {image key: side} of conflicts `repo resolve` decided that this direction leaves
    # to a run of the other one (a pull holding a local decision).
    waiting: dict[str, str] = field(default_factory=dict)


@dataclass
class SyncReport:
    scan: ScanReport | None = None
    tasks: list[TaskReport] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False  # the user stopped the run (sync/stopping.py)

    @property
    def outcome(self) -> Outcome:
        total = Outcome()
        for t in self.tasks:
            total.merge(t.outcome)
        return total

    @property
    def conflicts(self) -> int:
        return sum(1 for t in self.tasks for c in t.conflicts if c.resolution is None)

    @property
    def in_sync(self) -> bool:
        """Local, catalog and remote agree: no open conflict, nothing held back or left
        alone (a problem: a label with no folder, say), nothing failed or left for the
        other direction (the exit code says so; errors.py)."""
        return not (
            self.conflicts
            or self.stopped
            or self.outcome.failed
            or any(
                t.held
                or t.problems
                or t.left_for_other_side
                or t.stop
                or t.outcome.deferred
                or t.twins_left
                for t in self.tasks
            )
        )
