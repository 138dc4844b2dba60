"""A large first scan, folder by folder: what a first scan records, in memory that does
not grow with the tree (docs/catalog.md, "The scanner"; docs/benchmarks.md, "A million
images").

Contract: `applies` says when this path is taken: a full scan, not a dry run, nothing
held, into a catalog without file rows, of a tree with at least MIN_FILES image files
(counted up to that many, ignore files aside). `FirstScan.run` then records what the
whole-tree path (scanner.py: walk, pool, diff, layout pass, journal) records: the same
file, image, label, journal, problem and meta rows (only the journal's ids differ: here
they have no gaps), and fills the same ScanReport, except that the additions are
counted (`ScanReport.unlisted_additions`), not listed in `changes`. Per file it holds
only what is in flight:

1. The walk hands each folder's image files to the pool as it lists them, and forgets
   them. At most IN_FLIGHT batches per worker wait in the pool: the walk waits for the
   hashing, not the other way round. Each batch's results are written as they come
   (scan/writes.py: file and image rows, image ids looked up per batch, not held).
2. The labels, image by image from the file rows (scan/firstlabels.py). A tree with
   sidecars, or whose labels need the whole layout pass, gets it, with the whole walk
   rebuilt from the catalog: memory then grows with the tree, as it did before.
3. The journal's additions, from the file rows, in path order.

Hard links are read once per name here, not once per inode: the same bytes give the
same rows, and telling inodes apart would hold one entry per file.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path

from localrepo.catalog import files as catalog_files
from localrepo.catalog import journal
from localrepo.catalog import labels as catalog_labels
from localrepo.catalog import meta as catalog_meta
from localrepo.layout import TaskBinding, is_image_name
from localrepo.scan import changes as ch
from localrepo.scan import firstlabels, layoutpass, splitwalk
from localrepo.scan.diff import TaskLookup
from localrepo.scan.hashing import CHANGED, Examined
from localrepo.scan.pool import BIG_BATCH, HashPool
from localrepo.scan.report import Problem, ScanReport
from localrepo.scan.walk import WalkResult, walk
from localrepo.scan.writes import Writes
from localrepo.vocabulary import STATE_DIR

# From this many image files on, a first scan goes folder by folder. Measured A/B in
# one process (docs/benchmarks.md, "A million images"): 47 MB against 169 MB at
# 100,000 files, and 6.7-7.3 s against 7.4-8.1 s; 49 MB against 1.2 GB at a million,
# and 83-96 s against 96 s.
# Smaller trees keep the whole-tree path that the scan benchmark's figures are of.
MIN_FILES = 100_000
IN_FLIGHT = 4  # batches per worker waiting in the pool


def applies(
    root: Path,
    conn: sqlite3.Connection,
    *,
    scope: object,
    hold: frozenset[str],
    dry_run: bool,
) -> int | None:
    """How many image files the tree holds, when a scan takes this path (see the
    module's contract); None when it does not."""
    if scope is not None or hold or dry_run or catalog_files.has_files(conn):
        return None
    count = count_image_files(str(root))
    return count if count >= MIN_FILES else None


def count_image_files(root: str) -> int:
    """How many files with an image name the tree holds, ignore files aside (not
    following symlinks, not in the state folder): what the progress bar counts to. A
    listing without a stat, about a second for a million files."""
    count = 0
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if not (folder == root and entry.name == STATE_DIR):
                                stack.append(entry.path)
                        elif is_image_name(entry.name):
                            count += 1
                    except OSError:
                        continue
        except OSError:
            continue
    return count


class FirstScan:
    """One large first scan, in the transaction `writes` opens (see the module)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        root: Path,
        writes: Writes,
        pool: HashPool,
        bindings: list[TaskBinding],
        report: ScanReport,
        expected: int = 0,
    ) -> None:
        self.conn = conn
        self.expected = expected  # image files counted before the walk (progress)
        self.root = root
        self.writes = writes
        self.pool = pool
        self.bindings = bindings
        self.report = report
        self.per_folder: Counter[str] = Counter()  # image files walked, by folder
        self.walked_files = 0
        self.valid = 0
        self._pending: list[str] = []  # listed, not yet sent to the pool
        self._futures: dict[Future[list[Examined]], list[str]] = {}
        self._layout_changes: list[ch.Change] = []  # what the whole layout pass found

    def run(self) -> None:
        writes = self.writes
        writes.begin()
        writes.ids_per_batch = True
        walked = walk(str(self.root), on_folder=self._feed)
        self._send(everything=True)
        self._wait(0)
        report = self.report
        report.files = self.walked_files
        report.leftovers = walked.leftovers
        report.invalid.update(walked.skipped)
        self._record(walked)

    # -- 1. walk and hash ------------------------------------------------------------------
    def _feed(self, walked: WalkResult, new_paths: list[str]) -> None:
        """The walk's on_folder: send the folder's image files to the pool, and forget
        their stats (the workers stat each file as they read it)."""
        if not new_paths:
            return
        images = walked.images
        for path in new_paths:
            del images[path]
        self.per_folder[new_paths[0].rpartition("/")[0]] += len(new_paths)
        self.walked_files += len(new_paths)
        self._pending += new_paths
        self._send(everything=False)
        self._wait(IN_FLIGHT * self.pool.workers)

    def _send(self, *, everything: bool) -> None:
        pending = self._pending
        if not pending:
            return
        from localrepo.scan.hashing import examine_batch

        executor = self.pool.started() if self.pool.workers >= 2 else None
        start = 0
        while len(pending) - start >= BIG_BATCH or (everything and start < len(pending)):
            names = pending[start : start + BIG_BATCH]
            start += len(names)
            if executor is None:
                self._write(examine_batch(str(self.root), names, [True] * len(names)))
            else:
                fut = executor.submit(examine_batch, str(self.root), names, [True] * len(names))
                self._futures[fut] = names
        del pending[:start]

    def _wait(self, at_most: int) -> None:
        """Write the results of finished batches until at most `at_most` are in flight."""
        futures = self._futures
        while len(futures) > at_most:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for fut in done:
                del futures[fut]  # a kept future would keep its batch's results alive
                self._write(fut.result())

    def _write(self, batch: list[Examined]) -> None:
        report = self.report
        for ex in batch:
            if ex.reason is None:
                self.valid += 1
            elif ex.reason == CHANGED:
                report.retry_later.append(ex.path)
            else:
                report.invalid[ex.path] = (ex.reason, ex.detail)
        report.hashed += len(batch)
        self.writes.file_rows(batch)
        if self.pool.progress:
            self.pool.progress(report.hashed, max(self.expected, self.walked_files))

    # -- 2. and 3. what the whole-tree path records after its diff -------------------------
    def _record(self, walked: WalkResult) -> None:
        conn, writes, report = self.conn, self.writes, self.report
        catalog_meta.set_meta(
            conn, "files_per_folder", json.dumps(splitwalk.weights_of_folders(self.per_folder))
        )
        writes.record_gone([], walked.skipped)
        layout = layoutpass.check(conn, walked, self.bindings, [True] if self.valid else [])
        if layout.needed:
            problems = None
            if not walked.sidecars and not catalog_labels.has_local_labels(conn):
                problems = firstlabels.label_images(conn, self.bindings, layout.folder_labels)
            if problems is None:
                problems = self._whole_layout(walked, layout)
            else:
                problems = layout.refused + problems
            report.problems = problems
            layoutpass.record(conn, layout, problems, writes.now)
        self._journal()
        catalog_meta.set_meta(conn, "last_scan_ns", str(writes.now))

    def _whole_layout(self, walked: WalkResult, layout: layoutpass.LayoutCheck) -> list[Problem]:
        """The layout pass over the whole tree, as the catalog now records it."""
        conn = self.conn
        walked.images = catalog_files.load_stats(conn)
        new_map = catalog_files.load_file_hashes(conn)
        tasks = TaskLookup(self.bindings)
        additions = [
            ch.Change(ch.ADDED, p, None, h, None, _task_id(tasks, p))
            for p, h in sorted(new_map.items())
        ]
        layout_changes, problems = layoutpass.relayout(
            conn, self.root, walked, self.bindings, new_map, layout, additions, None, None
        )
        walked.images = {}
        self._layout_changes = layout_changes  # journalled after the additions
        return problems

    def _journal(self) -> None:
        """Each valid file's addition, in path order, written from the file rows; then
        what the whole layout pass found, if it ran (as the whole-tree path orders them)."""
        tasks = TaskLookup(self.bindings)
        first, written = journal.add_valid_files(
            self.conn, self.writes.now, lambda path: _task_id(tasks, path)
        )
        self.writes.journal(self._layout_changes, streamed=False)
        self.report.changes += self._layout_changes
        self.report.unlisted_additions = written
        self.report.unlisted_first_id = first


def _task_id(tasks: TaskLookup, path: str) -> int | None:
    b = tasks.of(path)
    return None if b is None else b.task_id
