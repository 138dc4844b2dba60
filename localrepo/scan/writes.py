"""The scan's catalog writes: one transaction, opened on the first write, and what a
first scan streams into it while the pool hashes (docs/catalog.md, "The scanner").

Contract: `Writes` is the scan's only writer of file, image and journal rows (the layout
pass's label rows are scan/layoutpass.py's). `file_rows` writes each batch of results as
it comes back from the pool: the file rows, the images they introduce (ids handed out
here: the scan holds the write lock), and on a first scan each valid file's addition to
the journal (`stream_additions`, ids in path order) and its labels (`layout`). When the
streamed additions are exactly the scan's diff (`streamed_changes`) they are its journal
entries; otherwise `journal` takes them back and writes the diff. A dry run writes
nothing.
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_left
from collections.abc import Collection
from typing import TYPE_CHECKING

from localrepo.catalog import db as catalog_db
from localrepo.catalog import files as catalog_files
from localrepo.catalog import images as catalog_images
from localrepo.catalog import journal
from localrepo.layout import TaskBinding
from localrepo.scan import changes as ch
from localrepo.scan.hashing import CHANGED, Examined

if TYPE_CHECKING:
    from localrepo.scan.diff import TaskLookup
    from localrepo.scan.layoutstream import LayoutStream

# A valid examined file, as Writes.file_rows hands it on: (path, content hash, image id,
# the task it belongs to, if any).
Valid = tuple[str, str, int, TaskBinding | None]


class Writes:
    """The scan's one write transaction, opened on the first write (never in a dry run)."""

    def __init__(self, conn: sqlite3.Connection, now: int, dry_run: bool) -> None:
        self.conn = conn
        self.now = now
        self.dry_run = dry_run
        self.open = False
        self.hash_ids: dict[str, int] | None = None  # every image's, once loaded
        # Few files to examine: their images' ids are looked up, not all loaded (a change
        # of a few files in a large tree should cost what a few files cost).
        self.few_files = False
        self._some_ids: dict[str, int] | None = None
        # A large first scan (firstscan.py): each batch's ids looked up, none kept.
        self.ids_per_batch = False
        self.next_image_id = 0
        self.known_paths: Collection[str] = ()  # paths that have a file row already
        # A first scan's additions, journalled as results arrive (stream_additions).
        self.streamed = 0  # how many
        self._stream_paths: list[str] | None = None  # sorted: a path's rank is its id
        self._stream_changes: list[ch.Change | None] = []  # by rank: the diff, as it came
        self._first_id = 0
        self._tasks: TaskLookup | None = None
        self.layout: LayoutStream | None = None  # a first scan's labels, as results arrive

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
        hash_ids = self._image_ids(batch)
        now, next_id = self.now, self.next_image_id
        task_of = self._tasks.of if self._tasks is not None else None
        image_rows: list[tuple] = []
        file_rows: list[catalog_files.SignedFileRow] = []
        valid: list[Valid] = []
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

    def _image_ids(self, batch: list[Examined]) -> dict[str, int]:
        """The ids of the images the catalog has, by hash: every one, or with
        `few_files` or `ids_per_batch` at least those of this batch."""
        conn = self.conn
        if self.ids_per_batch:
            if self._some_ids is None:
                self._some_ids = {}
                self.next_image_id = catalog_images.max_id(conn)
            # In the scan's transaction: the images of earlier batches are found too.
            return catalog_images.ids_of(conn, {ex.hash for ex in batch if ex.hash})
        if not self.few_files:
            if self.hash_ids is None:
                self.hash_ids = catalog_images.image_ids_by_hash(conn)
                self.next_image_id = catalog_images.max_id(conn)
            return self.hash_ids
        if self._some_ids is None:
            self._some_ids = {}
            self.next_image_id = catalog_images.max_id(conn)
        some = self._some_ids
        wanted = {ex.hash for ex in batch if ex.hash and ex.hash not in some}
        if wanted:
            some.update(catalog_images.ids_of(conn, wanted))
        return some

    def _journal_additions(self, valid: list[Valid]) -> None:
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

    def record_gone(self, gone: list[str], skipped: dict[str, tuple[str, str | None]]) -> None:
        """Rows of files gone, and of files the walk skipped with a new reason; a damaged
        file's image is carried to where its bytes are now (catalog/files.carry_damage)."""
        conn = self.conn
        held = catalog_files.held_images_of(conn, gone) if gone else []
        catalog_files.delete_files(conn, gone)
        self.skipped_rows(skipped)
        if held:
            catalog_files.carry_damage(conn, held)

    def journal(self, changes: list[ch.Change], streamed: bool) -> None:
        """The scan's changes, in the transaction of its rows. `streamed`: a first scan
        journalled its valid files' additions as they came, and its diff is exactly those
        (one addition per valid file, no other file change): only the rest is written.
        Otherwise the streamed entries are taken back and the diff is what the journal
        keeps."""
        if streamed:
            changes_left = [c for c in changes if c.kind != ch.ADDED]
        else:
            if self.streamed:
                self.unstream()
            changes_left = changes
        journal.add_many(
            self.conn,
            [
                (c.kind, c.task_id, c.path, c.old_path, c.hash, c.detail or None)
                for c in changes_left
            ],
            now_ns=self.now,
        )
