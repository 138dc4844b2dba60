"""The watcher's decisions, as pure functions over plain data (the clock is passed in).

Filesystem events are hints, not facts. They are coalesced per path; a path is *ready*
once no event touched it for `debounce` seconds and its stat (size, mtime) is the same
as when its last event arrived (a file still being copied keeps changing). A `moved`
event counts as a delete of its source and a create of its destination, so an editor's
atomic save (write `x.jpg.tmp`, rename to `x.jpg`) is one create of `x.jpg`. Temp and
partial names (the scanner's built-in ignore defaults: dot files such as the engine's
own `.<name>.localrepo-tmp`, `*.tmp`, `*.part`, ...) and the state folder are dropped.

A ready path whose disk state equals the catalog's record of it is an *echo*: the sync
engine records every file it writes (downloads, moves, trash) with its stat after the
write, so its own writes come back as echoes and never as local edits.

    Coalescer       observe(event, now, stat) / due(now) / settle(now, stats)
    is_relevant     which paths are worth an event at all
    split_echoes    ready paths -> (changed, echoes), against the catalog's stats
    touched_folders ready paths -> the folders to rescan
    backoff         capped exponential delay after the n-th failure in a row
    Schedule        when to sync next (local changes, the pull timer, the full scan, retries)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from localrepo.ignore import default_ignored
from localrepo.vocabulary import IGNORE_FILE, STATE_DIR

CREATED, MODIFIED, DELETED, MOVED = "created", "modified", "deleted", "moved"

# What the watcher compares to tell a settled file from one still being written, and an
# echo from an edit: (size, mtime_ns, inode); None when the path does not exist.
StatKey = tuple[int, int, int] | None


@dataclass(frozen=True)
class FsEvent:
    """One filesystem event, with repository-relative POSIX paths."""

    kind: str  # created | modified | deleted | moved
    path: str
    dest: str | None = None  # for moved
    is_dir: bool = False


def is_relevant(path: str, is_dir: bool = False) -> bool:
    """False for the state folder and for names the scanner ignores by default (temp,
    partial and dot files), except `.localrepoignore`, whose edits change what counts."""
    if not path or path == ".":
        return False
    parts = path.split("/")
    if parts[0] == STATE_DIR:
        return False
    for folder in parts[:-1]:
        if default_ignored(folder, True):
            return False
    name = parts[-1]
    if name == IGNORE_FILE and not is_dir:
        return True
    return not default_ignored(name, is_dir)


@dataclass
class Pending:
    """What is known of one path since its first event."""

    first: float  # when its first event arrived
    last: float  # when its last event arrived (or its stat last changed)
    stat: StatKey  # its stat when last looked at
    is_dir: bool = False


@dataclass
class Coalescer:
    debounce: float
    pending: dict[str, Pending] = field(default_factory=dict)

    def observe(self, event: FsEvent, now: float, stats: Mapping[str, StatKey]) -> None:
        """Record an event; `stats` holds the current stat of the event's path(s)."""
        if event.kind == MOVED and event.dest is not None:
            # A rename is the source gone and the destination created (an atomic save).
            self._touch(event.path, now, None, event.is_dir)
            self._touch(event.dest, now, stats.get(event.dest), event.is_dir)
            return
        stat = None if event.kind == DELETED else stats.get(event.path)
        self._touch(event.path, now, stat, event.is_dir)

    def _touch(self, path: str, now: float, stat: StatKey, is_dir: bool) -> None:
        if not is_relevant(path, is_dir):
            return
        p = self.pending.get(path)
        if p is None:
            self.pending[path] = Pending(now, now, stat, is_dir)
        else:
            p.last, p.stat, p.is_dir = now, stat, p.is_dir or is_dir

    def due(self, now: float) -> list[str]:
        """Paths quiet for `debounce` seconds: the caller stats them for `settle`."""
        return sorted(p for p, s in self.pending.items() if now - s.last >= self.debounce)

    def settle(self, now: float, stats: Mapping[str, StatKey]) -> list[str]:
        """Of the due paths, those whose stat did not change since their last event are
        ready (and forgotten); the others wait another `debounce`."""
        ready = []
        for path in self.due(now):
            p = self.pending[path]
            current = stats.get(path)
            if p.is_dir or current == p.stat:
                ready.append(path)
                del self.pending[path]
            else:  # still being written: look again after another quiet spell
                p.stat, p.last = current, now
        return ready

    def next_due(self) -> float | None:
        """When the earliest pending path becomes due (None when nothing is pending)."""
        if not self.pending:
            return None
        return min(p.last for p in self.pending.values()) + self.debounce

    def unsettled(self) -> frozenset[str]:
        """Files with events that are not settled yet: a sync run leaves them alone."""
        return frozenset(p for p, s in self.pending.items() if not s.is_dir)

    def dirs(self) -> frozenset[str]:
        return frozenset(p for p, s in self.pending.items() if s.is_dir)


def split_echoes(
    ready: Iterable[str],
    disk: Mapping[str, StatKey],
    catalog: Mapping[str, StatKey],
    dirs: Iterable[str] = (),
) -> tuple[list[str], list[str]]:
    """(changed, echoes): a path whose disk state is what the catalog recorded (present
    with the same size, mtime and inode, or absent from both) is an echo. Folders are
    never echoes: what is under them is for the scan to find."""
    folders = set(dirs)
    changed, echoes = [], []
    for path in ready:
        if path not in folders and disk.get(path) == catalog.get(path):
            echoes.append(path)
        else:
            changed.append(path)
    return changed, echoes


def touched_folders(paths: Iterable[str], dirs: Iterable[str] = ()) -> list[str]:
    """The folders to rescan for these paths: a file's folder, and a folder itself (a
    scoped scan finds the files of a folder that is gone, and reads the label folders
    of every task root anyway); nested folders are covered by their ancestors ("" is
    the repository root)."""
    folders = set()
    dir_set = set(dirs)
    for path in paths:
        folders.add(path if path in dir_set else path.rpartition("/")[0])
    out: list[str] = []
    for folder in sorted(folders, key=lambda f: (f.count("/") if f else -1, f)):
        if not any(folder == o or not o or folder.startswith(o + "/") for o in out):
            out.append(folder)
    return sorted(out)


def backoff(failures: int, base: float = 2.0, cap: float = 300.0) -> float:
    """Seconds to wait after `failures` failed attempts in a row: base, 2 base, 4 base,
    ... never more than cap."""
    if failures <= 0:
        return 0.0
    return min(cap, base * 2.0 ** min(failures - 1, 60))


# Why a sync runs (what Schedule.decide answers).
LOCAL, PULL, FULL, RETRY = "local changes", "pull timer", "full scan", "retry"


@dataclass
class Schedule:
    """When to sync. `now` is a monotonic clock in seconds.

    - local changes are synced at once (a push run: it does not list the remote),
      unless the remote is in backoff: then they are only scanned and journalled (the
      caller's `scan_only`), and sent at the retry;
    - the pull timer syncs every `interval` seconds after the last run that listed the
      remote (every run but a push run), also while local changes keep coming;
    - a full reconciling scan runs at start and every `full_every` seconds;
    - after a failure, nothing talks to the remote before `retry_at`.
    """

    interval: float
    full_every: float
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    last_attempt: float | None = None
    last_listing: float | None = None  # the last successful run that listed the remote
    last_full: float | None = None
    failures: int = 0
    retry_at: float | None = None
    owed: bool = False  # local changes journalled while offline, not yet sent

    def decide(self, now: float, local: bool) -> tuple[str | None, bool]:
        """(why to sync now or None, whether to only scan and journal local changes)."""
        if self.retry_at is not None and now < self.retry_at:
            return None, local
        if self.last_full is None or now - self.last_full >= self.full_every:
            return FULL, False
        if self.retry_at is not None:
            return RETRY, False
        if self._pull_due(now):  # a pull also sends the local changes
            return PULL, False
        if local or self.owed:
            return LOCAL, False
        return None, False

    def _pull_due(self, now: float) -> bool:
        last = self.last_listing if self.last_listing is not None else self.last_attempt
        return last is None or now - last >= self.interval

    def wake_at(self) -> float:
        """The next moment the schedule itself (not an event) may want a sync."""
        if self.retry_at is not None:
            return self.retry_at
        last = self.last_listing if self.last_listing is not None else self.last_attempt
        last = last if last is not None else 0.0
        full = self.last_full if self.last_full is not None else 0.0
        return min(last + self.interval, full + self.full_every)

    def succeeded(self, now: float, why: str) -> None:
        self.last_attempt = now
        if why != LOCAL:
            self.last_listing = now
        if why == FULL:
            self.last_full = now
        self.failures, self.retry_at, self.owed = 0, None, False

    def failed(self, now: float, why: str) -> float:
        """Record a failed attempt; returns the delay before the next one."""
        self.last_attempt = now
        if why == FULL:
            self.last_full = now  # the scan part ran; the retry sends what it found
        self.failures += 1
        delay = backoff(self.failures, self.backoff_base, self.backoff_cap)
        self.retry_at = now + delay
        return delay

    def journalled(self) -> None:
        """Local changes were scanned and journalled while the remote was away."""
        self.owed = True

    @property
    def offline(self) -> bool:
        return self.retry_at is not None
