"""The executor: carries out a plan, image by image, crash-safe.

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
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from localrepo.catalog import files as catalog_files
from localrepo.catalog import images as catalog_images
from localrepo.catalog import journal
from localrepo.catalog import labels as catalog_labels
from localrepo.catalog.db import transaction
from localrepo.catalog.states import LOCAL, REMOTE, SYNCED
from localrepo.errors import LocalrepoError
from localrepo.labelnames import folder_for_label
from localrepo.layout import TaskBinding, label_for_folder, relative_to_root
from localrepo.remote.api import RemoteAPI
from localrepo.remote.errors import (
    AuthError,
    NotFoundError,
    RemoteUnavailableError,
    ServerError,
)
from localrepo.scan.hashing import check_image, hash_bytes
from localrepo.sync import faults
from localrepo.sync import plan as P
from localrepo.sync.faults import crash_point
from localrepo.sync.localfs import FileChanged, LocalFS, Written
from localrepo.sync.names import file_name
from localrepo.sync.state import (
    HASH_PREFIX,
    LABEL_TYPE,
    META_HASH,
    META_NAME,
    RemoteSnapshot,
    list_remote_labels,
)

LOCAL_OPS = frozenset({P.DOWNLOAD, P.SET_LOCAL, P.TRASH_LOCAL})
REMOTE_IMAGE_OPS = frozenset({P.UPLOAD, P.SET_REMOTE, P.REMOVE_REMOTE})


class _Deferred(Exception):  # a signal, not an error
    """An upload met a labelled duplicate: this image's ops end here (see Executor)."""


@dataclass
class Outcome:
    uploaded: int = 0
    downloaded: int = 0
    relabelled_remote: int = 0
    relabelled_local: int = 0
    deleted_remote: int = 0
    unlinked_remote: int = 0
    trashed_local: int = 0
    labels_created: int = 0
    synced: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (what, reason)
    problems: list[str] = field(default_factory=list)
    fatal: LocalrepoError | None = None  # auth failure, server gone: stop the run
    # Uploads left for a run that lists the task (see Executor.defer_labelled_duplicates).
    deferred: list[str] = field(default_factory=list)

    def merge(self, other: Outcome) -> None:
        for name in (
            "uploaded",
            "downloaded",
            "relabelled_remote",
            "relabelled_local",
            "deleted_remote",
            "unlinked_remote",
            "trashed_local",
            "labels_created",
            "synced",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failed += other.failed
        self.problems += other.problems
        self.deferred += other.deferred
        self.fatal = self.fatal or other.fatal


@dataclass
class ImageResult:
    key: str
    hash: str | None  # the content hash (known after a download of a remote:<id> image)
    remote_id: str | None
    created_here: bool = False
    size: int | None = None
    dims: tuple[int, int, str] | None = None
    target: dict[str, float | None] = field(default_factory=dict)
    remote_done: bool = False  # the remote now holds `target`
    local_done: bool = False  # the disk now holds `target`
    local_changed: bool = False  # this run changed the disk for it
    deleted_remote: bool = False
    added_files: list[Written] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)
    error: str | None = None
    fatal: LocalrepoError | None = None
    counts: dict[str, int] = field(default_factory=dict)
    skipped: bool = False  # not started: the run was stopping
    link_later: dict[str, float | None] | None = None  # uploaded; labels go in bulk
    deferred: bool = False  # already on the remote with labels of the task: not linked


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
    ) -> None:
        """An upload whose bytes the remote holds already, with labels of this task that
        the plan did not see (another clone sent the same bytes meanwhile, or the plan
        was made without a listing: the watcher's push), is left unlinked: its remote
        id is recorded, its key is in `Outcome.deferred`, and the engine re-plans it
        from a listing (linking blind would give a multi_class image two categories).
        `share_labels`: a label of this name attached to another task may be adopted
        (the user asked for it; by default each task creates its own)."""
        self.conn = conn
        self.share_labels = share_labels
        self.client = client
        self.fs = fs
        self.binding = binding
        self.remote_task_id = remote_task_id
        self.snapshot = snapshot
        self.files = files
        self.noresize = noresize
        self.jobs = max(1, jobs)
        self.progress = progress
        self.clock = clock
        self.label_type = LABEL_TYPE[binding.type]
        self.label_ids = dict(snapshot.labels)  # name -> remote id
        self.stats: dict[str, tuple[int, int, int, int, int]] = {}  # read by run()
        self.remote_ids = catalog_images.remote_ids(conn)
        self._lock = threading.Lock()
        # Set by the first fatal error: images not started yet are skipped (a worker
        # takes its next image before the main thread can cancel it, and would spend a
        # whole retry budget on a server known to be gone).
        self._stopping = threading.Event()
        self._bulk: set[str] = set()
        self._attached_now: set[str] = set()  # see _task_label_ids
        self._attached_read = False

    # -- the run ----------------------------------------------------------------------------
    def run(self, plan: P.Plan) -> Outcome:
        out = Outcome()
        # The catalog's stat of the files the plan touches (the workers check them).
        keys = {op.key for op in plan.ops if op.key is not None}
        self.stats = catalog_files.stats_of(
            self.conn, [p for k in keys for p in self.files.get(k, ())]
        )
        journal_ids = self._journal(plan.ops)
        for op in plan.by_kind(P.ENSURE_LABEL):
            self._label_op(op, journal_ids[id(op)], out)
            if out.fatal:
                return out
        for op in plan.by_kind(P.MAKE_FOLDER):
            folder = self._folder(op.label or "")
            if folder is not None:
                self.fs.make_folder(folder)
            self._done([journal_ids[id(op)]])

        by_key: dict[str, list[P.Op]] = defaultdict(list)
        for op in plan.ops:
            if op.key is not None:
                by_key[op.key].append(op)
        # A plain upload links its labels later, many images per request (bulk update):
        # one request per image instead of two.
        self._bulk = {
            key
            for key, ops in by_key.items()
            if self.binding.type != "regression"
            and {op.kind for op in ops} == {P.UPLOAD, P.SET_BASE}
        }
        unlinked: dict[tuple[str, ...], list[ImageResult]] = defaultdict(list)
        failed_keys: set[str] = set()
        total = len(by_key)
        done = 0
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="sync") as pool:
            futures: dict[Future[ImageResult], str] = {
                pool.submit(self._image, key, ops): key for key, ops in by_key.items()
            }
            for fut in _as_completed(futures):
                key = futures[fut]
                result = fut.result()
                if result.skipped:
                    failed_keys.add(key)
                    continue
                if result.deferred:  # its journalled ops stay in flight until re-planned
                    self._commit_remote_id(result)
                    out.deferred.append(key)
                    continue
                ids = [journal_ids[id(op)] for op in by_key[key]]
                if result.error is None and result.link_later is not None:
                    self._commit_remote_id(result)
                    unlinked[tuple(sorted(result.link_later))].append(result)
                else:
                    self._commit(result, ids, out)
                    if result.error is not None:
                        failed_keys.add(key)
                done += 1
                if self.progress:
                    self.progress(done, total)
                if result.fatal is not None and out.fatal is None:
                    out.fatal = result.fatal
                    for other in futures:
                        other.cancel()
        if out.fatal:
            return out
        for names, results in sorted(unlinked.items()):
            self._bulk_link(names, results, by_key, journal_ids, out)
            if out.fatal:
                return out
        # Labels are detached once no image keeps them: images whose ops failed still do.
        still_used = {
            name
            for key in failed_keys
            for name in (self.snapshot.images[key].labels if key in self.snapshot.images else {})
        }
        for op in plan.by_kind(P.DETACH_LABEL):
            if op.label in still_used:
                self._done([journal_ids[id(op)]], "still used by an image that failed to sync")
                continue
            self._label_op(op, journal_ids[id(op)], out)
            if out.fatal:
                return out
        removed: set[str] = set()
        for op in plan.by_kind(P.REMOVE_FOLDER):
            folder = self._folder(op.label or "")
            if folder is not None and self.fs.remove_folder_if_empty(folder):
                removed.add(op.label or "")
            self._done([journal_ids[id(op)]])
        self._settle_task_labels(plan, removed)
        return out

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
                label_ids = [self._label_id(name) for name in names]
                crash_point("before_http")
                self.client.bulk_update_images(
                    images=[r.remote_id for r in chunk if r.remote_id], labels_add=label_ids
                )
                crash_point("after_http")
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

    def _settle_task_labels(self, plan: P.Plan, removed: set[str]) -> None:
        """Record as synced the task labels both sides hold now.

        The planner emits no op for a label both sides already have (say, after a clone
        made its folders), and MAKE_FOLDER / REMOVE_FOLDER do not touch the synced rows:
        without this the base never learns those labels, and a label later dropped on
        one side looks like a new label on the other (and is attached again).
        """
        remote = (set(self.snapshot.labels) | set(plan_labels(plan, P.ENSURE_LABEL))) - set(
            plan_labels(plan, P.DETACH_LABEL)
        )
        local_rows = catalog_labels.task_label_names(self.conn, self.binding.task_id, LOCAL)
        local = (local_rows | set(plan_labels(plan, P.MAKE_FOLDER))) - removed
        both = {name for name in remote & local if name in self.label_ids}
        with transaction(self.conn):
            for name in both:
                self._task_label(name, present=True)
            for name in removed - remote:  # gone from both sides (else: not agreed yet)
                label_id = self._label_row(name, self.label_ids.get(name))
                catalog_labels.detach(self.conn, SYNCED, self.binding.task_id, label_id)

    # -- journal ----------------------------------------------------------------------------
    def _journal(self, ops: list[P.Op]) -> dict[int, int]:
        """Every op, committed as pending before any side effect."""
        ids: dict[int, int] = {}
        now = self.clock()
        with transaction(self.conn):
            for op in ops:
                detail = {"target": dict(op.target)} if op.target else {}
                if op.label:
                    detail["label"] = op.label
                if op.delete_image:
                    detail["delete_image"] = True
                ids[id(op)] = journal.add_op(
                    self.conn, now, op.kind, self.binding.task_id, op.key, detail
                )
        return ids

    def _done(self, ids: list[int], error: str | None = None) -> None:
        with transaction(self.conn):
            self._mark(ids, error)

    def _mark(self, ids: list[int], error: str | None) -> None:
        journal.finish_ops(self.conn, ids, error, self.clock)

    # -- labels -----------------------------------------------------------------------------
    def _label_op(self, op: P.Op, journal_id: int, out: Outcome) -> None:
        name = op.label or ""
        try:
            if op.kind == P.ENSURE_LABEL:
                crash_point("before_http")
                label = self.client.ensure_task_label(
                    self.remote_task_id, name, self.label_type, share=self.share_labels
                )
                self.client.add_task_label(self.remote_task_id, label.id)
                crash_point("after_http")
                self.label_ids[name] = label.id
                with transaction(self.conn):
                    self._label_row(name, label.id)
                    self._task_label(name, present=True)
                    self._mark([journal_id], None)
                out.labels_created += 1
            else:
                label_id = self.label_ids.get(name)
                if label_id is not None:
                    self.client.remove_task_label(self.remote_task_id, label_id)
                with transaction(self.conn):
                    self._task_label(name, present=False)
                    self._mark([journal_id], None)
        except (AuthError, RemoteUnavailableError) as exc:
            if not is_fatal(exc):
                out.failed.append((f"label {name!r}", str(exc)))
                self._done([journal_id], str(exc))
                return
            out.fatal = exc
            self._done([journal_id], str(exc))
        except LocalrepoError as exc:
            out.failed.append((f"label {name!r}", str(exc)))
            self._done([journal_id], str(exc))

    def _label_row(self, name: str, remote_id: str | None) -> int:
        return catalog_labels.label_row(self.conn, name, self.label_type, remote_id)

    def _task_label(self, name: str, *, present: bool) -> None:
        label_id = self._label_row(name, self.label_ids.get(name))
        for state in (SYNCED, REMOTE):
            if present:
                catalog_labels.attach(self.conn, state, self.binding.task_id, label_id)
            else:
                catalog_labels.detach(self.conn, state, self.binding.task_id, label_id)

    def _folder(self, label: str) -> str | None:
        name = folder_for_label(label)
        if name is None:
            return None
        return f"{self.binding.root}/{name}" if self.binding.root else name

    # -- one image --------------------------------------------------------------------------
    def _image(self, key: str, ops: list[P.Op]) -> ImageResult:
        if self._stopping.is_set():
            return ImageResult(key, None, None, skipped=True)
        is_hash = not key.startswith(P.REMOTE_KEY_PREFIX)
        view = self.snapshot.images.get(key)
        remote_id = view.id if view else (self.remote_ids.get(key) if is_hash else None)
        result = ImageResult(key, key if is_hash else None, remote_id)
        base_op = next((op for op in ops if op.kind == P.SET_BASE), None)
        result.target = base_op.target_map if base_op else {}
        try:
            for op in ops:
                if op.kind == P.UPLOAD:
                    self._upload(result, op)
                elif op.kind == P.SET_REMOTE:
                    self._set_remote(result, op)
                elif op.kind == P.REMOVE_REMOTE:
                    self._remove_remote(result, op)
                elif op.kind == P.DOWNLOAD:
                    self._download(result, op)
                elif op.kind == P.SET_LOCAL:
                    self._set_local(result, op)
                elif op.kind == P.TRASH_LOCAL:
                    self._trash_local(result, op)
        except _Deferred:
            return result
        except (AuthError, RemoteUnavailableError) as exc:
            result.fatal = exc if is_fatal(exc) else None
            result.error = str(exc)
            if result.fatal is not None:
                self._stopping.set()
        except FileChanged as exc:
            result.error = str(exc)
        except LocalrepoError as exc:
            result.error = str(exc)
        except OSError as exc:
            result.error = f"{exc.strerror or exc} ({exc.filename or key})"
        kinds = {op.kind for op in ops}
        if not kinds & REMOTE_IMAGE_OPS:
            result.remote_done = True
        if not kinds & LOCAL_OPS:
            result.local_done = True
        return result

    def _source_file(self, key: str) -> str:
        paths = self.files.get(key) or []
        if not paths:
            raise LocalrepoError(f"no local file holds image {key[:12]}")
        return paths[0]

    def _upload(self, result: ImageResult, op: P.Op) -> None:
        path = self._source_file(result.key)
        self.fs.check(path, self.stats.get(path))
        data = self.fs.abs(path).read_bytes()
        if hash_bytes(data) != result.key:
            raise FileChanged(f"{path} changed since the last scan; not uploaded")
        meta = {META_HASH: HASH_PREFIX + result.key, META_NAME: path.rsplit("/", 1)[-1]}
        crash_point("before_http")
        image, created = self.client.upload_image(data, meta_data=meta, noresize=self.noresize)
        crash_point("after_http")
        result.remote_id = image.id
        result.created_here = created
        if not created:
            seen = {self.label_ids.get(name) for name in op.before_map}
            unseen = {lab.id for lab in image.labels} - seen
            if unseen and unseen & self._task_label_ids(fresh=bool(unseen - self._known_ids())):
                result.deferred = True
                raise _Deferred
        result.counts["uploaded"] = 1
        if result.key in self._bulk and op.kind == P.UPLOAD:
            result.link_later = op.target_map
            return
        self._link_labels(result.remote_id, {}, op.target_map)
        result.remote_done = True

    def _known_ids(self) -> set[str]:
        with self._lock:
            return set(self.label_ids.values()) | self._attached_now

    def _task_label_ids(self, *, fresh: bool) -> set[str]:
        """The ids of the labels attached to the task: those the plan knew, and with
        `fresh` those attached now (read once a run: a label another clone attached
        since the listing, say the category it gave the same bytes)."""
        if fresh and not self._attached_read:
            attached = {lab.id for lab in list_remote_labels(self.client, self.remote_task_id)}
            with self._lock:
                self._attached_now |= attached
                self._attached_read = True
        return self._known_ids()

    def _link_labels(
        self, image_id: str, before: dict[str, float | None], target: dict[str, float | None]
    ) -> None:
        for name in sorted(set(before) - set(target)):
            label_id = self.label_ids.get(name)
            if label_id is not None:
                try:
                    self.client.remove_image_label(image_id, label_id)
                except NotFoundError:
                    pass  # already unlinked
        for name, value in sorted(target.items()):
            label_id = self._label_id(name)
            if name not in before:
                self.client.add_image_label(image_id, label_id, value)
            elif before[name] != value and value is not None:
                self.client.update_image_value(image_id, label_id, value)

    def _label_id(self, name: str) -> str:
        with self._lock:
            label_id = self.label_ids.get(name)
        if label_id is None:  # planned with ENSURE_LABEL, which failed: cannot link
            raise LocalrepoError(f"label {name!r} does not exist on the server")
        return label_id

    def _set_remote(self, result: ImageResult, op: P.Op) -> None:
        if result.remote_id is None:
            self._upload(result, op)
            return
        crash_point("before_http")
        try:
            self._link_labels(result.remote_id, op.before_map, op.target_map)
        except NotFoundError:
            # The remote image is gone (deleted there meanwhile): upload it again.
            if not result.key.startswith(P.REMOTE_KEY_PREFIX) and self.files.get(result.key):
                self._upload(result, op)
                return
            raise
        crash_point("after_http")
        result.remote_done = True
        result.counts["relabelled_remote"] = 1

    def _remove_remote(self, result: ImageResult, op: P.Op) -> None:
        if result.remote_id is not None:
            crash_point("before_http")
            try:
                self._link_labels(result.remote_id, op.before_map, {})
                if op.delete_image:
                    self.client.delete_image(result.remote_id)
                    result.deleted_remote = True
            except NotFoundError:
                result.deleted_remote = op.delete_image
            crash_point("after_http")
        result.remote_done = True
        result.counts["deleted_remote" if result.deleted_remote else "unlinked_remote"] = 1

    # -- disk side --------------------------------------------------------------------------
    def _target_folders(self, target: dict[str, float | None]) -> list[tuple[str, str]]:
        out = []
        for name in sorted(target):
            folder = self._folder(name)
            if folder is None:
                raise LocalrepoError(f"label {name!r} cannot be a folder name; not placed")
            out.append((name, folder))
        return out

    def _download(self, result: ImageResult, op: P.Op) -> None:
        view = self.snapshot.images.get(result.key)
        if view is None:
            raise LocalrepoError(f"image {result.key[:12]} is not in the remote listing")
        data = self.client.download(view.img_path)
        reason, detail, dims = check_image(data)
        if reason is not None:
            raise LocalrepoError(f"remote image {view.id}: {reason} ({detail}); not downloaded")
        digest = hash_bytes(data)
        result.hash = digest
        result.size = len(data)
        result.dims = dims
        target = op.target_map
        folders = self._target_folders(target)
        name = file_name(view.meta_data.get(META_NAME), view.id, dims[2] if dims else None)
        _first_label, first_folder = folders[0]
        written = self.fs.write_new(first_folder, name, data)
        crash_point("after_replace")
        result.added_files.append(written)
        for _label, folder in folders[1:]:
            result.added_files.append(self.fs.link(written.path, folder, name))
        self._write_values(result, target)
        result.local_done = result.local_changed = True
        result.counts["downloaded"] = 1

    def _write_values(self, result: ImageResult, target: dict[str, float | None]) -> None:
        if self.binding.type != "regression":
            return
        placed = {w.path for w in result.added_files} | set(self.files.get(result.key, []))
        placed -= set(result.removed_files)
        for name, value in target.items():
            folder = self._folder(name)
            if folder is None:
                continue
            for path in sorted(placed):
                parent, _, fname = path.rpartition("/")
                if parent == folder:
                    self.fs.set_sidecar_values(folder, {fname: value})

    def _label_of_path(self, path: str) -> str | None:
        rel = relative_to_root(path, self.binding.root)
        head, sep, _ = rel.partition("/")
        if not sep:
            return None
        return label_for_folder(head)

    def _set_local(self, result: ImageResult, op: P.Op) -> None:
        target = op.target_map
        paths = list(self.files.get(result.key, []))
        for path in paths:
            self.fs.check(path, self.stats.get(path))
        by_label: dict[str | None, list[str]] = defaultdict(list)
        for path in paths:
            by_label[self._label_of_path(path)].append(path)
        folders = dict(self._target_folders(target))
        spare = list(by_label.get(None, []))  # unlabelled copies, free to move
        # Labels that lose this image: their copies may be moved to a new label first.
        leaving = [p for label, ps in by_label.items() if label and label not in target for p in ps]
        for name, folder in folders.items():
            if by_label.get(name):
                continue
            source = leaving.pop(0) if leaving else (spare.pop(0) if spare else None)
            if source is not None:
                moved = self.fs.move(source, folder, source.rsplit("/", 1)[-1])
                result.removed_files.append(source)
                result.added_files.append(moved)
            else:
                anchor = (result.added_files[0].path if result.added_files else None) or next(
                    (p for ps in by_label.values() for p in ps if p not in result.removed_files),
                    None,
                )
                if anchor is None:
                    raise LocalrepoError(f"no local file holds image {result.key[:12]}")
                result.added_files.append(self.fs.link(anchor, folder, anchor.rsplit("/", 1)[-1]))
        if leaving:
            crash_point("mid_relabel")
        for path in leaving:  # copies left in labels the image no longer has
            self.fs.trash(path)
            result.removed_files.append(path)
        self._write_values(result, target)
        result.local_done = result.local_changed = True
        result.counts["relabelled_local"] = 1

    def _trash_local(self, result: ImageResult, op: P.Op) -> None:
        self._confirm_remote_removal(result)
        for path in self.files.get(result.key, []):
            if self._label_of_path(path) is None:
                continue  # an unlabelled copy is not part of the task's remote state
            self.fs.check(path, self.stats.get(path))
            self.fs.trash(path)
            result.removed_files.append(path)
        result.local_done = result.local_changed = True
        result.counts["trashed_local"] = 1

    def _confirm_remote_removal(self, result: ImageResult) -> None:
        """Ask the server before deleting a local file for a remote delete.

        A paginated listing is no snapshot: an image can slip between pages while others
        edit the task. Only an image that is really gone, or really carries none of the
        task's labels any more, takes its local file to the trash.
        """
        remote_id = result.remote_id or self.remote_ids.get(result.key)
        if remote_id is None:
            return
        try:
            image = self.client.get_image(remote_id)
        except NotFoundError:
            return
        task_label_ids = set(self.label_ids.values())
        if any(lab.id in task_label_ids for lab in image.labels):
            raise LocalrepoError(
                f"remote image {remote_id} was missing from the listing but still carries "
                "labels of this task; its local file is left alone (the next sync sees it)"
            )

    # -- committing -------------------------------------------------------------------------
    def _commit_remote_id(self, result: ImageResult) -> None:
        """An upload's remote id, committed before its labels are linked: a crash in
        between leaves an image the next run relabels instead of uploading again."""
        with transaction(self.conn):
            catalog_images.set_remote_id(
                self.conn, result.hash, result.remote_id, result.created_here
            )

    def _commit(self, result: ImageResult, journal_ids: list[int], out: Outcome) -> None:
        conn = self.conn
        now = self.clock()
        with transaction(conn):
            image_id = None
            if result.hash is not None:
                image_id = catalog_images.record_synced(
                    conn,
                    result.hash,
                    result.size,
                    result.dims,
                    result.remote_id,
                    result.created_here,
                    result.deleted_remote,
                )
            # The engine's own file writes, so the next scan does not take them for edits.
            catalog_files.delete_files(conn, result.removed_files)
            if image_id is not None:
                catalog_files.upsert_files(
                    conn,
                    [
                        (
                            w.path,
                            image_id,
                            w.dev,
                            w.inode,
                            w.size,
                            w.mtime_ns,
                            w.ctime_ns,
                            now,
                            None,
                        )
                        for w in result.added_files
                    ],
                    known=[w.path for w in result.added_files],
                )
            ok = result.error is None
            if image_id is not None:
                if result.remote_done:
                    self._set_rows(REMOTE, image_id, result.target)
                if result.local_changed and ok:  # what the next scan will find on disk
                    self._set_rows(LOCAL, image_id, result.target)
                if ok:
                    self._set_rows(SYNCED, image_id, result.target)
            self._mark(journal_ids, result.error)
        if not ok:
            out.failed.append((self._describe(result), result.error or "failed"))
            return
        out.synced += 1
        for name, n in result.counts.items():
            setattr(out, name, getattr(out, name) + n)

    def _set_rows(self, state: str, image_id: int, labels: dict[str, float | None]) -> None:
        catalog_labels.set_image_labels(
            self.conn,
            state,
            self.binding.task_id,
            image_id,
            labels,
            self.label_type,
            self.label_ids,
        )

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


def _as_completed(futures: dict[Future[ImageResult], str]):  # type: ignore[no-untyped-def]
    from concurrent.futures import as_completed, wait

    if faults.hooks.reorder is not None:  # tests: take the finished images in another order
        wait(futures)
        done = [fut for fut in futures if not fut.cancelled()]
        yield from faults.hooks.reorder(done)
        return
    for fut in as_completed(futures):
        if fut.cancelled():
            continue
        yield fut
