"""A first scan's LOCAL labels, written as the pool's results arrive (docs/catalog.md,
"The scanner", step 4): the layout pass's work moved into the parallel part of the scan.

Contract: only for a first scan of a tree without sidecars, into a catalog without LOCAL
label rows (the scanner checks). `LayoutStream.add` is given each batch of valid files
(scan/writes.py, `Valid`) and writes the image_label rows of every image found once in
a folder that places it without a problem; `finish` says whether that was every valid
file, and then records the rest of what the layout pass would have (the task labels,
the counts, the problems: scan/layoutpass.label_summary) and returns the problems; None
means the layout pass runs, and diffs against the rows already written.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from typing import TYPE_CHECKING

from localrepo.catalog import labels as catalog_labels
from localrepo.catalog.sides import LOCAL
from localrepo.layout import Placement, merge_image_labels, place
from localrepo.scan.diff import TaskLookup
from localrepo.scan.layoutpass import LabelMap, label_keys, label_summary
from localrepo.scan.report import Problem
from localrepo.vocabulary import LABEL_TYPE

if TYPE_CHECKING:
    from localrepo.scan.writes import Valid


class LayoutStream:
    """A first scan's LOCAL labels, written as results arrive while the pool still
    hashes, not in the serial tail (see Scanner._walk).

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
        self.tasks = tasks  # the streamed journal's: Writes.file_rows looks each file up
        self.by_task = {b.task_id: b for b in tasks.bindings}
        self.folder_labels = folder_labels
        self.known: dict[tuple[str, str], int] | None = None  # label ids, once in a write
        self.by_folder: dict[str, Placement | None] = {}  # None: its placement has problems
        self.labels_of: dict[int, LabelMap] = {}  # by id() of a Placement
        self.placed: dict[tuple[int, str], LabelMap] = {}  # (task, hash)
        self.files = 0  # valid files seen
        self.left_over = 0  # of which the layout pass must place

    def add(self, valid: list[Valid]) -> None:
        if self.known is None:
            # Every label of a tree without sidecars is a label folder's: these are all
            # the labels the layout pass would create, in its order (ids as it gives them).
            needed = label_keys(self.by_task, self.folder_labels)
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
        _, problems = label_summary(
            self.conn, self.by_task, self.folder_labels, images_per_task, self.placed.items()
        )
        return problems


_UNPLACED = Placement(None, None, (), None, {}, ())
