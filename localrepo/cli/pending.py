"""The changes `repo status` lists, read from the catalog a slice of images at a time.

The words are describe.py's (`image_pending`, `pending_change`, `fold_modified`: what
`describe.pending_changes` does for a whole task at once); this module reads what they
need, CHUNK images at a time, and hands each change to `describe.first_of_each_kind`
as a sort key and a way to build it. So the human status, which prints the first
`cap` of each kind, counts every change but builds and holds only those (docs/
benchmarks.md, "A million images"). What it holds of every image whose labels
differ: its id (8 bytes) and its hash as 16 bytes, the set the journal's additions
and moves are checked against (an addition with no label, a move that kept its
labels, are listed only when no task lists the image). What it holds in full: a
task's deletions (a new file at a deleted one's path folds into one MODIFIED change,
so they are read first), the moves not synced yet and the open conflicts. --all,
--json and --porcelain list everything, so build it.

The order is `describe.sort_changes`'s (kind, path, side), ties kept in the order the
changes were found: task by task (the task's own by image hash), then the additions
with no label, the moves that kept their labels, and the conflicts."""

from __future__ import annotations

import json
import sqlite3
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from itertools import chain

from localrepo.catalog import journal, label_watch
from localrepo.catalog.conflicts import decided, open_details
from localrepo.catalog.db import IN_CHUNK
from localrepo.catalog.files import file_nodes, valid_paths_of
from localrepo.catalog.labels import has_image_labels, image_labels_in, labelled_only_in
from localrepo.catalog.sides import LOCAL, SYNCED
from localrepo.catalog.tasks import TaskBinding, load_bindings
from localrepo.cli import describe as D
from localrepo.layout import task_for

CHUNK = 5000  # images read at a time: their labels and files
Found = tuple[D.SortKey, Callable[[], D.FileChange]]
NONE: Mapping[str, float | None] = {}


def file_changes(
    conn: sqlite3.Connection, damaged: Mapping[str, tuple[str, str]], cap: int | None
) -> tuple[D.Listing, int]:
    """Per task, what changed on disk since the last sync, one per file, then the open
    conflicts with both sides: the first `cap` of each kind (None: all) and how many
    there are (`describe.Listing`); and how many of the conflicts are decided.
    `damaged`: damaged_files() (their images are listed apart)."""
    conflicts = _conflicts(conn)
    n_decided = sum(1 for c in conflicts if c.detail)
    found = chain(
        _local_changes(conn, {digest for digest, _reason in damaged.values()}),
        ((D.sort_key(c.kind, c.path, c.side, (3, n)), _given(c)) for n, c in enumerate(conflicts)),
    )
    return D.first_of_each_kind(found, cap), n_decided


def _given(change: D.FileChange) -> Callable[[], D.FileChange]:
    return lambda: change


def _conflicts(conn: sqlite3.Connection) -> list[D.FileChange]:
    chosen = decided(conn)
    out = []
    for cid, _task, path, _field, _base, local_json, remote_json, _h in open_details(conn):
        local, remote = json.loads(local_json), json.loads(remote_json)
        out.append(D.conflict_change(path, local, remote, chosen.get(cid)))
    return out


def _local_changes(conn: sqlite3.Connection, damaged: set[str]) -> Iterator[Found]:
    bindings = load_bindings(conn)
    moves: dict[str, tuple[str, str]] = {}  # {hash: (first source, last target)}
    for digest, path, old_path in journal.open_moves(conn):
        moves[digest] = (moves.get(digest, (old_path, path))[0], path)
    listed: set[bytes | str] = set()  # the images whose labels differ, in some task
    reading = _Reading(conn, bindings, moves, damaged, listed)
    for index, binding in enumerate(bindings):
        # Only the images whose labels differ are read, and only those whose label rows
        # were written since the last status are compared (catalog/label_watch.py).
        ids = label_watch.differing_ids(conn, binding.task_id)
        yield from _task_changes(reading, index, ids)
    # Added with no label (a file beside the label folders): no label differs, so the
    # tasks above do not have it. Listed while a file of it is still where it was added
    # (the first path the journal added it at).
    seen: set[str] = set()
    batch: list[tuple[str, str]] = []
    for digest, path in chain(journal.open_additions(conn), [("", "")]):
        try:  # _compact, inline: a first status checks a million additions
            listed_key: bytes | str = bytes.fromhex(digest)
        except ValueError:
            listed_key = digest
        if digest and listed_key not in listed and digest not in seen:
            seen.add(digest)
            if digest not in damaged:
                batch.append((digest, path))
        if batch and (len(batch) >= IN_CHUNK or not digest):
            nodes = file_nodes(conn, [key for key, _path in batch])
            for key, added in batch:
                if added in {p for p, _dev, _ino in nodes.get(key, ())}:
                    change = D.FileChange(D.NEW, added, new=D.NO_LABEL, side=D.LOCAL)
                    yield D.sort_key(D.NEW, added, D.LOCAL, (1, key)), _given(change)
                    listed.add(_compact(key))
            batch = []
    # Moves that kept the labels (another subfolder, another name).
    still = sorted(k for k in moves if k not in damaged and _compact(k) not in listed)
    for key, nodes_of in file_nodes(conn, still).items():
        old_path, path = moves[key]
        if path in {p for p, _dev, _ino in nodes_of} and path != old_path:
            change = D.FileChange(D.MOVED, path, side=D.LOCAL, old_path=old_path)
            yield D.sort_key(D.MOVED, path, D.LOCAL, (2, key)), _given(change)


def _compact(key: str) -> bytes | str:
    """An image key as the set of listed images holds it: a hex hash as its bytes (a
    million of them weigh about 80 MB as bytes, 115 MB as text)."""
    try:
        return bytes.fromhex(key)
    except ValueError:
        return key  # not hex: itself (a str never equals a bytes)


@dataclass(frozen=True)
class _Reading:
    """What every task's reading shares: the catalog, the bindings, the moves not
    synced yet, the damaged images' keys, and the keys of the images listed so far."""

    conn: sqlite3.Connection
    bindings: list[TaskBinding]
    moves: Mapping[str, tuple[str, str]]
    damaged: set[str]
    listed: set[bytes | str]


def _task_changes(r: _Reading, index: int, ids: array[int]) -> Iterator[Found]:
    """describe.pending_changes of the task's images `ids` (those whose labels differ),
    read CHUNK at a time; their keys are added to `listed`. Its deletions are read
    first: a NEW change at the path of one is left out, and the first deletion there
    becomes MODIFIED (fold_modified)."""
    binding = r.bindings[index]
    task = binding.task_id
    gone: set[int] = set()  # labelled when synced, no label now: deleted files among them
    if ids and has_image_labels(r.conn, task, SYNCED):
        gone = labelled_only_in(r.conn, task, SYNCED, LOCAL, ids)
    deleted: list[tuple[str, D.FileChange]] = []
    for key, b, now, (kind, path, old_path) in _images(r, binding, sorted(gone)):
        if kind == D.DELETED:
            deleted.append((key, D.pending_change(kind, path, old_path, b, now)))
        else:
            yield _found(kind, path, old_path, b, now, (0, index, key))
    at = {change.path for _key, change in deleted}
    new_at: dict[str, tuple[str, Mapping[str, float | None]]] = {}  # the last by key
    rest = array("q", (i for i in ids if i not in gone)) if gone else ids
    for key, b, now, (kind, path, old_path) in _images(r, binding, rest):
        if kind == D.NEW and path in at:
            if path not in new_at or key > new_at[path][0]:
                new_at[path] = (key, now)
            continue
        yield _found(kind, path, old_path, b, now, (0, index, key))
    deleted.sort(key=lambda item: item[0])
    texts = {path: D.labels_text(now) for path, (_key, now) in new_at.items()}
    folded = D.fold_modified((change for _key, change in deleted), texts)
    for (key, _deleted), change in zip(deleted, folded, strict=True):
        yield D.sort_key(change.kind, change.path, change.side, (0, index, key)), _given(change)


def _found(
    kind: str,
    path: str,
    old_path: str | None,
    b: Mapping[str, float | None],
    now: Mapping[str, float | None],
    came: tuple[int, int, str],
) -> Found:
    return D.sort_key(kind, path, D.LOCAL, came), partial(
        D.pending_change, kind, path, old_path, b, now
    )


def _images(
    r: _Reading, binding: TaskBinding, ids: Iterable[int]
) -> Iterator[
    tuple[str, Mapping[str, float | None], Mapping[str, float | None], tuple[str, str, str | None]]
]:
    """(hash, labels synced, labels now, image_pending's answer) of those of these
    images of the task that changed (not the damaged), CHUNK at a time; every one
    read is added to `listed`."""
    conn, bindings, listed = r.conn, r.bindings, r.listed
    ids = ids if isinstance(ids, array) else array("q", ids)
    whole = len(bindings) == 1 and not binding.root.strip("/")  # every file is the task's
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        base, local = image_labels_in(conn, binding.task_id, SYNCED, LOCAL, chunk)
        paths = valid_paths_of(conn, chunk)
        if not whole:
            paths = {
                key: [p for p in found if task_for(p, bindings) is binding]
                for key, found in paths.items()
            }
        keys = base.keys() | local.keys()
        listed.update(_compact(key) for key in keys)
        last_seen = journal.last_paths(conn, sorted(k for k in keys if not paths.get(k)))
        for key in keys:
            if key in r.damaged:
                continue
            b, now = base.get(key), local.get(key)
            found = D.image_pending(
                b, now, paths.get(key, ()), last_seen.get(key), r.moves.get(key)
            )
            if found is not None:
                yield key, b or NONE, now or NONE, found
