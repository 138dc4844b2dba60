"""The executor's catalog side: what a sync run records, and when (design section 1,
"the journal is an outbox"; the tables are localrepo/catalog/'s).

Contract: only the executor's calling thread uses `CatalogSide`, never its workers.
`journal` commits every op of a plan as pending before any side effect, and returns
their journal ids; each later write commits an op's result together with its
completion (`finish`), in one transaction: a label attached or detached
(`label_attached`, `label_detached`), an image synced or failed (`image`: its image row
and remote id, the files the run wrote and removed, so the next scan does not take them
for edits, and its labels in the REMOTE, LOCAL and SYNCED states as far as each side
got). An upload's remote id is committed on its own before its labels are linked
(`remote_id`), and `settle_task_labels` records as synced the task labels both sides
hold at the end of a run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from localrepo.catalog import files as catalog_files
from localrepo.catalog import images as catalog_images
from localrepo.catalog import journal
from localrepo.catalog import labels as catalog_labels
from localrepo.catalog.db import transaction
from localrepo.catalog.sides import LOCAL, REMOTE, SYNCED
from localrepo.layout import TaskBinding

if TYPE_CHECKING:
    from localrepo.sync import plan as P
    from localrepo.sync.results import ImageResult


class CatalogSide:
    def __init__(
        self,
        conn: sqlite3.Connection,
        binding: TaskBinding,
        label_type: str,
        label_ids: dict[str, str],
        clock: Callable[[], int],
    ) -> None:
        """`label_ids`: name -> remote id, the executor's (labels created in the run
        are in it by the time they are recorded)."""
        self.conn = conn
        self.binding = binding
        self.label_type = label_type
        self.label_ids = label_ids
        self.clock = clock

    # -- the journal ------------------------------------------------------------------------
    def journal(
        self, ops: list[P.Op], files: Mapping[str, Sequence[str]] | None = None
    ) -> dict[int, int]:
        """Every op, committed as pending before any side effect; {id(op): journal id}.
        Each row keeps the state before and a file of the image (from `files`), so that
        `repo log` can say what happened to which file (cli/describe.py)."""
        ids: dict[int, int] = {}
        now = self.clock()
        files = files or {}
        with transaction(self.conn):
            for op in ops:
                detail: dict = {"target": dict(op.target)} if op.target else {}
                if op.before:
                    detail["before"] = dict(op.before)
                if op.label:
                    detail["label"] = op.label
                if op.delete_image:
                    detail["delete_image"] = True
                paths = files.get(op.key or "") or [None]
                ids[id(op)] = journal.add_op(
                    self.conn, now, op.kind, self.binding.task_id, op.key, detail, paths[0]
                )
        return ids

    def finish(self, ids: list[int], error: str | None = None) -> None:
        """Ops done (or failed, with `error`), committed."""
        with transaction(self.conn):
            self._mark(ids, error)

    def _mark(self, ids: list[int], error: str | None) -> None:
        journal.finish_ops(self.conn, ids, error, self.clock)

    # -- labels -----------------------------------------------------------------------------
    def label_attached(self, name: str, journal_id: int) -> None:
        with transaction(self.conn):
            self._label_row(name, self.label_ids[name])
            self._task_label(name, present=True)
            self._mark([journal_id], None)

    def label_detached(self, name: str, journal_id: int) -> None:
        with transaction(self.conn):
            self._task_label(name, present=False)
            self._mark([journal_id], None)

    def settle_task_labels(self, remote: set[str], made: set[str], removed: set[str]) -> None:
        """Record as synced the task labels both sides hold now: `remote` on the server,
        on disk the LOCAL rows and the folders `made`, less those `removed`.

        The planner emits no op for a label both sides already have (say, after a clone
        made its folders), and MAKE_FOLDER / REMOVE_FOLDER do not touch the synced rows:
        without this the base never learns those labels, and a label later dropped on
        one side looks like a new label on the other (and is attached again).
        """
        local_rows = catalog_labels.task_label_names(self.conn, self.binding.task_id, LOCAL)
        local = (local_rows | made) - removed
        both = {name for name in remote & local if name in self.label_ids}
        with transaction(self.conn):
            for name in both:
                self._task_label(name, present=True)
            for name in removed - remote:  # gone from both sides (else: not agreed yet)
                label_id = self._label_row(name, self.label_ids.get(name))
                catalog_labels.detach(self.conn, SYNCED, self.binding.task_id, label_id)

    def _label_row(self, name: str, remote_id: str | None) -> int:
        return catalog_labels.label_row(self.conn, name, self.label_type, remote_id)

    def _task_label(self, name: str, *, present: bool) -> None:
        label_id = self._label_row(name, self.label_ids.get(name))
        for state in (SYNCED, REMOTE):
            if present:
                catalog_labels.attach(self.conn, state, self.binding.task_id, label_id)
            else:
                catalog_labels.detach(self.conn, state, self.binding.task_id, label_id)

    # -- images -----------------------------------------------------------------------------
    def remote_id(self, result: ImageResult) -> None:
        """An upload's remote id, committed before its labels are linked: a crash in
        between leaves an image the next run relabels instead of uploading again."""
        with transaction(self.conn):
            catalog_images.set_remote_id(
                self.conn, result.hash, result.remote_id, result.created_here
            )

    def image(self, result: ImageResult, journal_ids: list[int]) -> None:
        """An image's result, with the completion of its ops (`journal_ids`)."""
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
