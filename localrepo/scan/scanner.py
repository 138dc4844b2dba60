"""The scanner: walk, stat cache, hash and check, derive labels, journal the changes.

A no-change scan is stat-only: one `os.scandir` walk compared against the stat cache
loaded in one query, and nothing written. Files whose stat changed (or whose cache row
is "racy") are hashed and decoded in a worker pool; the results, the re-derived LOCAL
labels and the journal entries for what changed are written in one transaction.

The shell around the scan's stages (design section 4), which `Scanner._scan` runs in
this order:

    statpass.py    walk the tree, load the stat cache; which files to read (the core:
                   compare_with_cache)
    pool.py        hash and check them in a worker pool (a first scan's start while the
                   walk still lists)
    diff.py        what their results change (pure)
    layoutpass.py  re-derive the LOCAL labels when anything that feeds them changed
                   (a first scan's, mostly written while the pool hashes:
                   layoutstream.py; only the touched images' when only files
                   changed: layoutpatch.py)
    writes.py      the one write transaction: file and image rows as results arrive,
                   then the journal
    report.py      what the scan found (ScanReport), filled in stage by stage
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from localrepo.catalog import files as catalog_files
from localrepo.catalog import labels as catalog_labels
from localrepo.catalog import meta as catalog_meta
from localrepo.catalog import tasks as catalog_tasks
from localrepo.layout import TaskBinding
from localrepo.scan import (
    diff,
    firstscan,
    layoutpass,
    layoutpatch,
    layoutstream,
    splitwalk,
    statmerge,
    statpass,
)
from localrepo.scan.pool import HashPool, Progress, process_pool
from localrepo.scan.report import ScanReport
from localrepo.scan.walk import WalkResult
from localrepo.scan.writes import Writes

if TYPE_CHECKING:
    from concurrent.futures import Executor


class Scanner:
    def __init__(
        self,
        root: Path,
        conn: sqlite3.Connection,
        *,
        workers: int | None = None,
        progress: Progress | None = None,
        executor_factory: Callable[[int], Executor] | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.root = root
        self.conn = conn
        self.workers = workers or os.cpu_count() or 1
        self.progress = progress
        self.executor_factory = executor_factory or process_pool
        self.clock = clock

    # -- the run ---------------------------------------------------------------------------
    def scan(
        self,
        *,
        dry_run: bool = False,
        hold: Collection[str] = (),
        scope: Collection[str] | None = None,
    ) -> ScanReport:
        """Scan the tree. `hold`: files the caller knows are still being written (the
        watcher's unsettled paths); they keep their catalogued state, or stay unknown,
        until a scan without them.

        `scope`: the folders (repository-relative, "" the root) that the caller knows
        were touched (the watcher's events). Only they are walked, recursively; every
        catalogued file elsewhere is taken as the catalog last saw it, so the result is
        what a full scan would record for changes made inside them. A sidecar or ignore
        file governs its folder's subtree, which its own folder's scope covers. None: a
        full scan; empty: nothing was touched, nothing is read."""
        started = time.perf_counter()
        report = ScanReport()
        if scope is not None:
            report.scope = statpass.scope_folders(str(self.root), scope)
            if report.scope == [""]:
                report.scope = None  # the root: a full scan
            elif not report.scope:
                return report
        # The caller holds Repository.lock(): two scans reading the same stat cache at once
        # would both journal the same changes.
        writes = Writes(self.conn, self.clock(), dry_run)
        pool = HashPool(str(self.root), self.workers, self.executor_factory, self.progress)
        with _no_gc():
            try:
                self._scan(report, writes, pool, frozenset(hold), report.scope)
            except BaseException:
                writes.rollback()
                raise
            finally:
                pool.shutdown()
            writes.commit()
        report.seconds = time.perf_counter() - started
        return report

    def _scan(
        self,
        report: ScanReport,
        writes: Writes,
        pool: HashPool,
        hold: frozenset[str],
        scope: list[str] | None,
    ) -> None:
        conn = self.conn
        bindings = catalog_tasks.load_bindings(conn)
        expected = firstscan.applies(
            self.root, conn, scope=scope, hold=hold, dry_run=writes.dry_run
        )
        if expected is not None:
            # A large first scan, folder by folder, in memory that does not grow with it.
            firstscan.FirstScan(conn, self.root, writes, pool, bindings, report, expected).run()
            return
        tree = self._walk(report, writes, pool, hold, scope, bindings)
        hold = statpass.complete(tree, conn, hold)
        report.files = len(tree.walked.images) + tree.walked.settled
        report.leftovers = tree.walked.leftovers
        todo = statpass.stat_pass(conn, tree, hold)
        files = self._hash_and_diff(report, writes, pool, tree, todo, bindings)
        layout = layoutpass.check(conn, tree.walked, bindings, files.changes)
        report.changes = files.changes
        if writes.dry_run or not (
            files.recorded or todo.gone or todo.skipped_changed or layout.needed
        ):
            return  # nothing to record: a no-change scan writes nothing
        self._record(report, writes, tree, todo, files, layout, bindings)

    def _may_fork(self) -> bool:
        """Whether the walk may be split with a forked helper: two cores or more, and a
        single-threaded process (the daemon has threads, and its scans are scoped)."""
        return self.workers >= 2 and splitwalk.can_split()

    # -- the stages ------------------------------------------------------------------------
    def _walk(
        self,
        report: ScanReport,
        writes: Writes,
        pool: HashPool,
        hold: frozenset[str],
        scope: list[str] | None,
        bindings: list[TaskBinding],
    ) -> statpass.Tree:
        """The walk and the stat cache (statpass.py). A full walk of a catalogued tree
        compares as it goes and keeps what changed (statmerge.py); a first scan's is
        split with a forked helper, which starts walking while the stat cache loads."""
        conn, root = self.conn, str(self.root)
        if scope is None and catalog_files.has_files(conn):
            tree = statmerge.walk_against_catalog(conn, root, fork=self._may_fork())
            writes.known_paths = tree.cached
            return tree
        split = None
        if scope is None and self._may_fork():
            split = statpass.start_split_walk(conn, root)
        cached, reasons, walked = statpass.load_cache(conn, split)
        writes.known_paths = cached
        if scope is not None:
            walked = statpass.walk_scope(root, scope, conn, reasons)
            walked.folders |= statpass.label_folders(root, bindings)
            return statpass.Tree(walked, cached, reasons)
        if walked is None:
            # A first scan hashes everything it finds: the workers start on each folder's
            # files as soon as the walk has listed it, so the walk overlaps the hashing
            # (pool.py). (Only a walk done here feeds it: a split walk has already been
            # done.)
            early = None
            if not cached and not hold and self.workers >= 2:
                early = pool.early_hashing()
            walked = statpass.walk_all(root, None if early is None else early.feed)
            if early is not None:
                early.walk_done()
                self._stream_first_scan(writes, walked, bindings)
        return statpass.Tree(walked, cached, reasons)

    def _stream_first_scan(
        self, writes: Writes, walked: WalkResult, bindings: list[TaskBinding]
    ) -> None:
        """Every valid file of a first scan is an addition: journal them as their results
        arrive, while the pool still hashes, not in the serial tail (writes.py) ... and
        their labels, in the common case where folders alone decide them (layoutstream.py)."""
        tasks = diff.TaskLookup(bindings)
        writes.stream_additions(sorted(walked.images), tasks)
        if not (walked.sidecars or writes.dry_run or catalog_labels.has_local_labels(self.conn)):
            labels = layoutpass.folder_labels(walked, bindings)
            writes.layout = layoutstream.LayoutStream(self.conn, tasks, labels)

    def _hash_and_diff(
        self,
        report: ScanReport,
        writes: Writes,
        pool: HashPool,
        tree: statpass.Tree,
        todo: statpass.StatPass,
        bindings: list[TaskBinding],
    ) -> diff.FileDiff:
        """Hash and check the files to read (pool.py), their rows written batch by batch
        as results come (writes.py); then what they change (diff.py). The results are
        let go here: a full result per file is ~500 bytes at 100,000."""
        if todo.to_examine:
            writes.begin()  # file rows are written batch by batch while the pool hashes
            writes.few_files = len(todo.to_examine) <= statpass.FEW_FILES
        examined = pool.examine(
            todo.to_examine, self.conn, todo.old_map, tree.walked, writes.file_rows
        )
        report.hashed = len(examined)
        results = diff.sort_outcomes(examined, tree.reasons, tree.walked)
        del examined
        report.retry_later = results.retry_later
        report.invalid = results.invalid
        recorded = bool(results.updates)
        if not (recorded or todo.gone):
            return diff.FileDiff(todo.old_map, [], streamed=False, recorded=False)
        new_map = diff.new_hash_map(todo.old_map, results.updates, tree.walked.images)
        # A first scan's diff was built as its results came, in the parallel part.
        streamed = None if todo.old_map or todo.partial else writes.streamed_changes(new_map)
        if streamed is not None:
            return diff.FileDiff(new_map, streamed, streamed=True, recorded=recorded)
        whole = None
        if todo.partial:  # the maps hold the changed files; a label rename needs all

            def whole() -> tuple[dict[str, str], dict[str, str]]:
                statpass.fill_settled(self.conn, tree)
                old = catalog_files.load_file_hashes(self.conn)
                old.update(todo.old_map)  # rows written by this scan: their old hashes
                for p in todo.to_examine:
                    if p not in todo.old_map:
                        old.pop(p, None)
                return old, diff.new_hash_map(old, results.updates, tree.walked.images)

        changes = diff.file_changes(todo.old_map, new_map, results.invalid, bindings, whole)
        return diff.FileDiff(new_map, changes, streamed=False, recorded=recorded)

    def _record(
        self,
        report: ScanReport,
        writes: Writes,
        tree: statpass.Tree,
        todo: statpass.StatPass,
        files: diff.FileDiff,
        layout: layoutpass.LayoutCheck,
        bindings: list[TaskBinding],
    ) -> None:
        """Everything else the scan found, in the transaction its file rows opened
        (writes.py): the rows of files gone or skipped, the layout (layoutpass.py) when
        it must be re-derived, then the journal."""
        conn = self.conn
        # What is left needs only paths and hashes: free the per-file stat tuples and the
        # stat cache before the layout pass (about 70 MB at 100,000 files).
        writes.known_paths = {p for p in todo.skipped_changed if p in tree.cached}
        tree.cached = {}
        walked = tree.walked
        # For the next split walk. A few files changed barely move them: counting every
        # path again would be most of such a scan's own cost in a large tree.
        weights = (
            None if todo.partial or walked.settled else splitwalk.folder_weights(walked.images)
        )
        walked.images.clear()

        new_map = files.new_map
        if layout.needed and (todo.partial or not (todo.to_examine or todo.gone)):
            new_map = None  # every file's is loaded if the whole layout pass runs
        writes.begin()
        if weights is not None:
            catalog_meta.set_meta(conn, "files_per_folder", json.dumps(weights))
        writes.record_gone(todo.gone, todo.skipped_changed)
        changes = files.changes  # report.changes: the layout's are added to it
        if layout.needed:
            # A first scan's labels were streamed when its additions are its diff.
            stream = writes.layout if (files.streamed or not changes) else None
            if stream is None and layoutpatch.patch(conn, walked, bindings, todo, layout, changes):
                report.problems = list(layout.refused)  # only files changed: see layoutpatch
            else:
                if new_map is None:
                    new_map = catalog_files.load_file_hashes(conn)  # as written by now
                layout_changes, report.problems = layoutpass.relayout(
                    conn, self.root, walked, bindings, new_map, layout, changes, stream,
                    writes.hash_ids,
                )  # fmt: skip
                changes.extend(layout_changes)
            layoutpass.record(conn, layout, report.problems, writes.now)
        writes.journal(changes, files.streamed)
        catalog_meta.set_meta(conn, "last_scan_ns", str(writes.now))


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """No cyclic garbage collection during a scan.

    A scan builds a few large dicts of small tuples and creates no reference cycles worth
    collecting; with 100,000 files, collections that walk those dicts again and again
    cost more than the hashing. (Reference counting still frees everything.)
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
