"""The executor: carries out a plan, image by image, crash-safe.

This module is the orchestration: the order of the ops, the worker threads, what
counts as done or failed. What is done on the server is sync/remote_side.py's, on disk
sync/disk_side.py's (over sync/localfs.py), in the catalog sync/catalog_side.py's.

Order of events for every op (design section 1, "the journal is an outbox"):
1. the op is written to the journal and committed before its side effect;
2. the side effect happens (HTTP with bounded concurrency, atomic file writes);
3. the remote id, the new synced state and the op's completion are committed in one
   transaction.

A crash between 1 and 3 leaves a journal row that is not done. The next run does not
replay it blindly: the planner re-derives what is left from state, and an upload whose
answer was lost is settled by the server's duplicate answer (idempotent by content),
a label by adopting the one of that name and type.

Workers (threads) do the I/O; only the calling thread touches the catalog.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from localrepo.catalog import files as catalog_files
from localrepo.catalog import images as catalog_images
from localrepo.errors import LocalrepoError
from localrepo.layout import TaskBinding
from localrepo.remote.api import RemoteAPI
from localrepo.remote.errors import (
    AuthError,
    NotFoundError,
    RemoteUnavailableError,
    ServerError,
)
from localrepo.scan.hashing import hash_bytes
from localrepo.sync import faults
from localrepo.sync import plan as P
from localrepo.sync.catalog_side import CatalogSide
from localrepo.sync.disk_side import DiskSide
from localrepo.sync.localfs import LocalFS
from localrepo.sync.plan import REMOTE_IMAGE_OPS
from localrepo.sync.remote_side import Deferred, RemoteSide
from localrepo.sync.results import ImageResult, Outcome
from localrepo.sync.snapshot import RemoteSnapshot
from localrepo.sync.stopping import StopRequest
from localrepo.vocabulary import LABEL_TYPE, REGRESSION


@dataclass
class _Collected:
    """What the executor keeps of the images' results for after the pool."""

    unlinked: dict[tuple[str, ...], list[ImageResult]] = field(
        default_factory=lambda: defaultdict(list)
    )  # uploads whose labels are linked in bulk, by label set
    failed_keys: set[str] = field(default_factory=set)  # not synced: they keep their labels


class Executor:
    def __init__(
        self,
        conn: sqlite3.Connection,
        client: RemoteAPI,
        fs: LocalFS,
        binding: TaskBinding,
        remote_task_id: str,
        snapshot: RemoteSnapshot,
        files: dict[str, list[str]],
        *,
        noresize: bool = True,
        jobs: int = 8,
        progress: Callable[[int, int], None] | None = None,
        clock: Callable[[], int] = time.time_ns,
        share_labels: bool = False,
        stop: StopRequest | None = None,
    ) -> None:
        """An upload whose bytes the remote holds already, with labels of this task that
        the plan did not see (another clone sent the same bytes meanwhile, or the plan
        was made without a listing: the watcher's push), is left unlinked: its remote
        id is recorded, its key is in `Outcome.deferred`, and the engine re-plans it
        from a listing (linking blind would give a multi_class image two categories).
        `share_labels`: a label of this name attached to another task may be adopted
        (the user asked for it; by default each task creates its own).
        `stop`: the user's request to stop (sync/stopping.py): no image starts after
        it, and the images in flight get its grace, then are abandoned."""
        self.conn = conn
        self.binding = binding
        self.snapshot = snapshot
        self.files = files
        self.jobs = max(1, jobs)
        self.progress = progress
        self.clock = clock
        self.label_type = LABEL_TYPE[binding.type]
        self.label_ids = dict(snapshot.labels)  # name -> remote id (the remote side's too)
        self.remote = RemoteSide(
            client,
            remote_task_id,
            self.label_type,
            self.label_ids,
            noresize=noresize,
            share_labels=share_labels,
        )
        self.disk = DiskSide(fs, binding, files)
        self.catalog = CatalogSide(conn, binding, self.label_type, self.label_ids, clock)
        self.remote_ids = catalog_images.remote_ids(conn)
        # Set by the first fatal error: images not started yet are skipped (a worker
        # takes its next image before the main thread can cancel it, and would spend a
        # whole retry budget on a server known to be gone).
        self._stopping = threading.Event()
        self.stop = stop or StopRequest()
        self._bulk: set[str] = set()
        # What each image op does (other kinds, SET_BASE, only record the target).
        self._steps: dict[str, Callable[[ImageResult, P.Op], None]] = {
            P.UPLOAD: self._upload,
            P.SET_REMOTE: self._set_remote,
            P.REMOVE_REMOTE: self.remote.remove,
            P.DOWNLOAD: self._download,
            P.SET_LOCAL: self._set_local,
            P.TRASH_LOCAL: self._trash_local,
        }

    # -- the run ----------------------------------------------------------------------------
    def run(self, plan: P.Plan) -> Outcome:
        """The plan's ops in their phases: labels attached, folders made, the images (on
        the workers), uploads linked in bulk, labels detached, folders removed."""
        out = Outcome()
        self.stop.executing = True  # from here on, a stop lets the work in flight end
        # The catalog's stat of the files the plan touches (the workers check them).
        keys = {op.key for op in plan.ops if op.key is not None}
        self.disk.stats = catalog_files.stats_of(
            self.conn, [p for k in keys for p in self.files.get(k, ())]
        )
        journal_ids = self.catalog.journal(plan.ops, self.files)
        self._label_ops(plan.by_kind(P.ENSURE_LABEL), journal_ids, out)
        if out.fatal:
            return out
        for op in plan.by_kind(P.MAKE_FOLDER):
            folder = self.disk.folder(op.label or "")
            if folder is not None:
                self.disk.fs.make_folder(folder)
            self.catalog.finish([journal_ids[id(op)]])

        by_key = ops_by_image(plan)
        # A plain upload links its labels later, many images per request (bulk update):
        # one request per image instead of two.
        self._bulk = {
            key
            for key, ops in by_key.items()
            if self.binding.type != REGRESSION and {op.kind for op in ops} == {P.UPLOAD, P.SET_BASE}
        }
        collected = self._images(by_key, journal_ids, out)
        if out.fatal:
            return out
        # Stopped or not, the finished uploads get their labels (a request per label
        # set): they are what the stopped run did.
        for names, results in sorted(collected.unlinked.items()):
            self._bulk_link(names, results, by_key, journal_ids, out)
            if out.fatal:
                return out
        if self.stop.requested:  # no new work: labels detached and folders removed later
            out.stopped = True
            return out
        # Labels are detached once no image keeps them: images whose ops failed still do.
        still_used = {
            name
            for key in collected.failed_keys
            for name in (self.snapshot.images[key].labels if key in self.snapshot.images else {})
        }
        self._label_ops(plan.by_kind(P.DETACH_LABEL), journal_ids, out, still_used)
        if out.fatal:
            return out
        removed: set[str] = set()
        for op in plan.by_kind(P.REMOVE_FOLDER):
            folder = self.disk.folder(op.label or "")
            if folder is not None and self.disk.fs.remove_folder_if_empty(folder):
                removed.add(op.label or "")
            self.catalog.finish([journal_ids[id(op)]])
        remote = (set(self.snapshot.labels) | set(plan_labels(plan, P.ENSURE_LABEL))) - set(
            plan_labels(plan, P.DETACH_LABEL)
        )
        self.catalog.settle_task_labels(remote, set(plan_labels(plan, P.MAKE_FOLDER)), removed)
        return out

    def _images(
        self, by_key: dict[str, list[P.Op]], journal_ids: dict[int, int], out: Outcome
    ) -> _Collected:
        """Every image's ops on the workers, each image committed here as it finishes;
        the first fatal error, or the user's stop, cancels the images not started. After
        a stop, the images in flight get its grace (sync/stopping.py), then are left to
        their threads: their journal rows stay in flight for the next run."""
        collected = _Collected()
        total = len(by_key)
        done = 0
        pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="sync")
        futures: dict[Future[ImageResult], str] = {
            pool.submit(self._image, key, ops): key for key, ops in by_key.items()
        }
        try:
            for fut in self._as_completed(futures):
                key = futures[fut]
                result = fut.result()
                ids = [journal_ids[id(op)] for op in by_key[key]]
                if not self._collect(key, result, ids, collected, out):
                    continue
                done += 1
                if self.progress:
                    self.progress(done, total)
                if result.fatal is not None and out.fatal is None:
                    out.fatal = result.fatal
                    for other in futures:
                        other.cancel()
        finally:
            left = [fut for fut in futures if not fut.done()]
            out.abandoned = len(left)
            collected.failed_keys.update(futures[fut] for fut in left)
            # Abandoned workers end on their own; nothing waits for them (the command
            # ends the process: cli/interrupt.py).
            pool.shutdown(wait=not left, cancel_futures=True)
        return collected

    def _as_completed(
        self, futures: dict[Future[ImageResult], str]
    ) -> Iterator[Future[ImageResult]]:
        """The futures as they finish; once the user asks to stop, the ones not started
        are cancelled and the others awaited for the stop's grace at most."""
        if faults.hooks.reorder is not None:  # tests: take the finished images in another order
            yield from _reordered(futures)
            return
        pending = set(futures)
        while pending:
            timeout = 0.1  # a signal handler cannot wake wait(): look again soon
            if self.stop.requested:
                self._stopping.set()
                for fut in pending:
                    fut.cancel()
                pending = {fut for fut in pending if not fut.cancelled()}
                timeout = min(timeout, self.stop.grace_left())
                if timeout <= 0:
                    return
            finished, pending = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            for fut in finished:
                if not fut.cancelled():
                    yield fut

    def _collect(
        self,
        key: str,
        result: ImageResult,
        journal_ids: list[int],
        collected: _Collected,
        out: Outcome,
    ) -> bool:
        """One image's result committed, or kept for later; False when it did not run
        to an end (skipped: the run was stopping; deferred: left for a re-plan)."""
        if result.skipped:
            collected.failed_keys.add(key)
            return False
        if result.deferred:  # its journalled ops stay in flight until re-planned
            self.catalog.remote_id(result)
            out.deferred.append(key)
            return False
        if result.error is None and result.link_later is not None:
            self.catalog.remote_id(result)
            collected.unlinked[tuple(sorted(result.link_later))].append(result)
        else:
            self._commit(result, journal_ids, out)
            if result.error is not None:
                collected.failed_keys.add(key)
        return True

    BULK_CHUNK = 500

    def _bulk_link(
        self,
        names: tuple[str, ...],
        results: list[ImageResult],
        by_key: dict[str, list[P.Op]],
        journal_ids: dict[int, int],
        out: Outcome,
    ) -> None:
        """Link one label set to many uploaded images, a chunk per request."""
        for start in range(0, len(results), self.BULK_CHUNK):
            chunk = results[start : start + self.BULK_CHUNK]
            error: str | None = None
            try:
                self.remote.bulk_link(names, [r.remote_id for r in chunk if r.remote_id])
            except (AuthError, RemoteUnavailableError) as exc:
                if is_fatal(exc):
                    out.fatal = exc
                error = str(exc)
            except LocalrepoError as exc:
                error = str(exc)
            for result in chunk:
                result.link_later = None
                result.remote_done = error is None
                if error is not None:
                    result.error = error
                self._commit(result, [journal_ids[id(op)] for op in by_key[result.key]], out)
            if out.fatal:
                return

    # -- labels -----------------------------------------------------------------------------
    def _label_ops(
        self,
        ops: list[P.Op],
        journal_ids: dict[int, int],
        out: Outcome,
        still_used: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        """The label ops of one phase, until a fatal error; a label `still_used` by an
        image that failed to sync is not detached."""
        for op in ops:
            if self.stop.requested:  # the journal keeps the rest for the next run
                return
            if op.label in still_used:
                self.catalog.finish(
                    [journal_ids[id(op)]], "still used by an image that failed to sync"
                )
                continue
            self._label_op(op, journal_ids[id(op)], out)
            if out.fatal:
                return

    def _label_op(self, op: P.Op, journal_id: int, out: Outcome) -> None:
        name = op.label or ""
        try:
            if op.kind == P.ENSURE_LABEL:
                self.label_ids[name] = self.remote.ensure_label(name)
                self.catalog.label_attached(name, journal_id)
                out.labels_created += 1
            else:
                self.remote.detach_label(name)
                self.catalog.label_detached(name, journal_id)
        except (AuthError, RemoteUnavailableError) as exc:
            if not is_fatal(exc):
                out.failed.append((f"label {name!r}", str(exc)))
                self.catalog.finish([journal_id], str(exc))
                return
            out.fatal = exc
            self.catalog.finish([journal_id], str(exc))
        except LocalrepoError as exc:
            out.failed.append((f"label {name!r}", str(exc)))
            self.catalog.finish([journal_id], str(exc))

    # -- one image (on a worker) ------------------------------------------------------------
    def _image(self, key: str, ops: list[P.Op]) -> ImageResult:
        if self._stopping.is_set() or self.stop.requested:
            return ImageResult(key, None, None, skipped=True)
        with self.stop.working():
            return self._image_ops(key, ops)

    def _image_ops(self, key: str, ops: list[P.Op]) -> ImageResult:
        result = self._new_result(key, ops)
        try:
            for op in ops:
                step = self._steps.get(op.kind)
                if step is not None:
                    step(result, op)
        except Deferred:
            return result
        except (AuthError, RemoteUnavailableError) as exc:
            result.fatal = exc if is_fatal(exc) else None
            result.error = str(exc)
            if result.fatal is not None:
                self._stopping.set()
        except LocalrepoError as exc:  # FileChanged among them
            result.error = str(exc)
        except OSError as exc:
            result.error = f"{exc.strerror or exc} ({exc.filename or key})"
        kinds = {op.kind for op in ops}
        if not kinds & REMOTE_IMAGE_OPS:
            result.remote_done = True
        return result

    def _new_result(self, key: str, ops: list[P.Op]) -> ImageResult:
        """The image's result before its ops: its hash (unless only its remote id is
        known), its remote id, the target its ops reach."""
        is_hash = not key.startswith(P.REMOTE_KEY_PREFIX)
        view = self.snapshot.images.get(key)
        remote_id = view.id if view else (self.remote_ids.get(key) if is_hash else None)
        result = ImageResult(key, key if is_hash else None, remote_id)
        base_op = next((op for op in ops if op.kind == P.SET_BASE), None)
        result.target = base_op.target_map if base_op else {}
        return result

    def _upload(self, result: ImageResult, op: P.Op) -> None:
        path, data = self.disk.source_bytes(result.key)
        link_later = result.key in self._bulk and op.kind == P.UPLOAD
        self.remote.upload(result, op, data, path.rsplit("/", 1)[-1], link_later=link_later)

    def _set_remote(self, result: ImageResult, op: P.Op) -> None:
        if result.remote_id is None:
            self._upload(result, op)
            return
        try:
            self.remote.relabel(result, op)
        except NotFoundError:
            # The remote image is gone (deleted there meanwhile): upload it again.
            if not result.key.startswith(P.REMOTE_KEY_PREFIX) and self.files.get(result.key):
                self._upload(result, op)
                return
            raise

    def _download(self, result: ImageResult, op: P.Op) -> None:
        view = self.snapshot.images.get(result.key)
        if view is None:
            raise LocalrepoError(f"image {result.key[:12]} is not in the remote listing")
        data, dims = self.remote.fetch(view)
        result.hash = hash_bytes(data)
        result.size = len(data)
        result.dims = dims
        self.disk.write_download(result, op.target_map, view, data)

    def _set_local(self, result: ImageResult, op: P.Op) -> None:
        self.disk.set_local(result, op.target_map)

    def _trash_local(self, result: ImageResult, op: P.Op) -> None:
        self.remote.confirm_removal(result.remote_id or self.remote_ids.get(result.key))
        self.disk.trash(result)

    # -- committing -------------------------------------------------------------------------
    def _commit(self, result: ImageResult, journal_ids: list[int], out: Outcome) -> None:
        self.catalog.image(result, journal_ids)
        if result.error is not None:
            out.failed.append((self._describe(result), result.error or "failed"))
            return
        out.synced += 1
        for name, n in result.counts.items():
            setattr(out, name, getattr(out, name) + n)

    def _describe(self, result: ImageResult) -> str:
        paths = self.files.get(result.key) or [w.path for w in result.added_files]
        if paths:
            return paths[0]
        return f"remote image {result.remote_id or result.key}"


# Statuses the client retries until it gives up: the server is down or overloaded.
_UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})


def is_fatal(exc: Exception) -> bool:
    """Stop the run (auth refused, server unreachable or overloaded), or fail one item?

    A plain 5xx answer (500: this request broke on the server, and was not retried) is
    the failure of that item only: the others go on, the run ends as a partial success
    (exit 6) and the next sync tries the item again.
    """
    if isinstance(exc, ServerError) and exc.status not in _UNAVAILABLE_STATUSES:
        return False
    return isinstance(exc, AuthError | RemoteUnavailableError)


def plan_labels(plan: P.Plan, kind: str) -> list[str]:
    return [op.label for op in plan.by_kind(kind) if op.label]


def ops_by_image(plan: P.Plan) -> dict[str, list[P.Op]]:
    """The plan's image ops by image key, in plan order."""
    by_key: dict[str, list[P.Op]] = defaultdict(list)
    for op in plan.ops:
        if op.key is not None:
            by_key[op.key].append(op)
    return by_key


def _reordered(futures: dict[Future[ImageResult], str]) -> Iterator[Future[ImageResult]]:
    wait(futures)
    done = [fut for fut in futures if not fut.cancelled()]
    assert faults.hooks.reorder is not None
    yield from faults.hooks.reorder(done)
