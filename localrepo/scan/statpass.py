"""The scan's first stage: walk the tree, load the stat cache, and decide from stats
alone which files to read (docs/catalog.md, "The scanner", steps 1 and 2).

Contract: `Tree` is what the walk saw, with the files it could not see filled in as the
catalog last saw them (under an unreadable folder, outside a scoped scan, still being
written), so that nothing unseen reads as gone. `compare_with_cache` (pure) takes that
and the cached stats to a `StatPass`: the files whose stat differs from their row or
whose row is racy (to hash), the catalogued files gone, the skipped files whose reason
is new. A file whose stat equals its non-racy row is not read: a no-change scan stops
at this stage, having read the catalog and written nothing. Every walk the scanner
makes goes through this module (`walk`).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Collection
from dataclasses import dataclass
from stat import S_ISDIR

from localrepo.catalog import files as catalog_files
from localrepo.catalog import meta as catalog_meta
from localrepo.layout import TaskBinding
from localrepo.scan import splitwalk
from localrepo.scan.walk import DEV, INODE, MTIME, SIZE, WalkResult, walk
from localrepo.vocabulary import IGNORE_FILE

# An mtime this close to the moment its cache row was written may hide a later edit of
# the same size within the same timestamp tick: re-hash it next time (git's racy rule).
RACY_NS = catalog_files.RACY_NS

# Up to this many files changed, the scan reads the catalogued hashes of those files
# alone, and what follows costs what they cost, not what the tree does.
FEW_FILES = 5000

OnFolder = Callable[[WalkResult, list[str]], None]


@dataclass
class Tree:
    """What the walk saw (`walked`) and the catalog's record of it: {path: stat
    signature} of every catalogued file (`cached`, let go once the scan has compared
    against it) and {path: reason} of the invalid ones (`reasons`).

    A walk against the catalog (statmerge.py) leaves its settled files out of both:
    `walked.settled` counts them, `racy` holds the racy rows' paths (None: not known,
    load them), and fill_settled() puts the settled files back."""

    walked: WalkResult
    cached: dict[str, catalog_files.CachedFile]
    reasons: dict[str, str]
    racy: set[str] | None = None


@dataclass(frozen=True)
class StatPass:
    to_examine: list[str]  # new, changed or racy: to hash (again)
    gone: list[str]  # catalogued, and neither seen nor skipped now
    skipped_changed: dict[str, tuple[str, str | None]]  # skipped, with a reason not on record
    old_map: dict[str, str]  # {path: hash} of the catalogued valid files, when needed
    # `old_map` holds only the files to examine, gone or skipped anew (a few files
    # changed: see FEW_FILES); whoever needs every file's hash loads it.
    partial: bool = False


def start_split_walk(conn: sqlite3.Connection, root: str) -> splitwalk.SplitWalk | None:
    """A large tree's walk, split with a forked helper that starts walking while the
    stat cache loads here (scan/splitwalk.py); None below splitwalk.MIN_FILES."""
    last = json.loads(catalog_meta.get_meta(conn, "files_per_folder") or "{}")
    if last.get("", 0) >= splitwalk.MIN_FILES:
        return splitwalk.SplitWalk(root, last)
    return None


def load_cache(
    conn: sqlite3.Connection, split: splitwalk.SplitWalk | None
) -> tuple[dict[str, catalog_files.CachedFile], dict[str, str], WalkResult | None]:
    """The stat cache and the invalid files' reasons, then the split walk's result
    (None without one)."""
    try:
        cached = catalog_files.load_files(conn)
        reasons = catalog_files.load_reasons(conn)
        walked = split.result() if split is not None else None
    finally:
        if split is not None:
            split.close()
    return cached, reasons, walked


def walk_all(root: str, on_folder: OnFolder | None) -> WalkResult:
    """The whole tree, in this process; `on_folder` as walk() takes it."""
    return walk(root, on_folder=on_folder)


def complete(tree: Tree, conn: sqlite3.Connection, hold: frozenset[str]) -> frozenset[str]:
    """Fill in what the walk could not see (keep_unseen) and what is still being written
    (hold_back); returns the paths actually held."""
    keep_unseen(tree.walked, tree.cached, conn)
    if hold:
        hold = hold_back(tree.walked, tree.cached, conn, hold)
    return hold


def stat_pass(conn: sqlite3.Connection, tree: Tree, hold: frozenset[str]) -> StatPass:
    """The stat-only pass (compare_with_cache), with the racy rows and, when any file
    changed, the catalogued hashes it is diffed against."""
    racy = tree.racy
    if racy is None:
        racy = catalog_files.load_racy(conn, RACY_NS) if tree.cached else set()
    found = compare_with_cache(tree, racy, hold)
    if found.to_examine or found.gone:
        touched = [*found.to_examine, *found.gone, *found.skipped_changed]
        if (tree.cached or tree.walked.settled) and len(touched) <= FEW_FILES:
            old_map = catalog_files.file_hashes_of(conn, touched)
            return StatPass(found.to_examine, found.gone, found.skipped_changed, old_map, True)
        fill_settled(conn, tree)  # what follows goes over every file
        return StatPass(
            found.to_examine,
            found.gone,
            found.skipped_changed,
            catalog_files.load_file_hashes(conn),
        )
    return found


def fill_settled(conn: sqlite3.Connection, tree: Tree) -> None:
    """The whole walk back from a reduced one (statmerge.py): every catalogued row that
    is not in `cached` was settled, so its stat is the file's."""
    if not tree.walked.settled:
        return
    images, cached = tree.walked.images, tree.cached
    for path, st in catalog_files.load_stats(conn).items():
        if path not in cached:
            images[path] = st
    tree.walked.settled = 0


def compare_with_cache(tree: Tree, racy: Collection[str], hold: frozenset[str]) -> StatPass:
    """A file whose stat matches its (non-racy) cache row is unchanged. (`old_map` is
    left empty: stat_pass fills it in.)"""
    walked, cached, reasons = tree.walked, tree.cached, tree.reasons
    to_examine: list[str] = []
    get = cached.get
    for path, st in walked.images.items():
        if get(path) != hash(st) or path in racy:
            to_examine.append(path)  # new, changed, or racy: hash it (again)
    if hold:  # a held file keeps its cached row even when that row is racy
        to_examine = [p for p in to_examine if p not in hold]
    gone = [p for p in cached if p not in walked.images and p not in walked.skipped]
    skipped_changed = {
        p: r for p, r in walked.skipped.items() if p not in cached or reasons.get(p) != r[0]
    }
    return StatPass(to_examine, gone, skipped_changed, {})


def scope_folders(root: str, folders: Collection[str]) -> list[str]:
    """The folders of a scoped scan, with folders inside others left out ("" is the
    root). A folder that is gone stays (its catalogued files are gone too); one that is
    a file or a symlink now is replaced by its parent, whose walk reports it."""
    found: set[str] = set()
    for folder in folders:
        parts = [p for p in folder.strip("/").split("/") if p and p != "."]
        keep = len(parts)
        for i in range(len(parts)):
            try:
                st = os.lstat(os.path.join(root, *parts[: i + 1]))
            except FileNotFoundError:
                break  # gone from here down
            except (OSError, ValueError):
                keep = i
                break
            if not S_ISDIR(st.st_mode):  # a file, or a symlink (never followed)
                keep = i
                break
        found.add("/".join(parts[:keep]))
    out: list[str] = []
    for folder in sorted(found, key=lambda f: (f.count("/") if f else -1, f)):
        if not any(not o or folder == o or folder.startswith(o + "/") for o in out):
            out.append(folder)
    return sorted(out)


def walk_scope(
    root: str,
    scope: list[str],
    conn: sqlite3.Connection,
    reasons: dict[str, str],
) -> WalkResult:
    """Walk the `scope` folders; every catalogued file and sidecar outside them is
    filled in as the catalog recorded it (it is unseen, not gone)."""
    walked = WalkResult()
    for folder in scope:
        if not os.path.isdir(os.path.join(root, folder)):
            continue  # gone: what the catalog had in it is gone
        walked.merge(walk(root, start=folder))
    prefixes = tuple(f + "/" for f in scope)

    def outside(path: str) -> bool:
        return not path.startswith(prefixes) and path not in scope

    for path, st in catalog_files.load_stats(conn).items():
        if not outside(path):
            continue
        if st == (0, 0, 0, 0, 0) and path in reasons:  # a row of what the walk skipped
            walked.skipped[path] = (reasons[path], None)
        else:
            walked.images[path] = st
    for path, size, mtime, inode in catalog_files.load_aux(conn):
        if outside(path):
            stat = (0, inode, size, mtime, 0)
            if path.rpartition("/")[2] == IGNORE_FILE:
                walked.ignore_stats[path] = stat
            else:
                walked.sidecars[path] = stat
    return walked


def label_folders(root: str, bindings: list[TaskBinding]) -> set[str]:
    """The first-level folders of every task root (what names a task's labels), as a
    full walk would find them: one listing per task root."""
    out: set[str] = set()
    for b in bindings:
        out |= walk(root, start=b.root, recursive=False).folders
    return out


def keep_unseen(
    walked: WalkResult, cached: dict[str, catalog_files.CachedFile], conn: sqlite3.Connection
) -> None:
    """Files under a folder the walk could not list are unseen, not gone: keep their
    cached stat, so that a permission change or a flaky mount journals no deletes."""
    blind = tuple(
        "" if folder == "." else folder + "/"
        for folder, (reason, _detail) in walked.skipped.items()
        if reason == "unreadable folder"
    )
    if not blind:
        return
    stats = catalog_files.load_stats(conn)
    for path in cached:
        if path.startswith(blind) and path not in walked.images and path not in walked.skipped:
            walked.images[path] = stats[path]


def hold_back(
    walked: WalkResult,
    cached: dict[str, catalog_files.CachedFile],
    conn: sqlite3.Connection,
    hold: frozenset[str],
) -> frozenset[str]:
    """Files still being written are seen as the catalog last saw them: a known file
    keeps its cached stat (no change, no delete), a new one is not there yet. Returns
    the paths actually held.

    A new name whose inode the catalog knows is a rename (or a hard link) of a known
    file, complete by construction: it is never held back, or a move whose source is
    already gone would read as a delete. A rename keeps size and mtime too; matching on
    them as well keeps a new file that merely reuses a deleted file's inode held."""
    stats = catalog_files.load_stats(conn)
    known_inodes = {(st[DEV], st[INODE], st[SIZE], st[MTIME]) for st in stats.values()}
    held = set()
    for path in hold:
        if path in walked.skipped:
            continue
        if path in cached:
            walked.images[path] = stats[path]
            held.add(path)
        else:
            st = walked.images.get(path)
            if st is not None and (st[DEV], st[INODE], st[SIZE], st[MTIME]) not in known_inodes:
                del walked.images[path]
                held.add(path)
    return frozenset(held)
