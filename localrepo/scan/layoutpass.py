"""The scan's fourth stage: derive each image's LOCAL labels from the folder tree and its
sidecars (docs/catalog.md, "The scanner", step 4; the rules are layout.py's, design
section 2).

Contract: `check` says whether anything that feeds the layout changed since the last
scan (a file, a sidecar or ignore file, a label folder, a refused folder, a task
binding); only then is the layout re-derived. `derive_layout` places every valid file,
merges the copies of each image, records each task's labels, their counts and the
image_label rows that changed (in key order), and returns the label-level changes that
no file change explains (a sidecar edit) and the problems (sidecars, placements, case
twins). A first scan of a tree without sidecars may have written most of that while
the pool still hashed (scan/layoutstream.py); what it could not place is left to
`derive_layout`, which diffs against the rows already written, so the catalog ends the
same either way. `record` keeps the problems and what the next `check` compares with.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from localrepo.catalog import files as catalog_files
from localrepo.catalog import images as catalog_images
from localrepo.catalog import labels as catalog_labels
from localrepo.catalog import meta as catalog_meta
from localrepo.catalog import problems as catalog_problems
from localrepo.catalog.problems import FOLDER_NAME_PROBLEM
from localrepo.catalog.sides import LOCAL
from localrepo.labelnames import folder_verdict
from localrepo.layout import (
    Placement,
    TaskBinding,
    case_twins,
    label_for_folder,
    merge_image_labels,
    place,
    relative_to_root,
    resolve_sidecars,
    sidecar_for,
    task_for,
)
from localrepo.scan import changes as ch
from localrepo.scan.diff import TaskLookup
from localrepo.scan.report import Problem
from localrepo.scan.statpass import RACY_NS
from localrepo.scan.walk import INODE, MTIME, SIZE, Stat, WalkResult
from localrepo.vocabulary import LABEL_TYPE

if TYPE_CHECKING:
    from localrepo.scan.layoutstream import LayoutStream

LabelMap = dict[str, float | None]  # {label name: value}


def fingerprint(text: str) -> str:
    """What tells a scan the bindings or the label folders changed since the last one.
    xxh3_128, not hashlib: hashlib's OpenSSL start-up is a tenth of `repo status`'s
    imports, and this needs no cryptographic strength, only no accidental collision."""
    import xxhash

    return xxhash.xxh3_128_hexdigest(text.encode())


def bindings_fingerprint(bindings: Sequence[TaskBinding]) -> str:
    return fingerprint(json.dumps([(b.task_id, b.type, b.root) for b in bindings]))


# -- whether to re-derive ---------------------------------------------------------------


@dataclass(frozen=True)
class LayoutCheck:
    needed: bool  # something that feeds the layout changed
    aux_now: dict[str, Stat]  # sidecars and ignore files as walked
    bindings_fp: str
    folders_fp: str
    folder_labels: dict[int, set[str]]
    refused: list[Problem]  # refused label folders
    files_only: bool = False  # nothing but files changed (scan/layoutpatch.py may do)


def check(
    conn: sqlite3.Connection,
    walked: WalkResult,
    bindings: list[TaskBinding],
    file_changes: list[ch.Change],
) -> LayoutCheck:
    """Whether the layout must be re-derived, and what recording it needs."""
    aux_now = {**walked.sidecars, **walked.ignore_stats}
    aux_before = {r[0]: (r[1], r[2], r[3]) for r in catalog_files.load_aux(conn)}
    aux_ns = int(catalog_meta.get_meta(conn, "aux_ns") or 0)
    aux_changed = aux_differs(aux_now, aux_before, aux_ns)
    fp = bindings_fingerprint(bindings)
    labels = folder_labels(walked, bindings)
    refused = refused_folders(walked, bindings)
    folders_fp = fingerprint(
        json.dumps(
            [
                sorted((t, sorted(v)) for t, v in labels.items()),
                [p.path for p in refused],
            ]
        )
    )
    same_rest = not (
        aux_changed
        or fp != catalog_meta.get_meta(conn, "bindings_fp")
        or folders_fp != catalog_meta.get_meta(conn, "folders_fp")
    )
    needed = bool(file_changes) or not same_rest
    files_only = bool(file_changes) and same_rest
    return LayoutCheck(needed, aux_now, fp, folders_fp, labels, refused, files_only)


def aux_differs(
    aux_now: Mapping[str, Stat], aux_before: Mapping[str, tuple[int, int, int]], aux_ns: int
) -> bool:
    """Sidecars and ignore files changed: their (size, mtime, inode) differ from the
    rows recorded at `aux_ns`, or a row is racy (a file edited in the tick its row was
    written in keeps its stat: the layout is re-derived while a row is racy)."""
    if {p: (s[SIZE], s[MTIME], s[INODE]) for p, s in aux_now.items()} != aux_before:
        return True
    return any(m >= aux_ns - RACY_NS for _s, m, _i in aux_before.values())


def _first_level_folders(
    walked: WalkResult, bindings: list[TaskBinding]
) -> Iterator[tuple[TaskBinding, str, str]]:
    """(task, folder path, its name) of every first-level folder of a task root."""
    roots = {b.root for b in bindings}
    for folder in sorted(walked.folders):
        if not folder or folder in roots:
            continue
        b = task_for(folder, bindings)
        if b is None:
            continue
        rel = relative_to_root(folder, b.root)
        if "/" not in rel:
            yield b, folder, rel


def folder_labels(walked: WalkResult, bindings: list[TaskBinding]) -> dict[int, set[str]]:
    """First-level folders of each task root that name a label (empty ones included)."""
    out: dict[int, set[str]] = {b.task_id: set() for b in bindings}
    for b, _folder, name in _first_level_folders(walked, bindings):
        label = label_for_folder(name)
        if label:
            out[b.task_id].add(label)
    return out


def refused_folders(walked: WalkResult, bindings: list[TaskBinding]) -> list[Problem]:
    """First-level folders of each task root that look like label folders but cannot
    round-trip through the naming rule (labelnames.py): reported, and their images held
    back by the sync engine (FOLDER_NAME_PROBLEM rows name them)."""
    out: list[Problem] = []
    for b, folder, name in _first_level_folders(walked, bindings):
        verdict = folder_verdict(name)
        if verdict.refused is not None:
            out.append(Problem(FOLDER_NAME_PROBLEM, verdict.message(folder), folder, b.task_id))
    return out


# -- re-deriving ------------------------------------------------------------------------


def relayout(
    conn: sqlite3.Connection,
    root: Path,
    walked: WalkResult,
    bindings: list[TaskBinding],
    new_map: dict[str, str],
    layout: LayoutCheck,
    file_changes: list[ch.Change],
    stream: LayoutStream | None,
    hash_ids: dict[str, int] | None,
) -> tuple[list[ch.Change], list[Problem]]:
    """The layout pass: what `stream` (a first scan's labels, when its additions are
    the diff) already wrote, if it placed every file; else derive_layout. Returns the
    label-level changes and every problem, refused folders first. `hash_ids`: the image
    ids by hash, when the scan has them already."""
    problems = stream.finish(len(new_map)) if stream is not None else None
    if problems is not None:
        return [], layout.refused + problems  # every image came with its addition
    if hash_ids is None:
        hash_ids = catalog_images.image_ids_by_hash(conn)
    layout_changes, problems = derive_layout(
        conn, root, walked, bindings, new_map, hash_ids, layout.folder_labels, file_changes
    )
    return layout_changes, layout.refused + problems


def record(
    conn: sqlite3.Connection, layout: LayoutCheck, problems: list[Problem], now: int
) -> None:
    """The problems, and what the next scan's `check` compares with."""
    catalog_problems.replace_problems(
        conn, [(p.task_id, p.path, p.kind, p.message) for p in problems]
    )
    catalog_files.replace_aux(
        conn, [(p, s[SIZE], s[MTIME], s[INODE]) for p, s in layout.aux_now.items()]
    )
    catalog_meta.set_meta(conn, "bindings_fp", layout.bindings_fp)
    catalog_meta.set_meta(conn, "folders_fp", layout.folders_fp)
    catalog_meta.set_meta(conn, "aux_ns", str(now))


def derive_layout(
    conn: sqlite3.Connection,
    root: Path,
    walked: WalkResult,
    bindings: list[TaskBinding],
    new_map: dict[str, str],
    hash_ids: dict[str, int],
    labels_of_folders: dict[int, set[str]],
    file_changes: list[ch.Change],
) -> tuple[list[ch.Change], list[Problem]]:
    sidecars, problems = _read_sidecars(root, walked)
    by_task = {b.task_id: b for b in bindings}
    placements = _place_files(new_map, bindings, sidecars, problems)
    wanted, images_per_task = _merge_copies(placements, by_task, hash_ids, problems)
    known, summary_problems = label_summary(
        conn, by_task, labels_of_folders, images_per_task, wanted.items()
    )
    problems += summary_problems
    new_rows = _rows_by_label_id(wanted, by_task, known)
    old_rows = catalog_labels.local_image_labels(conn)
    # Only the (task, image) pairs whose labels changed are journalled and rewritten,
    # in key order: image_label is a WITHOUT ROWID table clustered on that key.
    dirty = [k for k, v in new_rows.items() if old_rows.get(k) != v]
    dirty += [k for k in old_rows if k not in new_rows]
    dirty.sort()
    layout_changes = _unexplained_changes(dirty, old_rows, new_rows, hash_ids, known, file_changes)
    catalog_labels.rewrite_local_image_labels(conn, dirty, old_rows, new_rows)
    return layout_changes, problems


def _read_sidecars(root: Path, walked: WalkResult) -> tuple[dict, list[Problem]]:
    """The sidecar rows by folder and file name (layout.resolve_sidecars), and the
    problems of reading them."""
    problems: list[Problem] = []
    sidecar_texts: dict[str, dict[str, str]] = defaultdict(dict)
    for path in walked.sidecars:
        folder, _, name = path.rpartition("/")
        try:
            text = (root / path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem("sidecar", f"{path}: cannot read it ({exc})", path))
            continue
        sidecar_texts[folder][name] = text
    sidecars, sidecar_problems = resolve_sidecars(sidecar_texts)
    problems += [Problem("sidecar", m) for m in sidecar_problems]
    return sidecars, problems


def _place_files(
    new_map: dict[str, str],
    bindings: list[TaskBinding],
    sidecars: dict,
    problems: list[Problem],
) -> dict[tuple[int, str], list[tuple[str, Placement]]]:
    """{(task, hash): [(path, placement)]} of every valid file in a task; placement
    problems are added to `problems`."""
    tasks = TaskLookup(bindings)
    # Files without a sidecar row are placed by their folder alone: place each such
    # folder once. Copies keep their own path for the messages of merge problems.
    by_folder: dict[str, Placement] = {}
    placements: dict[tuple[int, str], list[tuple[str, Placement]]] = defaultdict(list)
    for path, h in new_map.items():
        b = tasks.of(path)
        if b is None:
            continue
        folder = path.rpartition("/")[0]
        row = sidecar_for(sidecars, path)
        pl = by_folder.get(folder) if row is None else None
        if pl is None:
            pl = place(path, b, row)
            if pl.problems:
                problems += [Problem("layout", m, path, b.task_id) for m in pl.problems]
            elif row is None:
                by_folder[folder] = pl
        placements[(b.task_id, h)].append((path, pl))
    return placements


def _merge_copies(
    placements: dict[tuple[int, str], list[tuple[str, Placement]]],
    by_task: dict[int, TaskBinding],
    hash_ids: dict[str, int],
    problems: list[Problem],
) -> tuple[dict[tuple[int, int], LabelMap], dict[int, int]]:
    """{(task, image id): {label name: value}} of every labelled image (images placed
    alike share one dict), and how many images each task has; merge problems are added
    to `problems`."""
    merged_single: dict[int, tuple[LabelMap, list[str]]] = {}

    def merge(task_type: str, copies: list[tuple[str, Placement]]):  # type: ignore[no-untyped-def]
        if len(copies) == 1:
            pl = copies[0][1]
            got = merged_single.get(id(pl))
            if got is None:
                got = merged_single[id(pl)] = merge_image_labels(task_type, [pl])  # type: ignore[arg-type]
            return got
        return merge_image_labels(
            task_type,  # type: ignore[arg-type]
            [replace(pl, path=path) for path, pl in copies],
        )

    images_per_task: dict[int, int] = defaultdict(int)
    for task_id, _h in placements:
        images_per_task[task_id] += 1
    wanted: dict[tuple[int, int], LabelMap] = {}
    for (task_id, h), copies in placements.items():
        labels, merge_problems = merge(by_task[task_id].type, copies)
        if merge_problems:
            problems += [Problem("layout", m, None, task_id) for m in merge_problems]
        if labels:
            wanted[(task_id, hash_ids[h])] = labels
    return wanted, images_per_task


def _rows_by_label_id(
    wanted: dict[tuple[int, int], LabelMap],
    by_task: dict[int, TaskBinding],
    known: dict[tuple[str, str], int],
) -> dict[tuple[int, int], dict[int, float | None]]:
    """`wanted` keyed by label id instead of name (converted once per shared dict)."""
    as_ids: dict[int, dict[int, float | None]] = {}  # by id() of a shared dict
    new_rows: dict[tuple[int, int], dict[int, float | None]] = {}
    for (task_id, image_id), labels in wanted.items():
        converted = as_ids.get(id(labels))
        if converted is None:
            ltype = LABEL_TYPE[by_task[task_id].type]
            converted = {known[(n, ltype)]: v for n, v in labels.items()}
            as_ids[id(labels)] = converted
        new_rows[(task_id, image_id)] = converted
    return new_rows


def _unexplained_changes(
    dirty: list[tuple[int, int]],
    old_rows: dict[tuple[int, int], dict[int, float | None]],
    new_rows: dict[tuple[int, int], dict[int, float | None]],
    hash_ids: dict[str, int],
    known: dict[tuple[str, str], int],
    file_changes: list[ch.Change],
) -> list[ch.Change]:
    """Label-level changes that no file change explains (sidecar edits), to journal."""
    id_of = hash_ids.get
    touched = {id_of(c.hash) for c in file_changes if c.hash}  # image ids
    touched |= {id_of(c.old_hash) for c in file_changes if c.old_hash}
    touched |= {id_of(h) for c in file_changes for h in c.hashes}
    label_names = {v: k[0] for k, v in known.items()}
    layout_changes: list[ch.Change] = []
    # (A first scan's images are all touched by their file changes: none is left.)
    unexplained = [k for k in dirty if k[1] not in touched]
    id_to_hash = {v: k for k, v in hash_ids.items()} if unexplained else {}
    for key in unexplained:
        task_id, image_id = key
        h = id_to_hash.get(image_id)
        before, after = old_rows.get(key, {}), new_rows.get(key, {})
        if before.keys() == after.keys():
            kind = ch.VALUE_CHANGED
            detail = {
                label_names[lid]: [before[lid], after[lid]]
                for lid in after
                if before[lid] != after[lid]
            }
        else:
            kind = ch.LABELS_CHANGED
            detail = {
                "from": sorted(label_names[x] for x in before),
                "to": sorted(label_names[x] for x in after),
            }
        layout_changes.append(ch.Change(kind, hash=h, task_id=task_id, detail=detail))
    return layout_changes


def label_summary(
    conn: sqlite3.Connection,
    by_task: dict[int, TaskBinding],
    folder_labels: dict[int, set[str]],
    images_per_task: dict[int, int],
    image_labels: Iterable[tuple[tuple[int, object], LabelMap]],
) -> tuple[dict[tuple[str, str], int], list[Problem]]:
    """What the layout pass records besides image_label rows: each task's labels (its
    label folders and every label an image carries; case twins among them are problems),
    their ids, the task_label rows and the counts `repo status` shows (computing them here
    keeps status stat-only). `image_labels`: ((task, image), {label: value}) per image;
    images placed alike share one dict, and what follows is done once a dict.
    Returns the label ids by (name, type), and the problems."""
    shared: dict[tuple[int, object], list] = {}  # (task, id(labels)) -> [labels, images]
    for (task_id, _), labels in image_labels:
        if labels:
            entry = shared.get((task_id, id(labels)))
            if entry is None:
                shared[(task_id, id(labels))] = [labels, 1]
            else:
                entry[1] += 1
    return summarize_labels(conn, by_task, folder_labels, images_per_task, shared)


def summarize_labels(
    conn: sqlite3.Connection,
    by_task: dict[int, TaskBinding],
    folder_labels: dict[int, set[str]],
    images_per_task: dict[int, int],
    shared: Mapping[tuple[int, object], list],
) -> tuple[dict[tuple[str, str], int], list[Problem]]:
    """label_summary() of images counted already: `shared` maps (task, any key of one
    set of labels) to [those labels, how many of the task's images carry them]."""
    task_labels: dict[int, set[str]] = {t: set(v) for t, v in folder_labels.items()}
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    labelled: dict[int, int] = defaultdict(int)
    for (task_id, _), (labels, images) in shared.items():
        task_labels[task_id].update(labels)
        labelled[task_id] += images
        for name in labels:
            counts[task_id][name] += images
    problems = [
        Problem(
            "case_twins",
            "label folders differ only in case: "
            + ", ".join(repr(n) for n in group)
            + "; rename one so they are distinct (they are never merged)",
            None,
            task_id,
        )
        for task_id, names in task_labels.items()
        for group in case_twins(names)
    ]
    known = catalog_labels.ensure_labels(
        conn, label_keys(by_task, task_labels), catalog_labels.label_ids(conn)
    )
    catalog_meta.set_meta(conn, "task_images", json.dumps(images_per_task, sort_keys=True))
    catalog_meta.set_meta(conn, "label_counts", json.dumps(counts, sort_keys=True))
    catalog_meta.set_meta(conn, "labelled_images", json.dumps(labelled, sort_keys=True))
    catalog_labels.replace_local_task_labels(
        conn,
        sorted(
            {
                (LOCAL, t, known[(n, LABEL_TYPE[by_task[t].type])])
                for t, names in task_labels.items()
                for n in names
            }
        ),
    )
    return known, problems


def label_keys(
    by_task: dict[int, TaskBinding], task_labels: dict[int, set[str]]
) -> set[tuple[str, str]]:
    """The (name, type) of each task's labels: what the label table is keyed by."""
    return {(n, LABEL_TYPE[by_task[t].type]) for t, names in task_labels.items() for n in names}
