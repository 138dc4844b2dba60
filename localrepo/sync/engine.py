"""One sync run: scan, then per task list the remote, plan, and execute.

The imperative shell around the planner: it reads state (disk through the scanner, the
catalog, the remote listing), hands plain data to `plan_task`, and passes the plan to
the executor. Everything is journalled so that a crash at any point is recovered by the
next run.

The pure cores it calls, in order: `hold_back` (sync/holds.py, through
`plan_context.held_back`, which reads the catalog around the plan), `parse_max_delete`
(sync/guards.py), `plan_task` (sync/plan.py), `with_resolutions` and `filter_plan`
(sync/narrow.py), `stop_paths` (sync/guards.py); `complete_relabels` (sync/recovery.py)
for a relabel a crash cut short. What a run is asked and reports is sync/report.py's.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from localrepo.catalog import conflicts as catalog_conflicts
from localrepo.catalog import files as catalog_files
from localrepo.catalog import images as catalog_images
from localrepo.catalog import journal, quiet_marks
from localrepo.catalog import meta as catalog_meta
from localrepo.catalog import tasks as catalog_tasks
from localrepo.catalog.db import transaction
from localrepo.errors import LocalrepoError
from localrepo.ignore import ignore_rules_above
from localrepo.labelnames import folder_for_label
from localrepo.layout import TaskBinding, folder_label, task_for
from localrepo.remote.api import RemoteAPI
from localrepo.remote.errors import NotFoundError
from localrepo.repository import Repository
from localrepo.scan.scanner import Scanner, ScanReport
from localrepo.sync import changefeed, plan_context, quiet, quiet_check
from localrepo.sync import plan as P
from localrepo.sync.binding import TakeoverRefused, refusal, task_content
from localrepo.sync.execute import Executor
from localrepo.sync.guards import parse_max_delete, stop_paths
from localrepo.sync.localfs import FileChanged, LocalFS
from localrepo.sync.narrow import filter_plan, left_for_other_side, with_resolutions
from localrepo.sync.recovery import FileAt, InterruptedRelabel, complete_relabels
from localrepo.sync.report import SyncOptions, SyncReport, TaskReport
from localrepo.sync.snapshot import (
    CatalogStates,
    RemoteSnapshot,
    build_snapshot,
    catalog_snapshot,
    catalog_states,
    catalog_view_blocker,
    changed_keys,
    list_remote_labels,
    load_task_state,
)
from localrepo.sync.stopping import StopRequest
from localrepo.sync.twins import label_twins, settle_twins
from localrepo.vocabulary import (
    LABEL_TYPE,
    MULTI_CLASS,
    REGRESSION,
)

log = logging.getLogger("localrepo.sync")


class Engine:
    def __init__(
        self,
        repo: Repository,
        client: RemoteAPI,
        options: SyncOptions,
        *,
        progress: Callable[[str, int, int], None] | None = None,
        clock: Callable[[], int] = time.time_ns,
        stop: StopRequest | None = None,
    ) -> None:
        """`stop`: the user's request to stop (sync/stopping.py); once made, no task
        starts, and the executor winds the running one down."""
        self.repo = repo
        self.stop = stop or StopRequest()
        self.client = client
        self.options = options
        self.progress = progress
        self.clock = clock
        self._seen: list[tuple[str, str, str]] = []  # the running task's remote labels
        self._epoch = -1  # the catalog's write epoch as the running task's sync began

    def run(self) -> SyncReport:
        started = time.perf_counter()
        report = SyncReport()
        with self.repo.lock():
            conn = self.repo.connect()
            try:
                report.scan = self._scan(conn, dry_run=False, scope=self.options.scope)
                fs = LocalFS(self.repo.root)
                fs.remove_leftovers(report.scan.leftovers)
                bindings = catalog_tasks.load_bindings(conn)
                if not self.options.dry_run and self._finish_interrupted_relabels(
                    conn, fs, bindings
                ):
                    report.scan = self._scan(conn, dry_run=False)
                changed_disk = False
                for binding in bindings:
                    if self.stop.requested:
                        break
                    task_report = self._sync_task(conn, fs, binding, bindings, report.scan)
                    report.tasks.append(task_report)
                    if task_report.outcome.fatal is not None:
                        raise task_report.outcome.fatal
                    o = task_report.outcome
                    changed_disk |= bool(o.downloaded or o.relabelled_local or o.trashed_local)
                report.stopped = self.stop.requested
                if changed_disk and not self.options.dry_run:
                    # The engine's files are in the catalog already; re-derive the labels
                    # and counts from them (nothing is journalled as a user edit).
                    with transaction(conn):
                        catalog_meta.set_meta(conn, "bindings_fp", "")
                    if not report.stopped:  # else the next run's scan does it
                        self._scan(conn, dry_run=False)
            finally:
                conn.close()
        report.seconds = time.perf_counter() - started
        return report

    def _finish_interrupted_relabels(
        self, conn: sqlite3.Connection, fs: LocalFS, bindings: list[TaskBinding]
    ) -> bool:
        """Complete the local relabels of multi_class images that a crash cut short
        (sync/recovery.py names the core); each in-flight relabel is looked at once,
        by the run after it. True when the disk changed (the caller rescans)."""
        rows = journal.interrupted_ops(conn, P.SET_LOCAL)
        if not rows:
            return False
        by_task = {b.task_id: b for b in bindings}
        changed = False
        for binding in bindings:
            if binding.type != MULTI_CLASS:
                continue
            ops = [
                InterruptedRelabel(digest, frozenset(detail.get("target") or {}))
                for _id, task_id, digest, detail in rows
                if task_id == binding.task_id
            ]
            if not ops:
                continue
            nodes = catalog_files.file_nodes(conn, sorted({op.key for op in ops}))
            files = {
                key: [
                    FileAt(path, dev, inode)
                    for path, dev, inode in found
                    if task_for(path, bindings) is binding
                ]
                for key, found in nodes.items()
            }
            done = complete_relabels(ops, files, lambda path, b=binding: folder_label(path, b))
            where = {f.path: f for found in files.values() for f in found}
            for path in done.unlink:
                changed |= fs.unlink_second_name(path, where[path].dev, where[path].inode)
            stats = catalog_files.load_stats(conn) if done.trash else {}
            for path in done.trash:
                try:
                    fs.check(path, stats.get(path))
                    fs.trash(path)
                    changed = True
                except (FileChanged, OSError) as exc:
                    log.info("%s: left alone while finishing a relabel (%s)", path, exc)
        with transaction(conn):
            journal.supersede(conn, [row[0] for row in rows if row[1] in by_task], self.clock())
        return changed

    def _scan(
        self, conn: sqlite3.Connection, *, dry_run: bool, scope: frozenset[str] | None = None
    ) -> ScanReport:
        progress = None
        if self.progress is not None:
            outer = self.progress

            def progress(done: int, total: int) -> None:
                outer("Scanning", done, total)

        return Scanner(self.repo.root, conn, progress=progress).scan(
            dry_run=dry_run, hold=self.options.hold, scope=scope
        )

    # -- one task -------------------------------------------------------------------------
    def _remote_task(self, conn: sqlite3.Connection, binding: TaskBinding, rep: TaskReport) -> str:
        bound = catalog_tasks.remote_id(conn, binding.task_id)
        if bound:
            return str(bound)
        if self.options.mode == "pull":
            raise LocalrepoError(
                f"task '{binding.name}' is not on the server yet; 'repo push' or 'repo sync' "
                "creates it."
            )
        found = self.client.find_task(binding.name, binding.type)
        if found is not None and not self.options.join:
            content = task_content(self.client, found)
            if not content.empty:  # someone's work: never taken over silently
                raise TakeoverRefused(
                    refusal(
                        content,
                        url=self.repo.config().remote.url,
                        rename_hint=f"repo task rename '{binding.name}' NEW_NAME",
                    )
                )
        if found is None:
            if self.options.dry_run:
                return ""
            found = self.client.create_task(binding.name, binding.type)
            rep.created_remote_task = True
        if not self.options.dry_run:  # a dry run writes nothing to the catalog
            with transaction(conn):
                catalog_tasks.set_remote_id(conn, binding.task_id, found.id)
        return str(found.id)

    def _snapshot(
        self,
        conn: sqlite3.Connection,
        binding: TaskBinding,
        remote_task_id: str,
        rep: TaskReport,
        view: str,
        tried: quiet_check.Attempt | None = None,
    ) -> tuple[RemoteSnapshot, CatalogStates | None]:
        """The REMOTE view of the task: a listing of all its images, or (the watcher's
        push, `view` "catalog") the synced state plus a fresh look at each image whose
        local state changed; that falls back to a listing when it would not be exact.
        Also the synced and local states, when read. `tried`: what a quiet try read."""
        hash_by_remote_id = catalog_images.hashes_by_remote_id(conn)
        if not remote_task_id:
            return build_snapshot(remote_task_id, binding.type, [], [], hash_by_remote_id), None
        if view == "catalog":
            attached = self._visible(binding, list_remote_labels(self.client, remote_task_id), rep)
            states = catalog_states(conn, binding.task_id)
            base = states.base
            remote_ids = {h: rid for rid, h in hash_by_remote_id.items()}
            changed = changed_keys(base, states.local)
            fetch = sorted(k for k in changed if k in remote_ids)
            probe = build_snapshot(remote_task_id, binding.type, attached, [], {})
            blocker = catalog_view_blocker(
                probe.labels, states.base_labels, states.local_labels, len(fetch), True
            )
            if probe.twins:
                blocker = "labels of one name to settle"
            if blocker is None:
                fetched: dict[str, Any] = dict.fromkeys(changed)
                for key in fetch:
                    try:
                        fetched[key] = self.client.get_image(remote_ids[key])
                    except NotFoundError:
                        fetched[key] = None  # deleted there: the planner sees it gone
                rep.listed = False
                snap = catalog_snapshot(
                    remote_task_id,
                    binding.type,
                    attached,
                    fetched,
                    base,
                    remote_ids,
                    hash_by_remote_id,
                )
                return snap, states
            log.debug("%s: listing the remote task: %s", binding.name, blocker)
        if tried is not None and tried.attached is not None:
            attached = tried.attached
        else:
            attached = list_remote_labels(self.client, remote_task_id)
        twins = label_twins(lab for lab in attached if lab.type == LABEL_TYPE[binding.type])
        if twins and not self.options.dry_run and self.options.mode != "pull":
            settled = settle_twins(
                self.client, remote_task_id, twins, value_labels=binding.type == REGRESSION
            )
            log.info(
                "%s: labels of one name: %d images moved onto the oldest, %s detached",
                binding.name,
                settled.moved,
                settled.detached or "none",
            )
            gone = {t.id for g in twins for t in g.others if g.name in (settled.detached or [])}
            attached = [lab for lab in attached if lab.id not in gone]
        self._seen = [(lab.id, lab.name, lab.type) for lab in attached]
        attached = self._visible(binding, attached, rep)
        label_ids = [lab.id for lab in attached]
        known = None
        if tried is not None and tried.changes is not None and tried.changes[1] == tuple(label_ids):
            known = (tried.changes[0], tried.changes[2])
        images, rep.from_feed = changefeed.task_images(
            conn,
            self.client,
            binding.task_id,
            self._source(remote_task_id, label_ids),
            label_ids,
            record=not self.options.dry_run,
            known=known,
        )
        snap = build_snapshot(remote_task_id, binding.type, attached, images, hash_by_remote_id)
        return snap, None

    def _source(self, remote_task_id: str, label_ids: list[str] | Any) -> str:
        """The feed source key of a task's copy (sync/changefeed.py)."""
        remote = self.repo.config().remote
        # The URL the client really talks to (a command's --url, a proxy), else the
        # configured one: a copy is only read back from where it was listed.
        url = str(getattr(self.client, "base_url", "") or remote.url or "")
        return changefeed.source_key(url, remote.workspace, remote_task_id, list(label_ids))

    def _try_quiet(
        self, conn: sqlite3.Connection, binding: TaskBinding, remote_id: str, scan: ScanReport
    ) -> quiet_check.Attempt:
        def visible(labels: list[Any]) -> list[Any] | None:
            probe = TaskReport(binding.name, remote_id)
            shown = self._visible(binding, labels, probe)
            return None if probe.problems else shown

        shape = quiet_check.shape(self.options, scan, "listing", self.stop.requested)
        return quiet_check.attempt(
            conn,
            self.client,
            binding,
            remote_id,
            self.options,
            eligible=quiet.run_eligible(shape),
            visible=visible,
            source=lambda ids: self._source(remote_id, ids),
        )

    def _settle_mark(
        self, conn: sqlite3.Connection, binding: TaskBinding, scan: ScanReport, view: str,
        rep: TaskReport, full_plan_empty: bool,
    ) -> None:  # fmt: skip
        shape = quiet_check.shape(self.options, scan, view, self.stop.requested)
        result, opts = quiet_check.result_of(rep, full_plan_empty), self.options
        quiet_check.settle(conn, binding.task_id, shape, result, self._seen, opts, self._epoch)

    def _visible(self, binding: TaskBinding, attached: list[Any], rep: TaskReport) -> list[Any]:
        """The task's labels whose folders the scanner can see. A label whose folder the
        user's ignore rules hide is left alone and reported: its downloads would be
        invisible here, and the next sync would take them for deletes. (Its images then
        count as carrying another task's label: never deleted from here.)"""
        rules = ignore_rules_above(self.repo.root, binding.root)
        if rules is None:
            return attached
        out = []
        for lab in attached:
            folder = folder_for_label(lab.name)
            path = f"{binding.root}/{folder}" if binding.root else folder
            hit = rules.match(path, True) if folder else None
            if hit is None:
                out.append(lab)
                continue
            rep.problems.append(
                f"remote label {lab.name!r} would live in {path}/, which {hit.source} "
                f"(line {hit.line}: {hit.pattern}) ignores; its images are left alone. "
                "Change the ignore rule, or rename the label on the server."
            )
        return out

    def _sync_task(
        self,
        conn: sqlite3.Connection,
        fs: LocalFS,
        binding: TaskBinding,
        bindings: list[TaskBinding],
        scan: ScanReport,
        view: str | None = None,
        relisted: bool = False,
    ) -> TaskReport:
        opts = self.options
        view = view or opts.remote_view
        rep = TaskReport(binding.name, None)
        if not fs.abs(binding.root).is_dir() if binding.root else not self.repo.root.is_dir():
            raise LocalrepoError(
                f"the folder of task '{binding.name}' ({binding.root or '.'}/) is missing; "
                "nothing was synced. Restore it, or unbind the task."
            )
        self._epoch = quiet_marks.epoch(conn)  # before reading anything of the task
        remote_task_id = self._remote_task(conn, binding, rep)
        rep.remote_id = remote_task_id or None
        self._seen = []
        tried = None
        if remote_task_id and view == "listing":
            tried = self._try_quiet(conn, binding, remote_task_id, scan)
            if tried.in_sync:  # in sync: nothing to load, plan or do (sync/quiet.py)
                log.debug("%s: quiet: nothing changed since the last sync", binding.name)
                rep.plan, rep.quiet, rep.from_feed = P.Plan(), True, True
                return rep
            log.debug("%s: the full path: %s", binding.name, tried.why)
        snapshot, states = self._snapshot(conn, binding, remote_task_id, rep, view, tried)
        rep.problems += snapshot.problems
        rep.twins_left = snapshot.twins
        if not opts.dry_run:
            plan_context.adopt_remote_ids(conn, snapshot.images)
        state, files = load_task_state(conn, binding, bindings, snapshot, states=states)
        state, rep.held, refusals = plan_context.held_back(conn, binding, state, files)
        rep.problems += refusals
        absolute, fraction = parse_max_delete(opts.max_delete)
        plan = P.plan_task(
            state, opts.policy, max_delete=absolute, max_delete_fraction=fraction, force=opts.force
        )
        for side, keys in plan_context.decided(conn, binding, opts.mode).items():
            plan = with_resolutions(plan, state, keys, side)
        full_plan = plan
        plan = filter_plan(plan, opts.mode)
        rep.left_for_other_side = left_for_other_side(full_plan, plan)
        rep.plan = plan
        rep.paths = plan_context.plan_paths(conn, binding, plan, files, snapshot)
        rep.conflicts = plan.conflicts
        rep.waiting = plan_context.waiting(conn, binding, opts.mode)
        rep.stop = plan.stop
        if plan.stop is not None:
            gone = [k for k in plan.stop.keys if k not in files]
            rep.stop_paths = stop_paths(plan.stop, files, journal.last_paths(conn, gone))
        if not opts.dry_run:
            self._record_conflicts(conn, binding, plan, files)
        empty = full_plan.is_empty
        if plan.stop is not None or opts.dry_run:
            self._settle_mark(conn, binding, scan, view, rep, empty)
            return rep
        if self.stop.requested:  # stopped while listing or planning: nothing started
            rep.outcome.stopped = True
            self._settle_mark(conn, binding, scan, view, rep, empty)
            return rep
        progress = None
        if self.progress is not None:
            outer = self.progress

            def progress(done: int, total: int) -> None:
                outer(f"Syncing {binding.name}", done, total)

        executor = Executor(
            conn,
            self.client,
            fs,
            binding,
            remote_task_id,
            snapshot,
            files,
            noresize=opts.noresize,
            jobs=opts.jobs,
            progress=progress,
            clock=self.clock,
            share_labels=opts.share_labels,
            stop=self.stop,
        )
        rep.outcome = executor.run(plan)
        stopped = rep.outcome.stopped or self.stop.requested
        if rep.outcome.deferred and rep.outcome.fatal is None and not relisted and not stopped:
            # An upload met these bytes on the remote, already labelled in this task
            # (another clone sent them): only a listing shows how to merge that. The
            # remote ids are recorded; the listing run picks the images up by them.
            log.info(
                "%s: %d new image(s) are on the remote already; listing the task",
                binding.name,
                len(rep.outcome.deferred),
            )
            again = self._sync_task(
                conn, fs, binding, bindings, scan, view="listing", relisted=True
            )
            again.outcome.merge(rep.outcome)
            again.outcome.deferred = []
            return again
        if not rep.outcome.failed and rep.outcome.fatal is None and not stopped:
            with transaction(conn):  # the scanner's observations are now on both sides
                journal.observations_synced(conn, binding.task_id, self.clock())
                journal.supersede_in_flight(conn, binding.task_id, self.clock())
        self._settle_mark(conn, binding, scan, view, rep, empty)
        return rep

    def _record_conflicts(
        self,
        conn: sqlite3.Connection,
        binding: TaskBinding,
        plan: P.Plan,
        files: dict[str, list[str]],
    ) -> None:
        now = self.clock()
        ids = catalog_images.image_ids_by_hash(conn)
        with transaction(conn):
            catalog_conflicts.record(
                conn,
                binding.task_id,
                ids,
                [
                    (
                        c.key,
                        c.field,
                        (files.get(c.key) or [None])[0],
                        c.base,
                        c.local,
                        c.remote,
                        c.resolution,
                    )
                    for c in plan.conflicts
                ],
                now,
            )
