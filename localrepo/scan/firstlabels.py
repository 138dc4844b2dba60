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
from itertools import groupby
from operator import itemgetter

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
    tasks = TaskLookup(bindings)
    by_task = {b.task_id: b for b in bindings}
    # Every label of a tree without sidecars is a label folder's: created first, in the
    # order the layout pass creates them (scan/layoutstream.py does the same).
    known = catalog_labels.ensure_labels(
        conn, label_keys(by_task, folder_labels), catalog_labels.label_ids(conn)
    )
    by_folder: dict[str, Placement] = {}
    merges = _Merges()
    as_ids: dict[int, dict[int, float | None]] = {}  # by id() of a merged label map
    place_problems: list[Problem] = []
    merge_problems: list[Problem] = []
    images_per_task: dict[int, int] = defaultdict(int)
    shared: dict[tuple[int, object], list] = {}  # (task, key of the labels) -> [labels, n]
    rows: list[tuple[str, int, int, int, float | None]] = []
    files = catalog_files.each_valid_file_by_image(conn)
    for image_id, group in groupby(files, key=itemgetter(0)):
        copies: dict[int, list[tuple[str, Placement]]] = {}
        for _id, path in group:
            b = tasks.of(path)
            if b is None:
                continue
            folder = path.rpartition("/")[0]
            pl = by_folder.get(folder)
            if pl is None:
                pl = place(path, b, None)
                if pl.problems:
                    place_problems += [Problem("layout", m, path, b.task_id) for m in pl.problems]
                else:
                    by_folder[folder] = pl
            copies.setdefault(b.task_id, []).append((path, pl))
        for task_id, found in copies.items():
            images_per_task[task_id] += 1
            ttype = by_task[task_id].type
            labels, problems = merges.merge(ttype, found)
            if problems:
                merge_problems += [Problem("layout", m, None, task_id) for m in problems]
            if not labels:
                continue
            converted = as_ids.get(id(labels))
            if converted is None:
                ltype = LABEL_TYPE[ttype]
                if any((n, ltype) not in known for n in labels):
                    catalog_labels.insert_image_labels(conn, rows)
                    return None
                converted = {known[(n, ltype)]: v for n, v in labels.items()}
                if len(found) == 1:  # a folder's shared map: converted once
                    as_ids[id(labels)] = converted
            rows += [(LOCAL, task_id, image_id, lid, v) for lid, v in converted.items()]
            key: object = id(labels) if len(found) == 1 else tuple(sorted(labels.items()))
            entry = shared.get((task_id, key))
            if entry is None:
                shared[(task_id, key)] = [labels, 1]
            else:
                entry[1] += 1
        if len(rows) >= ROWS_PER_WRITE:
            catalog_labels.insert_image_labels(conn, rows)
            rows = []
    catalog_labels.insert_image_labels(conn, rows)
    _known, summary_problems = summarize_labels(
        conn, by_task, folder_labels, images_per_task, shared
    )
    return _in_path_order(place_problems) + merge_problems + summary_problems


def _in_path_order(problems: Iterable[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.path or "")
