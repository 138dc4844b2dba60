"""Layout rules: the folder tree is the labelling interface (design section 2).

Pure functions only: no disk, no clock. The scanner feeds them relative paths and parsed
sidecar rows (sidecars.py parses and resolves those), and gets back which task a file
belongs to (`task_for`), what it says about labels (`place`) and what all copies of one
image say together (`merge_image_labels`).

Paths everywhere are posix, relative to the repository root, without a leading "./".
The sidecar names are re-exported here for the callers that know them from this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from localrepo.labelnames import folder_for_label, folder_verdict, nfc
from localrepo.sidecars import (
    CSV_LABELS_SEPARATOR,
    SIDECAR_NAMES,
    SidecarRow,
    parse_sidecar,
    resolve_sidecars,
    sidecar_for,
)
from localrepo.vocabulary import MULTI_CLASS, MULTI_LABEL, REGRESSION, TaskType

IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff"})
UNLABELED_DIR = "_unlabeled"


@dataclass(frozen=True)
class TaskBinding:
    """A task bound to a folder of the repository ("task root")."""

    task_id: int
    name: str
    type: TaskType
    root: str  # posix path relative to the repository root; "" is the root itself


# --------------------------------------------------------------------------- names


def is_image_name(name: str) -> bool:
    """True when the file name (or path) has an image extension, in any case.

    Leading dots do not start an extension: ``.jpg`` has none (like ``os.path.splitext``).
    Only the name is judged; whether Pillow can decode the file is the scanner's business.
    """
    base = name.rpartition("/")[2].lstrip(".")
    dot = base.rfind(".")
    return dot > 0 and base[dot + 1 :].lower() in IMAGE_EXTENSIONS


def label_for_folder(name: str) -> str | None:
    """The label a first-level folder name stands for, or None: folders whose names start
    with "." or "_" (``_unlabeled`` among them) are never labels, and a name that cannot
    round-trip through the naming rule (labelnames.py: a leading space, a tab, ...) is
    refused; the scanner reports it (``folder_verdict`` says why)."""
    return folder_verdict(name).label


def _is_valid_label(label: str) -> bool:
    """A label some folder can stand for (what a sidecar may name)."""
    return folder_for_label(label) is not None


def case_twins(names: Iterable[str]) -> list[tuple[str, ...]]:
    """Groups of distinct (NFC) names that are equal when case is ignored.

    Names are NFC-normalised first, so an NFC and an NFD spelling are the *same* name
    (one label), not twins. Each group is a sorted tuple of two or more names; the list
    is sorted. Twins such as ``Dog`` and ``dog`` are a reported conflict, never merged.
    """
    groups: dict[str, set[str]] = {}
    for name in names:
        normal = nfc(name)
        key = nfc(normal.casefold())
        groups.setdefault(key, set()).add(normal)
    return sorted(tuple(sorted(group)) for group in groups.values() if len(group) > 1)


# --------------------------------------------------------------------------- tasks


def _contains(root: str, path: str) -> bool:
    return root == "" or path == root or path.startswith(root + "/")


def task_for(path: str, bindings: Sequence[TaskBinding]) -> TaskBinding | None:
    """The binding with the deepest task root that contains ``path``, or None.

    Containment is by whole path components: root "cats" contains "cats/x.jpg" but not
    "catsdogs/x.jpg"; root "" contains everything. Roots and paths are compared in NFC.
    Should two bindings share one root, the one with the lowest task_id is returned.
    """
    path = nfc(path)
    best: TaskBinding | None = None
    best_key: tuple[int, int] | None = None
    for binding in bindings:
        root = nfc(binding.root.strip("/"))
        if not _contains(root, path):
            continue
        depth = 0 if root == "" else root.count("/") + 1
        key = (depth, -binding.task_id)
        if best_key is None or key > best_key:
            best, best_key = binding, key
    return best


def relative_to_root(path: str, root: str) -> str:
    """``path`` relative to the task root ``root`` (which must contain it)."""
    root = root.strip("/")
    if root == "":
        return path
    return path[len(root) + 1 :]


# --------------------------------------------------------------------------- placement


@dataclass(frozen=True)
class Placement:
    """What one file says about its labels within the task that contains it.

    ``label`` is the (NFC) label of the file's label folder, or None when the file sits
    directly in the task root, under ``_unlabeled/`` or another "."/"_" folder, or in no
    task. ``labels`` is every label the file asserts (what should be linked): multi_class
    at most one; multi_label the folder tag, or the sidecar ``labels`` list which
    overrides it; regression the value label, only when the file also has a value.
    ``path`` is the repository path the placement is for (used in problem messages).
    """

    task_id: int | None
    label: str | None
    labels: tuple[str, ...]
    value: float | None
    meta_data: dict
    problems: tuple[str, ...]
    path: str = ""


def folder_label(path: str, binding: TaskBinding) -> str | None:
    """The label given by the folders of ``path`` inside ``binding``'s task root."""
    path, root = nfc(path), nfc(binding.root.strip("/"))
    if not _contains(root, path):
        raise ValueError(f"{path!r} is not inside the task root {root!r}")
    rel = relative_to_root(path, root)
    first, sep, _rest = rel.partition("/")
    if not sep:  # directly in the task root
        return None
    return label_for_folder(first)


def place(path: str, binding: TaskBinding | None, sidecar: SidecarRow | None) -> Placement:
    """Apply the layout rules to one file.

    ``binding`` is the task that contains ``path`` (see :func:`task_for`); ``sidecar`` is
    the sidecar row naming the file, if any. Never raises for user data: anything odd is
    returned as a human-readable problem naming the path. The rules of each task type are
    in its reader (`_READERS`); what they read is `_Said`.
    """
    meta = dict(sidecar.meta_data) if sidecar is not None else {}
    if binding is None:
        return Placement(None, None, (), None, meta, (), path)
    said, problems = _said(path, folder_label(path, binding), sidecar)
    read = _READERS.get(binding.type)
    if read is None:  # pragma: no cover - TaskType is closed
        raise ValueError(f"unknown task type {binding.type!r}")
    labels, value, more = read(said)
    return Placement(binding.task_id, said.folder, labels, value, meta, (*problems, *more), path)


@dataclass(frozen=True)
class _Said:
    """What the folders and the sidecar row say about one file, as `place` reads it."""

    path: str
    folder: str | None  # the label of the file's label folder
    source: str = ""  # the sidecar file the row came from ("" without one)
    label: str | None = None  # the row's `label`, in NFC
    labels: tuple[str, ...] | None = None  # the row's `labels`, as written
    value: float | None = None  # the row's `value`, when it is a finite number

    def folder_decides(self, what: str) -> str:
        """The problem of a sidecar claim `what` that the folder overrules."""
        if self.folder is None:
            return (
                f"{self.path}: {what} in {self.source} ignored: the file is not in a label "
                "folder (the folder decides)"
            )
        return (
            f"{self.path}: {what} in {self.source} disagrees with the folder label "
            f"{self.folder!r} (the folder decides)"
        )

    def label_disagrees(self) -> list[str]:
        """The problem of a sidecar `label` other than the folder's, if there is one."""
        if self.label is not None and self.label != self.folder:
            return [self.folder_decides(f"sidecar label {self.label!r}")]
        return []

    def folder_labels(self) -> tuple[str, ...]:
        return (self.folder,) if self.folder is not None else ()


def _said(path: str, folder: str | None, sidecar: SidecarRow | None) -> tuple[_Said, list[str]]:
    """What is said about the file at `path`, and the problem of a sidecar value that is
    not a finite number (then taken as not given)."""
    if sidecar is None:
        return _Said(path, folder), []
    problems: list[str] = []
    value = sidecar.value
    if value is not None and not (isinstance(value, int | float) and math.isfinite(value)):
        problems.append(f"{path}: value {value!r} in {sidecar.source} is not a finite number")
        value = None
    label = nfc(sidecar.label) if sidecar.label is not None else None
    return _Said(path, folder, sidecar.source, label, sidecar.labels, value), problems


# (labels, value, problems) of one file, read by the rules of one task type.
_Reading = tuple[tuple[str, ...], float | None, list[str]]


def _read_multi_class(said: _Said) -> _Reading:
    """The folder is the label; a sidecar label or labels that differ are reported."""
    labels = said.folder_labels()
    problems = said.label_disagrees()
    if said.labels is not None and tuple(nfc(x) for x in said.labels) != labels:
        problems.append(said.folder_decides(f"sidecar labels {list(said.labels)!r}"))
    return labels, None, problems


def _read_multi_label(said: _Said) -> _Reading:
    """The folder is the tag, unless the sidecar's `labels` list names the tags (then
    each one that cannot be a label is skipped, and reported)."""
    if said.labels is None:
        return said.folder_labels(), None, said.label_disagrees()
    chosen: list[str] = []
    problems: list[str] = []
    for raw in said.labels:
        tag = nfc(raw)
        if not _is_valid_label(tag):
            problems.append(
                f"{said.path}: sidecar label {raw!r} in {said.source} cannot be a label (empty, "
                "not in Unicode NFC form, or too long for a folder name); skipped"
            )
        elif tag not in chosen:
            chosen.append(tag)
    return tuple(chosen), None, problems


def _read_regression(said: _Said) -> _Reading:
    """The folder is the value label and the sidecar gives the value: a file linked only
    with both."""
    problems = said.label_disagrees()
    value = said.value
    if said.folder is None:
        if value is not None:
            problems.append(
                f"{said.path}: has value {value!r} but is not in a value label folder; not linked"
            )
        return (), value, problems
    if value is None:
        problems.append(
            f"{said.path}: no value for value label {said.folder!r} (add a 'value' to a "
            "sidecar metadata.jsonl or metadata.csv); not linked"
        )
        return (), None, problems
    return (said.folder,), value, problems


_READERS: dict[str, Callable[[_Said], _Reading]] = {
    MULTI_CLASS: _read_multi_class,
    MULTI_LABEL: _read_multi_label,
    REGRESSION: _read_regression,
}


def merge_image_labels(
    task_type: TaskType, placements: Sequence[Placement]
) -> tuple[dict[str, float | None], list[str]]:
    """Aggregate the placements of every copy of one image (same bytes) within one task.

    Returns ``({label: value}, problems)``; value is None except for regression.

    - multi_class: at most one label. Copies in different label folders are ambiguous:
      reported, and no label is linked.
    - multi_label: the union of the copies' tags.
    - regression: ``{value label: value}``; copies that give one label different values
      are reported and that label is not linked.

    Unlabelled copies add nothing. The placements' own problems are not repeated here.
    """
    task_ids = {p.task_id for p in placements if p.task_id is not None}
    if len(task_ids) > 1:
        raise ValueError(f"placements from several tasks: {sorted(task_ids)}")
    problems: list[str] = []

    def where(selected: Iterable[Placement]) -> str:
        paths = sorted({p.path for p in selected if p.path})
        return f" ({', '.join(paths)})" if paths else ""

    if task_type == MULTI_CLASS:
        found = sorted({lab for p in placements for lab in p.labels})
        if len(found) > 1:
            problems.append(
                "copies of one image sit in different label folders "
                f"{', '.join(repr(x) for x in found)}{where(p for p in placements if p.labels)}; "
                "ambiguous, no label linked"
            )
            return {}, problems
        return {lab: None for lab in found}, problems

    if task_type == MULTI_LABEL:
        union = sorted({lab for p in placements for lab in p.labels})
        return {lab: None for lab in union}, problems

    if task_type == REGRESSION:
        values: dict[str, set[float]] = {}
        holders: dict[str, list[Placement]] = {}
        for p in placements:
            if p.value is None:
                continue
            for lab in p.labels:
                values.setdefault(lab, set()).add(p.value)
                holders.setdefault(lab, []).append(p)
        result: dict[str, float | None] = {}
        for lab in sorted(values):
            vals = values[lab]
            if len(vals) > 1:
                problems.append(
                    f"copies of one image give value label {lab!r} different values "
                    f"{', '.join(repr(v) for v in sorted(vals))}{where(holders[lab])}; "
                    "not linked"
                )
            else:
                result[lab] = next(iter(vals))
        return result, problems

    raise ValueError(f"unknown task type {task_type!r}")


__all__ = [
    "CSV_LABELS_SEPARATOR",
    "IMAGE_EXTENSIONS",
    "SIDECAR_NAMES",
    "UNLABELED_DIR",
    "Placement",
    "SidecarRow",
    "TaskBinding",
    "case_twins",
    "folder_label",
    "is_image_name",
    "label_for_folder",
    "merge_image_labels",
    "nfc",
    "parse_sidecar",
    "place",
    "relative_to_root",
    "resolve_sidecars",
    "sidecar_for",
    "task_for",
]
