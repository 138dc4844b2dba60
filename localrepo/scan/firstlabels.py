"""A large first scan's LOCAL labels, image by image from the file rows it has written
(scan/firstscan.py, step 2; the rules are layout.py's, design section 2).

Contract: for a catalog whose file rows are all this scan's, with no LOCAL label rows
and a tree without sidecars. `label_images` records what `layoutpass.derive_layout`
would (the image_label rows, each task's labels, the counts `repo status` shows) and
returns the problems it would (placements, merges of copies, case twins; the caller
puts the refused folders first), reading the valid files grouped by image
(catalog/files.each_valid_file_by_image) and holding, besides one image's copies, only
what is per folder (placements) or per set of labels (counts). It returns None when an
image's labels are not all its task's label folders (the whole layout pass must run:
it diffs against the rows written by then, so the catalog ends the same).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace

from localrepo.catalog import files as catalog_files
from localrepo.catalog import labels as catalog_labels
from localrepo.catalog.sides import LOCAL
from localrepo.layout import Placement, TaskBinding, merge_image_labels, place
from localrepo.scan.diff import TaskLookup
from localrepo.scan.layoutpass import LabelMap, label_keys, summarize_labels
from localrepo.scan.report import Problem
from localrepo.vocabulary import LABEL_TYPE

ROWS_PER_WRITE = 20_000  # image_label rows written per statement


class _Merges:
    """Each image's labels from its copies (layoutpass._merge_copies' rule); one copy
    placed by a folder shares that folder's merged labels, so most images cost a lookup."""

    def __init__(self) -> None:
        self._single: dict[int, tuple[LabelMap, list[str]]] = {}  # by id() of a Placement

    def merge(
        self, task_type: str, copies: list[tuple[str, Placement]]
    ) -> tuple[LabelMap, list[str]]:
        if len(copies) == 1:
            pl = copies[0][1]
            got = self._single.get(id(pl))
            if got is None:
                got = self._single[id(pl)] = merge_image_labels(task_type, [pl])  # type: ignore[arg-type]
            return got
        return merge_image_labels(
            task_type,  # type: ignore[arg-type]
            [replace(pl, path=path) for path, pl in copies],
        )


def label_images(
    conn: sqlite3.Connection, bindings: list[TaskBinding], folder_labels: dict[int, set[str]]
) -> list[Problem] | None:
    """Derive and write every image's LOCAL labels (see the module's contract)."""
    labeller = _Labeller(conn, bindings, folder_labels)
    current = None
    copies: dict[int, list[tuple[str, Placement]]] = {}
    for image_id, path in catalog_files.each_valid_file_by_image(conn):
        if image_id != current:
            if copies and not labeller.image(current, copies):  # type: ignore[arg-type]
                labeller.write()
                return None
            current, copies = image_id, {}
            if len(labeller.rows) >= ROWS_PER_WRITE:
                labeller.write()
        placed = labeller.placed(path)
        if placed is not None:
            copies.setdefault(placed[0], []).append((path, placed[1]))
    if copies and not labeller.image(current, copies):  # type: ignore[arg-type]
        labeller.write()
        return None
    labeller.write()
    _known, summary_problems = summarize_labels(
        conn, labeller.by_task, folder_labels, labeller.images_per_task, labeller.shared
    )
    return _in_path_order(labeller.place_problems) + labeller.merge_problems + summary_problems


class _Labeller:
    """What label_images holds: per folder (placements), per set of labels (counts),
    and the rows not written yet."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        bindings: list[TaskBinding],
        folder_labels: dict[int, set[str]],
    ) -> None:
        self.conn = conn
        self.tasks = TaskLookup(bindings)
        self.by_task = {b.task_id: b for b in bindings}
        # Every label of a tree without sidecars is a label folder's: created first, in
        # the order the layout pass creates them (scan/layoutstream.py does the same).
        self.known = catalog_labels.ensure_labels(
            conn, label_keys(self.by_task, folder_labels), catalog_labels.label_ids(conn)
        )
        self.by_folder: dict[str, Placement] = {}
        self.merges = _Merges()
        self.as_ids: dict[int, dict[int, float | None]] = {}  # by id() of a merged map
        self.place_problems: list[Problem] = []
        self.merge_problems: list[Problem] = []
        self.images_per_task: dict[int, int] = defaultdict(int)
        self.shared: dict[tuple[int, object], list] = {}  # (task, key of labels) -> [labels, n]
        self.rows: list[tuple[str, int, int, int, float | None]] = []

    def write(self) -> None:
        catalog_labels.insert_image_labels(self.conn, self.rows)
        self.rows = []

    def placed(self, path: str) -> tuple[int, Placement] | None:
        """(task, placement) of a valid file; None outside every task."""
        b = self.tasks.of(path)
        if b is None:
            return None
        folder = path.rpartition("/")[0]
        pl = self.by_folder.get(folder)
        if pl is None:
            pl = place(path, b, None)
            if pl.problems:
                self.place_problems += [Problem("layout", m, path, b.task_id) for m in pl.problems]
            else:
                self.by_folder[folder] = pl
        return b.task_id, pl

    def image(self, image_id: int, copies: dict[int, list[tuple[str, Placement]]]) -> bool:
        """Count one image in each task and queue its label rows; False for a label
        that is no label folder's."""
        for task_id, found in copies.items():
            self.images_per_task[task_id] += 1
            ttype = self.by_task[task_id].type
            labels, problems = self.merges.merge(ttype, found)
            if problems:
                self.merge_problems += [Problem("layout", m, None, task_id) for m in problems]
            if not labels:
                continue
            single = len(found) == 1
            converted = self.as_ids.get(id(labels)) if single else None
            if converted is None:
                ltype = LABEL_TYPE[ttype]
                if any((n, ltype) not in self.known for n in labels):
                    return False
                converted = {self.known[(n, ltype)]: v for n, v in labels.items()}
                if single:  # a folder's shared map: converted once
                    self.as_ids[id(labels)] = converted
            self.rows += [(LOCAL, task_id, image_id, lid, v) for lid, v in converted.items()]
            key: object = id(labels) if single else tuple(sorted(labels.items()))
            entry = self.shared.get((task_id, key))
            if entry is None:
                self.shared[(task_id, key)] = [labels, 1]
            else:
                entry[1] += 1
        return True


def _in_path_order(problems: Iterable[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.path or "")
