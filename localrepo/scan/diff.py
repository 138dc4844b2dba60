"""The scan's third stage: what the hashed files change (docs/catalog.md, "The scanner",
step 5). Pure functions over plain data: no I/O.

Contract: `sort_outcomes` splits the pool's results into the files to record (valid or
invalid), those to retry (changed while hashing: they keep their old row and state) and
every invalid file with its reason (new results, unchanged invalid rows, what the walk
skipped). `new_hash_map` is the {path: hash} of the valid files after the scan, and
`file_changes` the journal's file-level changes between the two maps (scan/changes.py
finds the moves and label-folder renames), a valid image turned invalid being a
modification, never a delete. `TaskLookup` tells which task a path belongs to.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from localrepo.layout import TaskBinding, label_for_folder, relative_to_root, task_for
from localrepo.scan import changes as ch
from localrepo.scan.hashing import CHANGED
from localrepo.scan.walk import WalkResult

if TYPE_CHECKING:
    from localrepo.scan.pool import Outcome

Invalid = dict[str, tuple[str, str | None]]  # {path: (reason, detail)}


@dataclass(frozen=True)
class Outcomes:
    updates: list[tuple[str, Outcome]]  # files whose new result is recorded
    retry_later: list[str]  # changed while hashing
    invalid: Invalid


@dataclass(frozen=True)
class FileDiff:
    """What the scan's results change, as the scanner records them."""

    new_map: dict[str, str]  # {path: hash} of the valid files
    changes: list[ch.Change]  # file-level, in path order (the layout's are added later)
    streamed: bool  # `changes` are the additions a first scan journalled as they came
    recorded: bool  # some file has a new result to record


def sort_outcomes(
    examined: Mapping[str, Outcome], reasons: Mapping[str, str], walked: WalkResult
) -> Outcomes:
    """`examined`: the pool's results; `reasons`: the catalogued invalid files."""
    updates: list[tuple[str, Outcome]] = []
    retry_later: list[str] = []
    for path, outcome in examined.items():
        if outcome[1] == CHANGED:
            retry_later.append(path)
            continue  # keep the old row and state; a later scan retries it
        updates.append((path, outcome))
    # Invalid files: unchanged invalid rows, new results, and what the walk skipped.
    invalid: Invalid = {
        path: (reason, None)
        for path, reason in reasons.items()
        if path in walked.images and path not in examined
    }
    for path, (_h, reason, detail) in updates:
        if reason is not None:
            invalid[path] = (reason, detail)
    invalid.update(walked.skipped)
    return Outcomes(updates, retry_later, invalid)


def new_hash_map(
    old_map: Mapping[str, str], updates: list[tuple[str, Outcome]], seen: Collection[str]
) -> dict[str, str]:
    """The valid files' hashes after the scan: the catalogued ones still `seen`, with
    the new results applied."""
    new_map = {p: h for p, h in old_map.items() if p in seen}
    for path, (h, reason, _d) in updates:
        if reason is None and h is not None:
            new_map[path] = h
        else:
            new_map.pop(path, None)
    return new_map


def file_changes(
    old_map: dict[str, str],
    new_map: dict[str, str],
    invalid: Invalid,
    bindings: list[TaskBinding],
    whole: Callable[[], tuple[dict[str, str], dict[str, str]]] | None = None,
) -> list[ch.Change]:
    """The journal's file-level changes. `whole`: the maps hold only the files that
    changed (a few in a large tree), and this gives every file's, which telling a
    label folder's rename from moves out of it needs (asked only when something moved)."""
    tasks = TaskLookup(bindings)

    def label_of(path: str) -> tuple[int, str, str] | None:
        b = tasks.of(path)
        if b is None:
            return None
        head, _, rest = relative_to_root(path, b.root).partition("/")
        if not rest or label_for_folder(head) is None:
            return None
        return (b.task_id, (f"{b.root}/{head}" if b.root else head), rest)

    def task_of(path: str) -> int | None:
        b = tasks.of(path)
        return None if b is None else b.task_id

    changes = ch.diff_files(old_map, new_map, task_of)
    if whole is not None and any(c.kind == ch.MOVED for c in changes):
        old_map, new_map = whole()
    changes = ch.fold_label_renames(changes, old_map, new_map, label_of)
    # A valid image whose file turned invalid (corrupted, or a copy still in progress) is
    # journalled as such, not as a delete: the sync engine must not take a broken copy
    # for the user's wish to delete the image.
    return [
        ch.Change(
            ch.MODIFIED,
            c.old_path,
            None,
            None,
            c.hash,
            c.task_id,
            {"invalid": invalid[c.old_path][0]},
        )
        if c.kind == ch.DELETED and c.old_path in invalid
        else c
        for c in changes
    ]


class TaskLookup:
    """task_for() memoised by folder: every file of a folder belongs to the same task."""

    def __init__(self, bindings: Sequence[TaskBinding]) -> None:
        self.bindings = bindings
        self.cache: dict[str, TaskBinding | None] = {}

    def of(self, path: str) -> TaskBinding | None:
        folder = path.rpartition("/")[0]
        try:
            return self.cache[folder]
        except KeyError:
            b = self.cache[folder] = task_for(path, self.bindings)
            return b
