"""The layout pass for a few changed files (docs/catalog.md, "The scanner", step 4): the
LOCAL labels of only the images the scan's file changes touched, so that a change of a
hundred files in a tree of a million costs what a hundred files cost.

Contract: `patch` records exactly what `layoutpass.derive_layout` would, or returns None
and records nothing (the scanner then runs the whole layout pass). It goes ahead only
when nothing but files changed (`LayoutCheck.files_only`: no sidecar, ignore file, task
binding or label folder changed), the tree has no sidecars, the catalog holds no problem
but the refused folders' (which `record` writes again), and every image the changes
touch is placed, with all its copies, without a problem and into labels its task's label
folders name. Under those conditions every other image's labels, each task's labels and
the case twins among them are what they were, so the full pass would change only the
touched images' rows and the counts by their difference: that is what `patch` writes.
No label-level change is left unexplained (every touched image has a file change), so
it returns no changes. The pure part is `placed_labels` and `count_delta`.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace

from localrepo.catalog import files as catalog_files
from localrepo.catalog import images as catalog_images
from localrepo.catalog import labels as catalog_labels
from localrepo.catalog import meta as catalog_meta
from localrepo.catalog import problems as catalog_problems
from localrepo.catalog.problems import FOLDER_NAME_PROBLEM
from localrepo.layout import Placement, TaskBinding, merge_image_labels, place
from localrepo.scan import changes as ch
from localrepo.scan.diff import TaskLookup
from localrepo.scan.layoutpass import LabelMap, LayoutCheck
from localrepo.scan.statpass import FEW_FILES, StatPass
from localrepo.scan.walk import WalkResult
from localrepo.vocabulary import LABEL_TYPE

Key = tuple[int, str]  # (task id, content hash)


def touched_hashes(changes: Iterable[ch.Change]) -> set[str]:
    """The content hashes whose files the changes add, remove or move."""
    out: set[str] = set()
    for c in changes:
        if c.hash:
            out.add(c.hash)
        if c.old_hash:
            out.add(c.old_hash)
        out.update(c.hashes)
    return out


def placed_labels(
    files: list[tuple[str, str]],
    tasks: TaskLookup,
    folder_labels: Mapping[int, set[str]],
) -> dict[Key, LabelMap] | None:
    """{(task, hash): labels} of every image the `files` hold (the images with no label
    included, with {}), as derive_layout merges their copies; None when a placement or
    a merge has a problem, or a label is not one of its task's label folders."""
    by_folder: dict[str, Placement] = {}
    copies: dict[Key, list[tuple[str, Placement]]] = defaultdict(list)
    types: dict[int, str] = {}
    for path, h in files:
        b = tasks.of(path)
        if b is None:
            continue
        folder = path.rpartition("/")[0]
        pl = by_folder.get(folder)
        if pl is None:
            pl = by_folder[folder] = place(path, b, None)
            if pl.problems:
                return None
        copies[(b.task_id, h)].append((path, pl))
        types[b.task_id] = b.type
    out: dict[Key, LabelMap] = {}
    for key, found in copies.items():
        labels, problems = merge_image_labels(
            types[key[0]],  # type: ignore[arg-type]
            [replace(pl, path=path) for path, pl in found],
        )
        if problems or not set(labels) <= folder_labels.get(key[0], set()):
            return None
        out[key] = labels
    return out


def count_delta(
    before: Mapping[Key, LabelMap],
    after: Mapping[Key, LabelMap],
    images: dict[int, int],
    labelled: dict[int, int],
    counts: dict[int, dict[str, int]],
) -> None:
    """Move the counts layoutpass.label_summary keeps (`images` and `labelled` per task,
    `counts` per task and label) from the `before` images to the `after` ones; counts
    that reach zero go, as the full pass would not write them."""
    for sign, side in ((-1, before), (1, after)):
        for (task_id, _h), labels in side.items():
            images[task_id] = images.get(task_id, 0) + sign
            if labels:
                labelled[task_id] = labelled.get(task_id, 0) + sign
                per = counts.setdefault(task_id, {})
                for name in labels:
                    per[name] = per.get(name, 0) + sign
    for table in (images, labelled):
        for t in [t for t, n in table.items() if n == 0]:
            del table[t]
    for t, per in list(counts.items()):
        for name in [n for n, k in per.items() if k == 0]:
            del per[name]
        if not per:
            del counts[t]


def patch(
    conn: sqlite3.Connection,
    walked: WalkResult,
    bindings: list[TaskBinding],
    todo: StatPass,
    layout: LayoutCheck,
    file_changes: list[ch.Change],
) -> bool:
    """Re-derive the touched images' labels in place (see the module's contract), once
    the scan's file rows are written; False, having written nothing, when the whole
    layout pass must run."""
    touched = {*todo.to_examine, *todo.gone, *todo.skipped_changed}
    if not layout.files_only or walked.sidecars or len(touched) > FEW_FILES:
        return False
    if catalog_problems.any_besides(conn, FOLDER_NAME_PROBLEM):
        return False
    hashes = touched_hashes(file_changes)
    now = catalog_files.files_holding(conn, hashes)
    old_map = todo.old_map
    was = [(p, h) for p, h in now if p not in touched]
    was += [(p, h) for p in touched if (h := old_map.get(p)) is not None and h in hashes]
    tasks = TaskLookup(bindings)
    after = placed_labels(now, tasks, layout.folder_labels)
    before = placed_labels(was, tasks, layout.folder_labels)
    if after is None or before is None:
        return False
    by_task = {b.task_id: b for b in bindings}
    known = catalog_labels.label_ids(conn)
    ids = catalog_images.ids_of(conn, hashes)
    old_rows = catalog_labels.local_image_labels_of(
        conn, sorted(by_task), sorted(set(ids.values()))
    )
    new_rows: dict[tuple[int, int], dict[int, float | None]] = {}
    for (task_id, h), labels in after.items():
        if labels:
            ltype = LABEL_TYPE[by_task[task_id].type]
            if any((n, ltype) not in known for n in labels):
                return False
            new_rows[(task_id, ids[h])] = {known[(n, ltype)]: v for n, v in labels.items()}
    # The catalog's rows of the touched images must be what `before` says, or the counts
    # would move from a state the catalog is not in.
    expected = {
        (t, ids[h]): {known[(n, LABEL_TYPE[by_task[t].type])]: v for n, v in labels.items()}
        for (t, h), labels in before.items()
        if labels
    }
    if old_rows != expected:
        return False
    dirty = sorted({*old_rows, *new_rows} - {k for k in new_rows if old_rows.get(k) == new_rows[k]})
    catalog_labels.rewrite_local_image_labels(conn, dirty, old_rows, new_rows)
    images = _int_keys(catalog_meta.get_meta(conn, "task_images"))
    labelled = _int_keys(catalog_meta.get_meta(conn, "labelled_images"))
    counts = _int_keys(catalog_meta.get_meta(conn, "label_counts"))
    count_delta(before, after, images, labelled, counts)
    catalog_meta.set_meta(conn, "task_images", json.dumps(images, sort_keys=True))
    catalog_meta.set_meta(conn, "label_counts", json.dumps(counts, sort_keys=True))
    catalog_meta.set_meta(conn, "labelled_images", json.dumps(labelled, sort_keys=True))
    return True


def _int_keys(text: str | None) -> dict:
    return {int(k): v for k, v in json.loads(text or "{}").items()}
