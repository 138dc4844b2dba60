"""What the executor (sync/execute.py) reports: `ImageResult`, one image's ops as its
worker carried them out (filled in by sync/remote_side.py and sync/disk_side.py, read
by sync/catalog_side.py), and `Outcome`, a task's counts, failures and whether the run
was stopped (sync/report.py sums them). Plain data."""

from __future__ import annotations

from dataclasses import dataclass, field

from localrepo.errors import LocalrepoError
from localrepo.sync.localfs import Written


@dataclass
class Outcome:
    uploaded: int = 0
    downloaded: int = 0
    relabelled_remote: int = 0
    relabelled_local: int = 0
    deleted_remote: int = 0
    unlinked_remote: int = 0
    trashed_local: int = 0
    labels_created: int = 0
    synced: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (what, reason)
    problems: list[str] = field(default_factory=list)
    fatal: LocalrepoError | None = None  # auth failure, server gone: stop the run
    # Uploads left for a run that lists the task (see Executor.defer_labelled_duplicates).
    deferred: list[str] = field(default_factory=list)
    stopped: bool = False  # the user asked the run to stop (sync/stopping.py)
    abandoned: int = 0  # images whose requests were still in flight when it stopped

    def merge(self, other: Outcome) -> None:
        for name in (
            "uploaded",
            "downloaded",
            "relabelled_remote",
            "relabelled_local",
            "deleted_remote",
            "unlinked_remote",
            "trashed_local",
            "labels_created",
            "synced",
            "abandoned",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.stopped = self.stopped or other.stopped
        self.failed += other.failed
        self.problems += other.problems
        self.deferred += other.deferred
        self.fatal = self.fatal or other.fatal


@dataclass
class ImageResult:
    key: str
    hash: str | None  # the content hash (known after a download of a remote:<id> image)
    remote_id: str | None
    created_here: bool = False
    size: int | None = None
    dims: tuple[int, int, str] | None = None
    target: dict[str, float | None] = field(default_factory=dict)
    remote_done: bool = False  # the remote now holds `target`
    local_changed: bool = False  # this run changed the disk for it
    deleted_remote: bool = False
    added_files: list[Written] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)
    # In words (`repo resolve` says them): (old path, new path) moves, trashed paths.
    moves: list[tuple[str, str]] = field(default_factory=list)
    trashed: list[str] = field(default_factory=list)
    error: str | None = None
    fatal: LocalrepoError | None = None
    counts: dict[str, int] = field(default_factory=dict)
    skipped: bool = False  # not started: the run was stopping
    link_later: dict[str, float | None] | None = None  # uploaded; labels go in bulk
    deferred: bool = False  # already on the remote with labels of the task: not linked
