"""The scanner: walk, stat cache, hash and check, derive labels, journal the changes.

A no-change scan is stat-only: one `os.scandir` walk compared against the stat cache
loaded in one query, and nothing written. Files whose stat changed (or whose cache row
is "racy") are hashed and decoded in a worker pool; the results, the re-derived LOCAL
labels and the journal entries for what changed are written in one transaction.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sqlite3
import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from stat import S_ISDIR
from typing import TYPE_CHECKING

from localrepo.catalog import db as catalog_db
from localrepo.catalog import files as catalog_files
from localrepo.catalog import images as catalog_images
from localrepo.catalog import journal
from localrepo.catalog import labels as catalog_labels
from localrepo.catalog import meta as catalog_meta
from localrepo.catalog import problems as catalog_problems
from localrepo.catalog import tasks as catalog_tasks
from localrepo.catalog.problems import FOLDER_NAME_PROBLEM
from localrepo.catalog.states import LOCAL
from localrepo.labelnames import folder_verdict
from localrepo.layout import (
    Placement,
    TaskBinding,
    case_twins,
    label_for_folder,
    merge_image_labels,
    place,
    relative_to_root,
    resolve_sidecars,
    sidecar_for,
    task_for,
)
from localrepo.scan import changes as ch
from localrepo.scan import splitwalk
from localrepo.scan.hashing import CHANGED, Examined  # hashing imports xxhash lazily
from localrepo.scan.walk import DEV, IGNORE_FILE, INODE, MTIME, SIZE, Stat, WalkResult, walk

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

# An mtime this close to the moment its cache row was written may hide a later edit of
# the same size within the same timestamp tick: re-hash it next time (git's racy rule).
RACY_NS = 2_000_000_000
POOL_THRESHOLD = 256  # fewer files than this are hashed in-process
BATCH = 64  # files per round trip to a worker, at least...
BIG_BATCH = 256  # ...and at most: each round trip costs the main process ~0.3 ms
# What a scan keeps of a hashed file: (content hash, reason it is invalid, detail).
Outcome = tuple[str | None, str | None, str | None]
LABEL_TYPE = {"multi_class": "category", "multi_label": "tag", "regression": "value"}

Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class Problem:
    kind: str
    message: str
    path: str | None = None
    task_id: int | None = None


@dataclass
class ScanReport:
    files: int = 0
    hashed: int = 0
    changes: list[ch.Change] = field(default_factory=list)
    invalid: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    retry_later: list[str] = field(default_factory=list)
    relabelled: bool = False
    leftovers: list[str] = field(default_factory=list)  # temp files of an interrupted sync
    seconds: float = 0.0
    # A scoped scan: the folders it walked (recursively); None for a full scan.
    scope: list[str] | None = None
    folders_listed: int = 0  # folders whose entries the walk listed


def fingerprint(text: str) -> str:
    """What tells a scan the bindings or the label folders changed since the last one.
    xxh3_128, not hashlib: hashlib's OpenSSL start-up is a tenth of `repo status`'s
    imports, and this needs no cryptographic strength, only no accidental collision."""
    import xxhash

    return xxhash.xxh3_128_hexdigest(text.encode())


def bindings_fingerprint(bindings: Sequence[TaskBinding]) -> str:
    return fingerprint(json.dumps([(b.task_id, b.type, b.root) for b in bindings]))


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
        self.executor_factory = executor_factory or _process_pool
        self.clock = clock
        self._pool: Executor | None = None

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
            report.scope = scope_folders(str(self.root), scope)
            if report.scope == [""]:
                report.scope = None  # the root: a full scan
            elif not report.scope:
                return report
        # The caller holds Repository.lock(): two scans reading the same stat cache at once
        # would both journal the same changes.
        writes = _Writes(self.conn, self.clock(), dry_run)
        with _no_gc():
            try:
                self._scan(report, writes, frozenset(hold), report.scope)
            except BaseException:
                writes.rollback()
                raise
            finally:
                if self._pool is not None:
                    self._pool.shutdown(cancel_futures=True)
                    self._pool = None
            writes.commit()
        report.seconds = time.perf_counter() - started
        return report

    def _scan(
        self, report: ScanReport, writes: _Writes, hold: frozenset[str], scope: list[str] | None
    ) -> None:
        conn = self.conn
        bindings = catalog_tasks.load_bindings(conn)
        split = None
        if scope is None and self._may_fork():
            # A large tree's walk is split with a forked helper, which starts walking
            # while the stat cache loads here.
            last = json.loads(catalog_meta.get_meta(conn, "files_per_folder") or "{}")
            if last.get("", 0) >= splitwalk.MIN_FILES:
                split = splitwalk.SplitWalk(str(self.root), last)
        try:
            cached = catalog_files.load_files(conn)
            reasons = catalog_files.load_reasons(conn)
            walked = split.result() if split is not None else None
        finally:
            if split is not None:
                split.close()
        writes.known_paths = cached
        early = None
        if scope is None:
            # A first scan hashes everything it finds: the workers start on each folder's
            # files as soon as the walk has listed it, so the walk overlaps the hashing.
            # (Only a walk done here feeds it: a split walk has already been done.)
            if walked is None and not cached and not hold and self.workers >= 2:
                early = _EarlyHashing(self)
            if walked is None:
                walked = walk(str(self.root), on_folder=None if early is None else early.feed)
            if early is not None:
                early.walk_done()
                # Every valid file of a first scan is an addition: journal them as their
                # results arrive, while the pool still hashes, not in the serial tail.
                tasks = TaskLookup(bindings)
                writes.stream_additions(sorted(walked.images), tasks)
                # ... and their labels, in the common case where folders alone decide them.
                if not (walked.sidecars or writes.dry_run or catalog_labels.has_local_labels(conn)):
                    writes.layout = _LayoutStream(conn, tasks, _folder_labels(walked, bindings))
            report.folders_listed = len(walked.folders)
        else:
            walked = _walk_scope(str(self.root), scope, conn, reasons)
            report.folders_listed = len(walked.folders)
            walked.folders |= _label_folders(str(self.root), bindings)
        _keep_unseen(walked, cached, conn)
        if hold:
            hold = _hold_back(walked, cached, conn, hold)
        report.files = len(walked.images)
        report.leftovers = walked.leftovers

        # The stat-only pass: a file whose stat matches its (non-racy) cache row is unchanged.
        to_examine: list[str] = []
        get = cached.get
        racy = catalog_files.load_racy(conn, RACY_NS) if cached else set()
        for path, st in walked.images.items():
            if get(path) != hash(st) or path in racy:
                to_examine.append(path)  # new, changed, or racy: hash it (again)
        if hold:  # a held file keeps its cached row even when that row is racy
            to_examine = [p for p in to_examine if p not in hold]
        gone = [p for p in cached if p not in walked.images and p not in walked.skipped]
        skipped_changed = {
            p: r for p, r in walked.skipped.items() if p not in cached or reasons.get(p) != r[0]
        }
        old_map = catalog_files.load_file_hashes(conn) if (to_examine or gone) else {}

        if to_examine:
            writes.begin()  # file rows are written batch by batch while the pool hashes
        examined = self._examine(to_examine, conn, old_map, walked, writes.file_rows, early)
        report.hashed = len(examined)
        updates: list[tuple[str, Outcome]] = []
        for path, outcome in examined.items():
            if outcome[1] == CHANGED:
                report.retry_later.append(path)
                continue  # keep the old row and state; a later scan retries it
            updates.append((path, outcome))

        # Invalid files: unchanged invalid rows, new results, and what the walk skipped.
        invalid: dict[str, tuple[str, str | None]] = {
            path: (reason, None)
            for path, reason in reasons.items()
            if path in walked.images and path not in examined
        }
        for path, (_h, reason, detail) in updates:
            if reason is not None:
                invalid[path] = (reason, detail)
        invalid.update(walked.skipped)
        report.invalid = invalid

        changes: list[ch.Change] = []
        new_map = old_map
        streamed = None  # a first scan's diff as its journal entries streamed it, if exact
        if updates or gone:
            new_map = {p: h for p, h in old_map.items() if p in walked.images}
            for path, (h, reason, _d) in updates:
                if reason is None and h is not None:
                    new_map[path] = h
                else:
                    new_map.pop(path, None)
            # A first scan's diff was built as its results came, in the parallel part.
            streamed = None if old_map else writes.streamed_changes(new_map)
            if streamed is not None:
                changes = streamed
            else:
                changes = _file_changes(old_map, new_map, invalid, bindings)

        # Layout: re-derive LOCAL labels when anything that feeds it changed.
        aux_now = {**walked.sidecars, **walked.ignore_stats}
        aux_before = {r[0]: (r[1], r[2], r[3]) for r in catalog_files.load_aux(conn)}
        aux_changed = {p: (s[SIZE], s[MTIME], s[INODE]) for p, s in aux_now.items()} != aux_before
        # The racy rule for sidecars and ignore files: one edited in the tick their rows
        # were written in keeps its stat, so re-derive the layout while a row is racy.
        aux_ns = int(catalog_meta.get_meta(conn, "aux_ns") or 0)
        aux_changed = aux_changed or any(m >= aux_ns - RACY_NS for _s, m, _i in aux_before.values())
        fp = bindings_fingerprint(bindings)
        folder_labels = _folder_labels(walked, bindings)
        refused = _refused_folders(walked, bindings)
        folders_fp = fingerprint(
            json.dumps(
                [
                    sorted((t, sorted(v)) for t, v in folder_labels.items()),
                    [p.path for p in refused],
                ]
            )
        )
        need_layout = bool(
            changes
            or aux_changed
            or fp != catalog_meta.get_meta(conn, "bindings_fp")
            or folders_fp != catalog_meta.get_meta(conn, "folders_fp")
        )
        report.changes = changes
        if writes.dry_run or not (updates or gone or skipped_changed or need_layout):
            return  # nothing to record: a no-change scan writes nothing
        # What is left needs only paths and hashes: free the per-file stat tuples and
        # results before the layout pass (about 70 MB at 100,000 files).
        writes.known_paths = {p for p in skipped_changed if p in cached}
        del examined, updates, cached
        weights = splitwalk.folder_weights(walked.images)  # for the next split walk
        walked.images.clear()

        if need_layout and not (to_examine or gone):
            new_map = catalog_files.load_file_hashes(conn)
        writes.begin()
        catalog_meta.set_meta(conn, "files_per_folder", json.dumps(weights))
        held = catalog_files.held_images_of(conn, gone) if gone else []
        catalog_files.delete_files(conn, gone)
        writes.skipped_rows(skipped_changed)
        if held:
            catalog_files.carry_damage(conn, held)
        # A first scan journalled its valid files' additions as they came; its diff is
        # exactly those (one addition per valid file, no other file change). Should they
        # ever differ from the diff (streamed_changes() says so), the diff is what the
        # journal keeps.
        streamed_ok = streamed is not None
        if need_layout:
            problems = None
            if writes.layout is not None and (streamed_ok or not changes):
                problems = writes.layout.finish(len(new_map))
            if problems is not None:
                layout_changes: list[ch.Change] = []  # every image came with its addition
            else:
                hash_ids = writes.hash_ids
                if hash_ids is None:
                    hash_ids = catalog_images.image_ids_by_hash(conn)
                layout_changes, problems = self._derive_layout(
                    walked, bindings, new_map, hash_ids, folder_labels, changes
                )
            changes.extend(layout_changes)
            problems = refused + problems
            report.problems = problems
            report.relabelled = True
            catalog_problems.replace_problems(
                conn, [(p.task_id, p.path, p.kind, p.message) for p in problems]
            )
            catalog_files.replace_aux(
                conn, [(p, s[SIZE], s[MTIME], s[INODE]) for p, s in aux_now.items()]
            )
            catalog_meta.set_meta(conn, "bindings_fp", fp)
            catalog_meta.set_meta(conn, "folders_fp", folders_fp)
            catalog_meta.set_meta(conn, "aux_ns", str(writes.now))
        if streamed_ok:
            changes_left = [c for c in changes if c.kind != ch.ADDED]
        else:
            if writes.streamed:
                writes.unstream()
            changes_left = changes
        journal.add_many(
            conn,
            [
                (c.kind, c.task_id, c.path, c.old_path, c.hash, c.detail or None)
                for c in changes_left
            ],
            now_ns=writes.now,
        )
        catalog_meta.set_meta(conn, "last_scan_ns", str(writes.now))

    def _may_fork(self) -> bool:
        """Whether the walk may be split with a forked helper: two cores or more, and a
        single-threaded process (the daemon has threads, and its scans are scoped)."""
        return self.workers >= 2 and splitwalk.can_split()

    # -- hashing -----------------------------------------------------------------------------
    def _examine(
        self,
        paths: list[str],
        conn: sqlite3.Connection,
        hashes: dict[str, str],
        walked: WalkResult,
        on_final: Callable[[list[Examined]], None],
        early: _EarlyHashing | None = None,
    ) -> dict[str, Outcome]:
        """Hash (and check) `paths`; final results go to `on_final` as they arrive, and
        only their outcome is kept (a full result per file is ~500 bytes at 100,000).
        `early`: the first scan's hashing, started during the walk (all of `paths`)."""
        if not paths:
            return {}
        known_valid = set(hashes.values())
        stats = catalog_files.load_stats(conn)
        by_inode = {(stats[p][DEV], stats[p][INODE], stats[p][SIZE]) for p in hashes if p in stats}
        del stats
        # Hard links: one inode is read once per scan; its other names copy its result.
        if early is not None:
            unique, aliases = early.links.unique, early.links.aliases
        else:
            links = _HardLinks()
            links.add(paths, walked.images)
            unique, aliases = links.unique, links.aliases
            del links
        # A known inode (a move, a touch) probably holds known bytes: hash first, and
        # decode only if the hash turns out to be new.
        images = walked.images
        decode = {
            p: (images[p][DEV], images[p][INODE], images[p][SIZE]) not in by_inode for p in unique
        }

        def final(path: str, h: str | None, reason: str | None) -> bool:
            return decode[path] or reason is not None or h in known_valid

        def on_batch(batch: list[Examined]) -> None:
            done = [ex for ex in batch if final(ex.path, ex.hash, ex.reason)]
            for ex in [ex for ex in done if ex.path in aliases]:
                done += [ex._replace(path=alias) for alias in aliases[ex.path]]
            on_final(done)

        results = self._run(
            unique, [decode[p] for p in unique], on_batch, early.submitted if early else None
        )
        redo = [p for p, (h, reason, _d) in results.items() if not final(p, h, reason)]
        if redo:
            decode.update(dict.fromkeys(redo, True))
            results.update(self._run(redo, [True] * len(redo), on_batch))
        for original, names in aliases.items():
            for alias in names:
                results[alias] = results[original]
        return results

    def _run(
        self,
        paths: list[str],
        decode: list[bool],
        on_batch: Callable[[list[Examined]], None],
        submitted: dict[Future[list[Examined]], list[str]] | None = None,
    ) -> dict[str, Outcome]:
        """`submitted`: batches of the first paths already in the pool (their names)."""
        from localrepo.scan.hashing import examine_batch

        root = str(self.root)
        total = len(paths)
        out: dict[str, Outcome] = {}

        def collect(batch: list[Examined], names: list[str]) -> None:
            # Keyed by the caller's path strings (the workers' copies are let go).
            out.update(
                (name, (ex.hash, ex.reason, ex.detail))
                for name, ex in zip(names, batch, strict=True)
            )
            on_batch(batch)
            if self.progress:
                self.progress(len(out), total)

        if not submitted and (total < POOL_THRESHOLD or self.workers < 2):
            for start in range(0, total, BATCH):
                names = paths[start : start + BATCH]
                collect(examine_batch(root, names, decode[start : start + BATCH]), names)
            return out
        done = sum(len(names) for names in submitted.values()) if submitted else 0
        # Big batches while there is plenty left (fewer round trips), small ones when
        # there is not (every worker kept busy to the end).
        size = max(BATCH, min(BIG_BATCH, (total - done) // (self.workers * 4)))
        batches = [(paths[i : i + size], decode[i : i + size]) for i in range(done, total, size)]
        from concurrent.futures import as_completed

        if self._pool is None:
            self._pool = self.executor_factory(self.workers)
        pool = self._pool
        # The caller's dict itself: each future is popped as it is collected, and a kept
        # one would keep its batch's results alive.
        futures = submitted if submitted is not None else {}
        futures.update((pool.submit(examine_batch, root, b, d), b) for b, d in batches)
        for fut in as_completed(futures):
            # The catalog writes overlap the hashing of later batches.
            # (popped: a kept future would keep its whole result alive)
            collect(fut.result(), futures.pop(fut))
        return out

    def _derive_layout(
        self,
        walked: WalkResult,
        bindings: list[TaskBinding],
        new_map: dict[str, str],
        hash_ids: dict[str, int],
        folder_labels: dict[int, set[str]],
        file_changes: list[ch.Change],
    ) -> tuple[list[ch.Change], list[Problem]]:
        conn = self.conn
        problems: list[Problem] = []
        sidecar_texts: dict[str, dict[str, str]] = defaultdict(dict)
        for path in walked.sidecars:
            folder, _, name = path.rpartition("/")
            try:
                text = (self.root / path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(Problem("sidecar", f"{path}: cannot read it ({exc})", path))
                continue
            sidecar_texts[folder][name] = text
        sidecars, sidecar_problems = resolve_sidecars(sidecar_texts)
        problems += [Problem("sidecar", m) for m in sidecar_problems]

        by_task = {b.task_id: b for b in bindings}
        tasks = TaskLookup(bindings)
        # Files without a sidecar row are placed by their folder alone: place each such
        # folder once. Copies keep their own path for the messages of merge problems.
        by_folder: dict[str, Placement] = {}
        placements: dict[tuple[int, str], list[tuple[str, Placement]]] = defaultdict(list)
        for path, h in new_map.items():
            b = tasks.of(path)
            if b is None:
                continue
            folder = path.rpartition("/")[0]
            row = sidecar_for(sidecars, path)
            pl = by_folder.get(folder) if row is None else None
            if pl is None:
                pl = place(path, b, row)
                if pl.problems:
                    problems += [Problem("layout", m, path, b.task_id) for m in pl.problems]
                elif row is None:
                    by_folder[folder] = pl
            placements[(b.task_id, h)].append((path, pl))

        merged_single: dict[int, tuple[dict[str, float | None], list[str]]] = {}

        def merge(task_type: str, copies: list[tuple[str, Placement]]):  # type: ignore[no-untyped-def]
            if len(copies) == 1:
                pl = copies[0][1]
                got = merged_single.get(id(pl))
                if got is None:
                    got = merged_single[id(pl)] = merge_image_labels(task_type, [pl])  # type: ignore[arg-type]
                return got
            return merge_image_labels(
                task_type,  # type: ignore[arg-type]
                [replace(pl, path=path) for path, pl in copies],
            )

        images_per_task: dict[int, int] = defaultdict(int)
        for task_id, _h in placements:
            images_per_task[task_id] += 1
        # {(task, image id): {label name: value}}; images placed alike share one dict.
        wanted: dict[tuple[int, int], dict[str, float | None]] = {}
        for (task_id, h), copies in placements.items():
            labels, merge_problems = merge(by_task[task_id].type, copies)
            if merge_problems:
                problems += [Problem("layout", m, None, task_id) for m in merge_problems]
            if labels:
                wanted[(task_id, hash_ids[h])] = labels
        known, summary_problems = _label_summary(
            conn, by_task, folder_labels, images_per_task, wanted.items()
        )
        problems += summary_problems
        as_ids: dict[int, dict[int, float | None]] = {}  # by id() of a shared dict
        new_rows: dict[tuple[int, int], dict[int, float | None]] = {}
        for (task_id, image_id), labels in wanted.items():
            converted = as_ids.get(id(labels))
            if converted is None:
                ltype = LABEL_TYPE[by_task[task_id].type]
                converted = {known[(n, ltype)]: v for n, v in labels.items()}
                as_ids[id(labels)] = converted
            new_rows[(task_id, image_id)] = converted
        old_rows = catalog_labels.local_image_labels(conn)

        # Journal label-level changes that no file change explains (sidecar edits).
        id_of = hash_ids.get
        touched = {id_of(c.hash) for c in file_changes if c.hash}  # image ids
        touched |= {id_of(c.old_hash) for c in file_changes if c.old_hash}
        touched |= {id_of(h) for c in file_changes for h in c.hashes}
        label_names = {v: k[0] for k, v in known.items()}
        # Only the (task, image) pairs whose labels changed are journalled and rewritten,
        # in key order: image_label is a WITHOUT ROWID table clustered on that key.
        dirty = [k for k, v in new_rows.items() if old_rows.get(k) != v]
        dirty += [k for k in old_rows if k not in new_rows]
        dirty.sort()
        layout_changes: list[ch.Change] = []
        # (A first scan's images are all touched by their file changes: none is left.)
        unexplained = [k for k in dirty if k[1] not in touched]
        id_to_hash = {v: k for k, v in hash_ids.items()} if unexplained else {}
        for key in unexplained:
            task_id, image_id = key
            h = id_to_hash.get(image_id)
            before, after = old_rows.get(key, {}), new_rows.get(key, {})
            if before.keys() == after.keys():
                kind = ch.VALUE_CHANGED
                detail = {
                    label_names[lid]: [before[lid], after[lid]]
                    for lid in after
                    if before[lid] != after[lid]
                }
            else:
                kind = ch.LABELS_CHANGED
                detail = {
                    "from": sorted(label_names[x] for x in before),
                    "to": sorted(label_names[x] for x in after),
                }
            layout_changes.append(ch.Change(kind, hash=h, task_id=task_id, detail=detail))

        catalog_labels.rewrite_local_image_labels(conn, dirty, old_rows, new_rows)
        return layout_changes, problems


def _label_summary(
    conn: sqlite3.Connection,
    by_task: dict[int, TaskBinding],
    folder_labels: dict[int, set[str]],
    images_per_task: dict[int, int],
    image_labels: Iterable[tuple[tuple[int, object], dict[str, float | None]]],
) -> tuple[dict[tuple[str, str], int], list[Problem]]:
    """What the layout pass records besides image_label rows: each task's labels (its
    label folders and every label an image carries; case twins among them are problems),
    their ids, the task_label rows and the counts `repo status` shows (computing them here
    keeps status stat-only). `image_labels`: ((task, image), {label: value}) per image;
    images placed alike share one dict, and what follows is done once a dict.
    Returns the label ids by (name, type), and the problems."""
    shared: dict[tuple[int, int], list] = {}  # (task, id(labels)) -> [labels, images]
    for (task_id, _), labels in image_labels:
        if labels:
            entry = shared.get((task_id, id(labels)))
            if entry is None:
                shared[(task_id, id(labels))] = [labels, 1]
            else:
                entry[1] += 1
    task_labels: dict[int, set[str]] = {t: set(v) for t, v in folder_labels.items()}
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    labelled: dict[int, int] = defaultdict(int)
    for (task_id, _), (labels, images) in shared.items():
        task_labels[task_id].update(labels)
        labelled[task_id] += images
        for name in labels:
            counts[task_id][name] += images
    problems = [
        Problem(
            "case_twins",
            "label folders differ only in case: "
            + ", ".join(repr(n) for n in group)
            + "; rename one so they are distinct (they are never merged)",
            None,
            task_id,
        )
        for task_id, names in task_labels.items()
        for group in case_twins(names)
    ]
    known = catalog_labels.ensure_labels(
        conn, _label_keys(by_task, task_labels), catalog_labels.label_ids(conn)
    )
    catalog_meta.set_meta(conn, "task_images", json.dumps(images_per_task, sort_keys=True))
    catalog_meta.set_meta(conn, "label_counts", json.dumps(counts, sort_keys=True))
    catalog_meta.set_meta(conn, "labelled_images", json.dumps(labelled, sort_keys=True))
    catalog_labels.replace_local_task_labels(
        conn,
        sorted(
            {
                (LOCAL, t, known[(n, LABEL_TYPE[by_task[t].type])])
                for t, names in task_labels.items()
                for n in names
            }
        ),
    )
    return known, problems


def _label_keys(
    by_task: dict[int, TaskBinding], task_labels: dict[int, set[str]]
) -> set[tuple[str, str]]:
    """The (name, type) of each task's labels: what the label table is keyed by."""
    return {(n, LABEL_TYPE[by_task[t].type]) for t, names in task_labels.items() for n in names}


class _LayoutStream:
    """A first scan's LOCAL labels, written as results arrive while the pool still
    hashes, not in the serial tail (see Scanner._scan).

    An image found once, in a folder that places it without a problem, gets its rows at
    once. Whatever is left over (a second copy of an image, a folder whose placement has
    a problem) is the layout pass's: it diffs what it derives against the rows already
    written, so the catalog ends the same either way. When nothing was left over, the
    layout pass is not needed, and finish() records the rest of what it would have.
    Only for a tree without sidecars, and a catalog without LOCAL label rows."""

    def __init__(
        self, conn: sqlite3.Connection, tasks: TaskLookup, folder_labels: dict[int, set[str]]
    ) -> None:
        self.conn = conn
        self.tasks = tasks  # the streamed journal's: _Writes.file_rows looks each file up
        self.by_task = {b.task_id: b for b in tasks.bindings}
        self.folder_labels = folder_labels
        self.known: dict[tuple[str, str], int] | None = None  # label ids, once in a write
        self.by_folder: dict[str, Placement | None] = {}  # None: its placement has problems
        self.labels_of: dict[int, dict[str, float | None]] = {}  # by id() of a Placement
        self.placed: dict[tuple[int, str], dict[str, float | None]] = {}  # (task, hash)
        self.files = 0  # valid files seen
        self.left_over = 0  # of which the layout pass must place

    def add(self, valid: list[_Valid]) -> None:
        if self.known is None:
            # Every label of a tree without sidecars is a label folder's: these are all
            # the labels the layout pass would create, in its order (ids as it gives them).
            needed = _label_keys(self.by_task, self.folder_labels)
            self.known = catalog_labels.ensure_labels(
                self.conn, needed, catalog_labels.label_ids(self.conn)
            )
        known, by_folder, placed = self.known, self.by_folder, self.placed
        self.files += len(valid)
        rows = []
        for path, digest, image_id, b in valid:
            if b is None:
                continue  # in no task: nothing to place
            folder = path.rpartition("/")[0]
            pl = by_folder.get(folder, _UNPLACED)
            if pl is _UNPLACED:
                pl = place(path, b, None)
                by_folder[folder] = pl = None if pl.problems else pl
            key = (b.task_id, digest)
            if pl is None or key in placed:
                self.left_over += 1
                continue
            labels = self.labels_of.get(id(pl))
            if labels is None:
                labels, problems = merge_image_labels(b.type, [pl])  # type: ignore[arg-type]
                if problems or any((n, LABEL_TYPE[b.type]) not in known for n in labels):
                    self.left_over += 1
                    continue
                self.labels_of[id(pl)] = labels
            placed[key] = labels
            ltype = LABEL_TYPE[b.type]
            rows += [(LOCAL, b.task_id, image_id, known[(n, ltype)], v) for n, v in labels.items()]
        catalog_labels.insert_image_labels(self.conn, rows)

    def finish(self, valid_files: int) -> list[Problem] | None:
        """The layout pass's problems, its other rows and its counts, when every one of
        the `valid_files` was placed here; None when the layout pass is needed."""
        if self.left_over or self.files != valid_files:
            return None
        images_per_task: dict[int, int] = defaultdict(int)
        for task_id, _h in self.placed:
            images_per_task[task_id] += 1
        _, problems = _label_summary(
            self.conn, self.by_task, self.folder_labels, images_per_task, self.placed.items()
        )
        return problems


_UNPLACED = Placement(None, None, (), None, {}, ())


# A valid examined file, as _Writes.file_rows hands it on: (path, content hash, image id,
# the task it belongs to, if any).
_Valid = tuple[str, str, int, TaskBinding | None]


class _HardLinks:
    """Names split by inode: one name per inode is read, its other names copy the result."""

    def __init__(self) -> None:
        self.unique: list[str] = []  # the first name of each inode, in the order given
        self.aliases: dict[str, list[str]] = defaultdict(list)  # its other names
        self._first_of_inode: dict[tuple[int, int], str] = {}

    def add(self, paths: Iterable[str], images: dict[str, Stat]) -> None:
        first_of_inode, unique = self._first_of_inode, self.unique
        for p in paths:
            st = images[p]
            key = (st[DEV], st[INODE])
            first = first_of_inode.get(key)
            if first is None:
                first_of_inode[key] = p
                unique.append(p)
            else:
                self.aliases[first].append(p)

    def forget_inodes(self) -> None:
        self._first_of_inode = {}  # ~15 MB at 100,000 files


class _EarlyHashing:
    """A first scan's hashing, fed by the walk folder by folder (see Scanner._scan).

    Every image of a first scan is hashed and decoded, so batches go to the pool as soon
    as the walk has listed enough files; the workers hash while the walk goes on. Hard
    links are told apart here, as `_examine` does: one name per inode is read."""

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.links = _HardLinks()
        self.submitted: dict[Future[list[Examined]], list[str]] = {}
        self._sent = 0  # links.unique[:_sent] are in the pool

    def walk_done(self) -> None:
        self.links.forget_inodes()  # not needed any more

    def feed(self, walked: WalkResult, new_paths: list[str]) -> None:
        self.links.add(new_paths, walked.images)
        unique = self.links.unique
        if len(unique) - self._sent < BATCH or len(unique) < POOL_THRESHOLD:
            return
        scanner = self.scanner
        if scanner._pool is None:
            from localrepo.scan.hashing import warm_up

            # Imported here, before the pool forks: forked workers inherit Pillow and
            # start on their first batch at once, instead of each importing it.
            warm_up()
            scanner._pool = scanner.executor_factory(scanner.workers)
            for _ in range(scanner.workers):
                scanner._pool.submit(warm_up)  # starts them (and imports, if not forked)
        from localrepo.scan.hashing import examine_batch

        root = str(scanner.root)
        while True:
            # The first batches are small, so that every worker starts soon; then big.
            size = BATCH if self._sent < BIG_BATCH * scanner.workers else BIG_BATCH
            if len(unique) - self._sent < size:
                break
            names = unique[self._sent : self._sent + size]
            fut = scanner._pool.submit(examine_batch, root, names, [True] * len(names))
            self.submitted[fut] = names
            self._sent += size


class _Writes:
    """The scan's one write transaction, opened on the first write (never in a dry run)."""

    def __init__(self, conn: sqlite3.Connection, now: int, dry_run: bool) -> None:
        self.conn = conn
        self.now = now
        self.dry_run = dry_run
        self.open = False
        self.hash_ids: dict[str, int] | None = None
        self.next_image_id = 0
        self.known_paths: Collection[str] = ()  # paths that have a file row already
        # A first scan's additions, journalled as results arrive (stream_additions).
        self.streamed = 0  # how many
        self._stream_paths: list[str] | None = None  # sorted: a path's rank is its id
        self._stream_changes: list[ch.Change | None] = []  # by rank: the diff, as it came
        self._first_id = 0
        self._tasks: TaskLookup | None = None
        self.layout: _LayoutStream | None = None  # a first scan's labels, as results arrive

    def stream_additions(self, paths: list[str], tasks: TaskLookup) -> None:
        """Journal each valid file's addition as its result arrives. Ids follow `paths`
        (sorted), so the journal reads in path order, as a scan's diff writes it."""
        if not self.dry_run:
            self._stream_paths, self._tasks = paths, tasks
            self._stream_changes = [None] * len(paths)

    def unstream(self) -> None:
        """Take back every streamed addition (their ids are a range of this scan's own)."""
        assert self._stream_paths is not None
        journal.take_back(self.conn, self._first_id, self._first_id + len(self._stream_paths) - 1)
        self.streamed = 0
        self._stream_changes = []

    def begin(self) -> None:
        if not self.open and not self.dry_run:
            catalog_db.begin(self.conn)
            self.open = True

    def commit(self) -> None:
        if self.open:
            catalog_db.commit(self.conn)
            self.open = False

    def rollback(self) -> None:
        if self.open:
            catalog_db.rollback(self.conn)
            self.open = False

    def file_rows(self, batch: list[Examined]) -> None:
        """Write the rows of examined files (and of their new images, and what a first
        scan streams: journal entries and labels), in one pass; skips CHANGED ones."""
        if self.dry_run:
            return
        conn = self.conn
        if self.hash_ids is None:
            self.hash_ids = catalog_images.image_ids_by_hash(conn)
            self.next_image_id = catalog_images.max_id(conn)
        hash_ids, now, next_id = self.hash_ids, self.now, self.next_image_id
        task_of = self._tasks.of if self._tasks is not None else None
        image_rows: list[tuple] = []
        file_rows: list[catalog_files.SignedFileRow] = []
        valid: list[_Valid] = []
        for ex in batch:
            reason, digest = ex.reason, ex.hash
            if reason is None and digest:
                image_id = hash_ids.get(digest)
                if image_id is None:
                    # Ids are handed out here: the scan holds the write lock, so no one
                    # else inserts images meanwhile, and no query is needed to learn them.
                    next_id += 1
                    image_id = hash_ids[digest] = next_id
                    image_rows.append((next_id, digest, ex.size, ex.width, ex.height, ex.format))
                valid.append((ex.path, digest, image_id, task_of and task_of(ex.path)))
            elif reason == CHANGED:
                continue
            else:
                image_id = None
            st = ex[1:6]  # (dev, inode, size, mtime_ns, ctime_ns)
            file_rows.append((ex.path, image_id, *st, now, reason, catalog_files.stat_sig(st)))
        self.next_image_id = next_id
        if image_rows:
            catalog_images.insert_new(conn, image_rows)
        if self._stream_paths is not None:
            self._journal_additions(valid)
        if self.layout is not None:
            self.layout.add(valid)
        catalog_files.write_file_rows(conn, file_rows, self.known_paths)

    def _journal_additions(self, valid: list[_Valid]) -> None:
        paths, slots = self._stream_paths, self._stream_changes
        assert paths is not None
        if not self._first_id:  # in the write transaction: no one else adds journal rows
            self._first_id = journal.next_id(self.conn)
        first_id, now = self._first_id, self.now
        rows = []
        for path, digest, _image_id, binding in valid:
            rank = bisect_left(paths, path)
            if rank < len(paths) and paths[rank] == path and slots[rank] is None:
                task_id = None if binding is None else binding.task_id
                slots[rank] = ch.Change(ch.ADDED, path, None, digest, None, task_id)
                rows.append((first_id + rank, now, task_id, path, digest))
        written = journal.add_streamed(self.conn, rows)
        self.streamed += written if rows else 0

    def streamed_changes(self, new_map: dict[str, str]) -> list[ch.Change] | None:
        """A first scan's diff, from what it journalled as results came: its additions,
        in path order, when they are exactly the valid files of `new_map` (what the diff
        of an empty catalog gives); None otherwise, and the diff decides."""
        if self._stream_paths is None or self.streamed != len(new_map):
            return None
        changes = [c for c in self._stream_changes if c is not None]
        if len(changes) != len(new_map) or any(new_map.get(c.path) != c.hash for c in changes):
            return None
        return changes

    def skipped_rows(self, skipped: dict[str, tuple[str, str | None]]) -> None:
        catalog_files.upsert_files(
            self.conn,
            [(p, None, 0, 0, 0, 0, 0, self.now, r[0]) for p, r in skipped.items()],
            self.known_paths,
        )


def _file_changes(
    old_map: dict[str, str],
    new_map: dict[str, str],
    invalid: dict[str, tuple[str, str | None]],
    bindings: list[TaskBinding],
) -> list[ch.Change]:
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


def _first_level_folders(
    walked: WalkResult, bindings: list[TaskBinding]
) -> Iterator[tuple[TaskBinding, str, str]]:
    """(task, folder path, its name) of every first-level folder of a task root."""
    roots = {b.root for b in bindings}
    for folder in sorted(walked.folders):
        if not folder or folder in roots:
            continue
        b = task_for(folder, bindings)
        if b is None:
            continue
        rel = relative_to_root(folder, b.root)
        if "/" not in rel:
            yield b, folder, rel


def _folder_labels(walked: WalkResult, bindings: list[TaskBinding]) -> dict[int, set[str]]:
    """First-level folders of each task root that name a label (empty ones included)."""
    out: dict[int, set[str]] = {b.task_id: set() for b in bindings}
    for b, _folder, name in _first_level_folders(walked, bindings):
        label = label_for_folder(name)
        if label:
            out[b.task_id].add(label)
    return out


def _refused_folders(walked: WalkResult, bindings: list[TaskBinding]) -> list[Problem]:
    """First-level folders of each task root that look like label folders but cannot
    round-trip through the naming rule (labelnames.py): reported, and their images held
    back by the sync engine (FOLDER_NAME_PROBLEM rows name them)."""
    out: list[Problem] = []
    for b, folder, name in _first_level_folders(walked, bindings):
        verdict = folder_verdict(name)
        if verdict.refused is not None:
            out.append(Problem(FOLDER_NAME_PROBLEM, verdict.message(folder), folder, b.task_id))
    return out


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


def _walk_scope(
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


def _label_folders(root: str, bindings: list[TaskBinding]) -> set[str]:
    """The first-level folders of every task root (what names a task's labels), as a
    full walk would find them: one listing per task root."""
    out: set[str] = set()
    for b in bindings:
        out |= walk(root, start=b.root, recursive=False).folders
    return out


def _keep_unseen(
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


def _hold_back(
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


def _worker_init() -> None:
    # A forked worker inherits the parent's heap: without this, its collections would
    # walk (and copy, page by page) every object of the parent.
    gc.freeze()


def _process_pool(workers: int) -> Executor:
    import multiprocessing as mp
    import threading
    from concurrent.futures import ProcessPoolExecutor

    if threading.active_count() == 1:
        # A single-threaded caller (the CLI) forks: fast, and the workers never re-import
        # the caller's main module. Forked workers end with os._exit, so they never close
        # the parent's SQLite connection.
        ctx = mp.get_context("fork")
    else:
        # With threads about (the daemon), fork could copy a lock held mid-operation;
        # forkserver starts workers from a clean, single-threaded server instead.
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["localrepo.scan.hashing"])
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init)
