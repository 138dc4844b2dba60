"""The scan's second stage: hash and check files in a worker pool (docs/catalog.md, "The
scanner", step 3; the work per file is scan/hashing.py's).

Contract: `HashPool.examine(paths, ...)` returns {path: (hash, reason, detail)} for
every path, and hands each final result (`Examined`) to `on_final` as its batch comes
back, so the catalog writes overlap the hashing of later batches. One name per inode is
read (hard links copy its result). A file whose inode the catalog knows (a move, a touch)
is hashed first and decoded only if its bytes are new. A first scan may start hashing
while the walk is still listing (`early_hashing`): every file of it is decoded, and
`examine` collects those batches before submitting the rest. Fewer than POOL_THRESHOLD
files, or one worker, are hashed in this process. The pool is shut down by `shutdown`
(the scanner calls it whatever happens).
"""

from __future__ import annotations

import gc
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from localrepo.catalog import files as catalog_files
from localrepo.scan.hashing import Examined  # hashing imports xxhash lazily
from localrepo.scan.walk import DEV, INODE, SIZE, Stat, WalkResult

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

POOL_THRESHOLD = 256  # fewer files than this are hashed in-process
BATCH = 64  # files per round trip to a worker, at least...
BIG_BATCH = 256  # ...and at most: each round trip costs the main process ~0.3 ms
# What a scan keeps of a hashed file: (content hash, reason it is invalid, detail).
Outcome = tuple[str | None, str | None, str | None]

Progress = Callable[[int, int], None]  # (done, total)


class HashPool:
    """The scan's workers, started on the first batch that needs them."""

    def __init__(
        self,
        root: str,
        workers: int,
        executor_factory: Callable[[int], Executor],
        progress: Progress | None,
    ) -> None:
        self.root = root
        self.workers = workers
        self.executor_factory = executor_factory
        self.progress = progress
        self.pool: Executor | None = None
        self.early: EarlyHashing | None = None  # a first scan's hashing during the walk

    def early_hashing(self) -> EarlyHashing:
        """Start a first scan's hashing, fed by the walk (EarlyHashing.feed)."""
        self.early = EarlyHashing(self)
        return self.early

    def started(self) -> Executor:
        """The worker pool, started (and warmed up) on the first call."""
        if self.pool is None:
            from localrepo.scan.hashing import warm_up

            # Imported here, before the pool forks: forked workers inherit Pillow and
            # start on their first batch at once, instead of each importing it.
            warm_up()
            self.pool = self.executor_factory(self.workers)
            for _ in range(self.workers):
                self.pool.submit(warm_up)  # starts them (and imports, if not forked)
        return self.pool

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None

    def examine(
        self,
        paths: list[str],
        conn: sqlite3.Connection,
        hashes: dict[str, str],
        walked: WalkResult,
        on_final: Callable[[list[Examined]], None],
    ) -> dict[str, Outcome]:
        """Hash (and check) `paths`; final results go to `on_final` as they arrive, and
        only their outcome is kept (a full result per file is ~500 bytes at 100,000).
        `hashes`: the catalogued {path: hash} of valid files. With early hashing (all of
        `paths`), its batches are collected first."""
        if not paths:
            return {}
        known_valid = set(hashes.values())
        images = walked.images
        by_inode = (
            catalog_files.known_nodes(
                conn, {(images[p][DEV], images[p][INODE], images[p][SIZE]) for p in paths}
            )
            if hashes
            else set()
        )
        early = self.early
        # Hard links: one inode is read once per scan; its other names copy its result.
        if early is not None:
            unique, aliases = early.links.unique, early.links.aliases
        else:
            links = HardLinks()
            links.add(paths, walked.images)
            unique, aliases = links.unique, links.aliases
            del links
        # A known inode (a move, a touch) probably holds known bytes: hash first, and
        # decode only if the hash turns out to be new.
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

        root = self.root
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

        if self.pool is None:
            self.pool = self.executor_factory(self.workers)
        pool = self.pool
        # The caller's dict itself: each future is popped as it is collected, and a kept
        # one would keep its batch's results alive.
        futures = submitted if submitted is not None else {}
        futures.update((pool.submit(examine_batch, root, b, d), b) for b, d in batches)
        for fut in as_completed(futures):
            # The catalog writes overlap the hashing of later batches.
            # (popped: a kept future would keep its whole result alive)
            collect(fut.result(), futures.pop(fut))
        return out


class HardLinks:
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


class EarlyHashing:
    """A first scan's hashing, fed by the walk folder by folder (see Scanner._walk).

    Every image of a first scan is hashed and decoded, so batches go to the pool as soon
    as the walk has listed enough files; the workers hash while the walk goes on. Hard
    links are told apart here, as `HashPool.examine` does: one name per inode is read."""

    def __init__(self, hasher: HashPool) -> None:
        self.hasher = hasher
        self.links = HardLinks()
        self.submitted: dict[Future[list[Examined]], list[str]] = {}
        self._sent = 0  # links.unique[:_sent] are in the pool

    def walk_done(self) -> None:
        self.links.forget_inodes()  # not needed any more

    def feed(self, walked: WalkResult, new_paths: list[str]) -> None:
        self.links.add(new_paths, walked.images)
        unique = self.links.unique
        if len(unique) - self._sent < BATCH or len(unique) < POOL_THRESHOLD:
            return
        hasher = self.hasher
        pool = hasher.started()
        from localrepo.scan.hashing import examine_batch

        root = hasher.root
        while True:
            # The first batches are small, so that every worker starts soon; then big.
            size = BATCH if self._sent < BIG_BATCH * hasher.workers else BIG_BATCH
            if len(unique) - self._sent < size:
                break
            names = unique[self._sent : self._sent + size]
            fut = pool.submit(examine_batch, root, names, [True] * len(names))
            self.submitted[fut] = names
            self._sent += size


def _worker_init() -> None:
    # A forked worker inherits the parent's heap: without this, its collections would
    # walk (and copy, page by page) every object of the parent.
    gc.freeze()


def process_pool(workers: int) -> Executor:
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
