"""The scanner: walk, stat cache, hash and check, derive labels, journal the changes.

A no-change scan is stat-only: one `os.scandir` walk compared against the stat cache
loaded in one query, and nothing written. Files whose stat changed (or whose cache row
is "racy") are hashed and decoded in a worker pool; the results, the re-derived LOCAL
labels and the journal entries for what changed are written in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from localrepo.catalog import store
from localrepo.catalog.db import transaction
from localrepo.catalog.models import LOCAL
from localrepo.layout import (
    TaskBinding,
    case_twins,
    label_for_folder,
    merge_image_labels,
    place,
    relative_to_root,
    resolve_sidecars,
    task_for,
)
from localrepo.scan import changes as ch
from localrepo.scan.hashing import CHANGED, Examined, examine, examine_batch
from localrepo.scan.walk import Stat, WalkResult, walk

# An mtime this close to the moment its cache row was written may hide a later edit of
# the same size within the same timestamp tick: re-hash it next time (git's racy rule).
RACY_NS = 2_000_000_000
POOL_THRESHOLD = 256  # fewer files than this are hashed in-process
BATCH = 64
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
    seconds: float = 0.0


def is_racy(c: store.CachedFile) -> bool:
    return c.mtime_ns >= c.cached_ns - RACY_NS


def _same_stat(c: store.CachedFile, s: Stat) -> bool:
    return (
        c.size == s.size
        and c.mtime_ns == s.mtime_ns
        and c.ctime_ns == s.ctime_ns
        and c.inode == s.inode
        and c.dev == s.dev
    )


def bindings_fingerprint(bindings: Sequence[TaskBinding]) -> str:
    text = json.dumps([(b.task_id, b.type, b.root) for b in bindings])
    return hashlib.sha1(text.encode()).hexdigest()


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

    # -- the run ---------------------------------------------------------------------------
    def scan(self, *, dry_run: bool = False) -> ScanReport:
        started = time.perf_counter()
        report = ScanReport()
        conn = self.conn
        bindings = store.load_bindings(conn)
        cached = store.load_files(conn)
        walked = walk(str(self.root))
        report.files = len(walked.images)

        unchanged: dict[str, str] = {}
        to_examine: list[str] = []
        for path, st in walked.images.items():
            c = cached.get(path)
            if c is not None and _same_stat(c, st) and not is_racy(c):
                if c.hash is not None and c.reason is None:
                    unchanged[path] = c.hash
                continue
            to_examine.append(path)  # new, changed, or racy: hash it (again)

        examined = self._examine(to_examine, cached, walked)
        report.hashed = len(examined)

        new_map = dict(unchanged)
        for path, c in cached.items():
            if c.reason is None and c.hash is not None and path in walked.images:
                new_map.setdefault(path, c.hash)  # kept until re-examined below
        updates: list[Examined] = []
        for ex in examined.values():
            if ex.reason == CHANGED:
                report.retry_later.append(ex.path)
                continue  # keep the old row and state; a later scan retries it
            updates.append(ex)
            if ex.reason is None and ex.hash is not None:
                new_map[ex.path] = ex.hash
            else:
                new_map.pop(ex.path, None)
        old_map = {p: c.hash for p, c in cached.items() if c.reason is None and c.hash}

        def label_of(path: str) -> tuple[int, str, str] | None:
            b = task_for(path, bindings)
            if b is None:
                return None
            rel = path[len(b.root) + 1 :] if b.root else path
            head, _, rest = rel.partition("/")
            if not rest or head.startswith(("_", ".")):
                return None
            return (b.task_id, (f"{b.root}/{head}" if b.root else head), rest)

        changes = ch.diff_files(old_map, new_map)
        changes = ch.fold_label_renames(changes, old_map, new_map, label_of)
        changes = [_with_task(c, bindings) for c in changes]

        # Invalid files: current view = unchanged invalid rows + new results + skipped.
        invalid: dict[str, tuple[str, str | None]] = {}
        for path, c in cached.items():
            if c.reason and path in walked.images and path not in examined:
                invalid[path] = (c.reason, None)
        for ex in updates:
            if ex.reason is not None:
                invalid[ex.path] = (ex.reason, ex.detail)
        invalid.update(walked.skipped)
        report.invalid = invalid
        # A valid image whose file turned invalid (corrupted, truncated by a copy in
        # progress) is journalled as such, not as a plain delete: the sync engine must not
        # take a broken copy for the user's wish to delete the image.
        changes = [
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
        gone = [p for p in cached if p not in walked.images and p not in walked.skipped]
        skipped_changed = {
            p: r
            for p, r in walked.skipped.items()
            if cached.get(p) is None or cached[p].reason != r[0]
        }

        # Layout: re-derive LOCAL labels when anything that feeds it changed.
        aux_now = {**walked.sidecars, **walked.ignore_stats}
        aux_before = {
            r[0]: (r[1], r[2], r[3])
            for r in conn.execute("SELECT path, size, mtime_ns, inode FROM aux_file")
        }
        aux_changed = {p: (s.size, s.mtime_ns, s.inode) for p, s in aux_now.items()} != aux_before
        fp = bindings_fingerprint(bindings)
        folder_labels = _folder_labels(walked, bindings)
        folders_fp = hashlib.sha1(
            json.dumps(sorted((t, sorted(v)) for t, v in folder_labels.items())).encode()
        ).hexdigest()
        need_layout = bool(
            changes
            or aux_changed
            or fp != store.get_meta(conn, "bindings_fp")
            or folders_fp != store.get_meta(conn, "folders_fp")
        )

        if dry_run:
            report.changes = changes
            report.seconds = time.perf_counter() - started
            return report

        now = self.clock()
        with transaction(conn):
            hash_ids = self._write_files(updates, gone, skipped_changed, now)
            if need_layout:
                layout_changes, problems = self._derive_layout(
                    walked, bindings, new_map, hash_ids, folder_labels, changes
                )
                changes.extend(layout_changes)
                report.problems = problems
                report.relabelled = True
                conn.execute("DELETE FROM scan_problem")
                conn.executemany(
                    "INSERT INTO scan_problem(task_id, path, kind, message) VALUES (?,?,?,?)",
                    [(p.task_id, p.path, p.kind, p.message) for p in problems],
                )
                conn.execute("DELETE FROM aux_file")
                conn.executemany(
                    "INSERT INTO aux_file(path, size, mtime_ns, inode, content_hash)"
                    " VALUES (?,?,?,?,'')",
                    [(p, s.size, s.mtime_ns, s.inode) for p, s in aux_now.items()],
                )
                store.set_meta(conn, "bindings_fp", fp)
                store.set_meta(conn, "folders_fp", folders_fp)
            for c in changes:
                store.add_journal(
                    conn,
                    c.kind,
                    task_id=c.task_id,
                    path=c.path,
                    old_path=c.old_path,
                    image_hash=c.hash,
                    detail=c.detail or None,
                    now_ns=now,
                )
            store.set_meta(conn, "last_scan_ns", str(now))
        report.changes = changes
        report.seconds = time.perf_counter() - started
        return report

    # -- hashing -----------------------------------------------------------------------------
    def _examine(
        self, paths: list[str], cached: dict[str, store.CachedFile], walked: WalkResult
    ) -> dict[str, Examined]:
        if not paths:
            return {}
        known_valid = {c.hash for c in cached.values() if c.reason is None and c.hash}
        by_inode = {
            (c.dev, c.inode, c.size): c.hash for c in cached.values() if c.reason is None and c.hash
        }
        # Hard links: one inode is read once per scan.
        first_of_inode: dict[tuple[int, int], str] = {}
        unique: list[str] = []
        aliases: dict[str, str] = {}
        for p in paths:
            st = walked.images[p]
            key = (st.dev, st.inode)
            if key in first_of_inode:
                aliases[p] = first_of_inode[key]
            else:
                first_of_inode[key] = p
                unique.append(p)
        # A known inode (a move, a touch) probably holds known bytes: hash first, decode
        # only if the hash turns out to be new.
        decode = [
            (walked.images[p].dev, walked.images[p].inode, walked.images[p].size) not in by_inode
            for p in unique
        ]
        results = self._run(unique, decode)
        redo = [
            p
            for p, d in zip(unique, decode, strict=True)
            if not d and results[p].reason is None and results[p].hash not in known_valid
        ]
        if redo:
            results.update(self._run(redo, [True] * len(redo)))
        for alias, original in aliases.items():
            r = results[original]
            results[alias] = Examined(
                alias,
                r.dev,
                r.inode,
                r.size,
                r.mtime_ns,
                r.ctime_ns,
                r.hash,
                r.width,
                r.height,
                r.format,
                r.reason,
                r.detail,
            )
        return results

    def _run(self, paths: list[str], decode: list[bool]) -> dict[str, Examined]:
        root = str(self.root)
        total = len(paths)
        out: dict[str, Examined] = {}
        if total < POOL_THRESHOLD or self.workers < 2:
            for i, (p, d) in enumerate(zip(paths, decode, strict=True)):
                out[p] = examine(root, p, decode=d)
                if self.progress and i % 50 == 0:
                    self.progress(i, total)
        else:
            batches = [
                (paths[i : i + BATCH], decode[i : i + BATCH]) for i in range(0, total, BATCH)
            ]
            with self.executor_factory(self.workers) as pool:
                futures = [pool.submit(examine_batch, root, b, d) for b, d in batches]
                done = 0
                for fut in futures:
                    for ex in fut.result():
                        out[ex.path] = ex
                    done += BATCH
                    if self.progress:
                        self.progress(min(done, total), total)
        if self.progress:
            self.progress(total, total)
        return out

    # -- writing -----------------------------------------------------------------------------
    def _write_files(
        self,
        updates: list[Examined],
        gone: list[str],
        skipped: dict[str, tuple[str, str | None]],
        now: int,
    ) -> dict[str, int]:
        conn = self.conn
        hash_ids = store.image_ids_by_hash(conn)
        new_images = {}
        for ex in updates:
            if ex.reason is None and ex.hash and ex.hash not in hash_ids:
                new_images[ex.hash] = (ex.hash, ex.size, ex.width, ex.height, ex.format)
        conn.executemany(
            "INSERT INTO image(hash, size, width, height, format, created_here)"
            " VALUES (?,?,?,?,?,0)",
            list(new_images.values()),
        )
        if new_images:
            hash_ids = store.image_ids_by_hash(conn)
        conn.executemany("DELETE FROM file WHERE path = ?", [(p,) for p in gone])
        rows = [
            (
                ex.path,
                hash_ids.get(ex.hash) if ex.reason is None and ex.hash else None,
                ex.dev,
                ex.inode,
                ex.size,
                ex.mtime_ns,
                ex.ctime_ns,
                now,
                ex.reason,
            )
            for ex in updates
        ]
        rows += [(p, None, 0, 0, 0, 0, 0, now, r[0]) for p, r in skipped.items()]
        conn.executemany(
            "INSERT INTO file(path, image_id, dev, inode, size, mtime_ns, ctime_ns, cached_ns,"
            " reason) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET"
            " image_id=excluded.image_id, dev=excluded.dev, inode=excluded.inode,"
            " size=excluded.size, mtime_ns=excluded.mtime_ns, ctime_ns=excluded.ctime_ns,"
            " cached_ns=excluded.cached_ns, reason=excluded.reason",
            rows,
        )
        return hash_ids

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
        placements: dict[tuple[int, str], list] = defaultdict(list)
        for path, h in new_map.items():
            b = task_for(path, bindings)
            if b is None:
                continue
            pl = place(path, b, sidecars.get(path))
            problems += [Problem("layout", m, path, b.task_id) for m in pl.problems]
            placements[(b.task_id, h)].append(pl)

        wanted: dict[tuple[int, int], dict[tuple[str, str], float | None]] = {}
        task_labels: dict[int, set[str]] = {t: set(v) for t, v in folder_labels.items()}
        for (task_id, h), pls in placements.items():
            ttype = by_task[task_id].type
            labels, merge_problems = merge_image_labels(ttype, pls)  # type: ignore[arg-type]
            problems += [Problem("layout", m, None, task_id) for m in merge_problems]
            if labels:
                ltype = LABEL_TYPE[ttype]
                wanted[(task_id, hash_ids[h])] = {(n, ltype): v for n, v in labels.items()}
                task_labels.setdefault(task_id, set()).update(labels)
        for task_id, names in task_labels.items():
            for group in case_twins(names):
                problems.append(
                    Problem(
                        "case_twins",
                        "label folders differ only in case: "
                        + ", ".join(repr(n) for n in group)
                        + "; rename one so they are distinct (they are never merged)",
                        None,
                        task_id,
                    )
                )

        known = store.label_ids(conn)
        needed = {key for labels in wanted.values() for key in labels}
        needed |= {
            (n, LABEL_TYPE[by_task[t].type]) for t, names in task_labels.items() for n in names
        }
        known = store.ensure_labels(conn, needed, known)
        new_rows = {
            key: {known[lk]: v for lk, v in labels.items()} for key, labels in wanted.items()
        }
        old_rows = store.local_image_labels(conn)

        # Journal label-level changes that no file change explains (sidecar edits).
        touched = {c.hash for c in file_changes if c.hash} | {
            c.old_hash for c in file_changes if c.old_hash
        }
        id_to_hash = {v: k for k, v in hash_ids.items()}
        label_names = {v: k[0] for k, v in known.items()}
        layout_changes: list[ch.Change] = []
        for key in sorted(set(old_rows) | set(new_rows)):
            before, after = old_rows.get(key, {}), new_rows.get(key, {})
            if before == after:
                continue
            task_id, image_id = key
            h = id_to_hash.get(image_id)
            if h in touched:
                continue
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

        conn.execute("DELETE FROM image_label WHERE state = ?", (LOCAL,))
        conn.executemany(
            "INSERT INTO image_label(state, task_id, image_id, label_id, value) VALUES (?,?,?,?,?)",
            [
                (LOCAL, t, i, lid, v)
                for (t, i), labels in new_rows.items()
                for lid, v in labels.items()
            ],
        )
        conn.execute("DELETE FROM task_label WHERE state = ?", (LOCAL,))
        conn.executemany(
            "INSERT INTO task_label(state, task_id, label_id) VALUES (?,?,?)",
            sorted(
                {
                    (LOCAL, t, known[(n, LABEL_TYPE[by_task[t].type])])
                    for t, names in task_labels.items()
                    for n in names
                }
            ),
        )
        return layout_changes, problems


def _with_task(c: ch.Change, bindings: list[TaskBinding]) -> ch.Change:
    if c.task_id is not None:
        return c
    b = task_for(c.path or c.old_path or "", bindings)
    if b is None:
        return c
    return ch.Change(c.kind, c.path, c.old_path, c.hash, c.old_hash, b.task_id, c.detail)


def _folder_labels(walked: WalkResult, bindings: list[TaskBinding]) -> dict[int, set[str]]:
    """First-level folders of each task root that name a label (empty ones included)."""
    out: dict[int, set[str]] = {b.task_id: set() for b in bindings}
    roots = {b.root for b in bindings}
    for folder in walked.folders:
        if not folder or folder in roots:
            continue
        b = task_for(folder, bindings)
        if b is None:
            continue
        rel = relative_to_root(folder, b.root)
        if "/" in rel:
            continue
        label = label_for_folder(rel)
        if label:
            out[b.task_id].add(label)
    return out


def _process_pool(workers: int) -> Executor:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # forkserver: safe when the caller has threads (the daemon does); the hashing module
    # is preloaded once, not imported per worker.
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["localrepo.scan.hashing"])
    return ProcessPoolExecutor(workers, mp_context=ctx)
