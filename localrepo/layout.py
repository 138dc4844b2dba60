"""Layout rules: the folder tree is the labelling interface (design section 2).

Pure functions only: no disk, no clock. The scanner feeds them relative paths and parsed
sidecar rows, and gets back which task a file belongs to and what it says about labels.

Paths everywhere are posix, relative to the repository root, without a leading "./".
"""

from __future__ import annotations

import csv
import io
import json
import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from localrepo.labelnames import folder_for_label, folder_verdict

TaskType = Literal["multi_class", "multi_label", "regression"]
TASK_TYPES: tuple[TaskType, ...] = ("multi_class", "multi_label", "regression")

IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff"})
SIDECAR_NAMES = ("metadata.jsonl", "metadata.csv")  # jsonl preferred when both exist
UNLABELED_DIR = "_unlabeled"

# Sidecar columns with a meaning; every other column goes to meta_data.
FILE_NAME_FIELD = "file_name"
LABEL_FIELD = "label"
LABELS_FIELD = "labels"
VALUE_FIELD = "value"
CSV_LABELS_SEPARATOR = ";"
_KNOWN_FIELDS = frozenset({FILE_NAME_FIELD, LABEL_FIELD, LABELS_FIELD, VALUE_FIELD})


@dataclass(frozen=True)
class TaskBinding:
    """A task bound to a folder of the repository ("task root")."""

    task_id: int
    name: str
    type: TaskType
    root: str  # posix path relative to the repository root; "" is the root itself


@dataclass(frozen=True)
class SidecarRow:
    """One row of a metadata.jsonl / metadata.csv, resolved to a repository path."""

    path: str  # posix path relative to the repository root (folder + file_name)
    source: str  # the sidecar file it came from, relative to the repository root
    label: str | None = None
    labels: tuple[str, ...] | None = None
    value: float | None = None
    meta_data: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- names


def nfc(name: str) -> str:
    """The Unicode NFC form of ``name`` (label names and sidecar paths are compared in NFC)."""
    if name.isascii():  # O(1) in CPython; ASCII is always NFC
        return name
    return unicodedata.normalize("NFC", name)


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
    returned as a human-readable problem naming the path.
    """
    meta = dict(sidecar.meta_data) if sidecar is not None else {}
    if binding is None:
        return Placement(None, None, (), None, meta, (), path)

    label = folder_label(path, binding)
    problems: list[str] = []
    side_label = sidecar.label if sidecar is not None else None
    side_labels = sidecar.labels if sidecar is not None else None
    side_value = sidecar.value if sidecar is not None else None
    source = sidecar.source if sidecar is not None else ""

    if side_value is not None and not (
        isinstance(side_value, int | float) and math.isfinite(side_value)
    ):
        problems.append(f"{path}: value {side_value!r} in {source} is not a finite number")
        side_value = None

    def folder_decides(what: str) -> None:
        if label is None:
            problems.append(
                f"{path}: {what} in {source} ignored: the file is not in a label folder "
                f"(the folder decides)"
            )
        else:
            problems.append(
                f"{path}: {what} in {source} disagrees with the folder label {label!r} "
                f"(the folder decides)"
            )

    if side_label is not None:
        side_label = nfc(side_label)

    labels: tuple[str, ...]
    value: float | None = None
    kind = binding.type
    if kind == "multi_class":
        labels = (label,) if label is not None else ()
        if side_label is not None and side_label != label:
            folder_decides(f"sidecar label {side_label!r}")
        if side_labels is not None and tuple(nfc(x) for x in side_labels) != labels:
            folder_decides(f"sidecar labels {list(side_labels)!r}")
    elif kind == "multi_label":
        if side_labels is not None:
            chosen: list[str] = []
            for raw in side_labels:
                tag = nfc(raw)
                if not _is_valid_label(tag):
                    problems.append(
                        f"{path}: sidecar label {raw!r} in {source} cannot be a label (empty, "
                        "not in Unicode NFC form, or too long for a folder name); skipped"
                    )
                elif tag not in chosen:
                    chosen.append(tag)
            labels = tuple(chosen)
        else:
            labels = (label,) if label is not None else ()
            if side_label is not None and side_label != label:
                folder_decides(f"sidecar label {side_label!r}")
    elif kind == "regression":
        if side_label is not None and side_label != label:
            folder_decides(f"sidecar label {side_label!r}")
        value = side_value
        if label is None:
            labels = ()
            if value is not None:
                problems.append(
                    f"{path}: has value {value!r} but is not in a value label folder; not linked"
                )
        elif value is None:
            labels = ()
            problems.append(
                f"{path}: no value for value label {label!r} (add a 'value' to a sidecar "
                f"metadata.jsonl or metadata.csv); not linked"
            )
        else:
            labels = (label,)
    else:  # pragma: no cover - TaskType is closed
        raise ValueError(f"unknown task type {kind!r}")

    return Placement(binding.task_id, label, labels, value, meta, tuple(problems), path)


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

    if task_type == "multi_class":
        found = sorted({lab for p in placements for lab in p.labels})
        if len(found) > 1:
            problems.append(
                "copies of one image sit in different label folders "
                f"{', '.join(repr(x) for x in found)}{where(p for p in placements if p.labels)}; "
                "ambiguous, no label linked"
            )
            return {}, problems
        return {lab: None for lab in found}, problems

    if task_type == "multi_label":
        union = sorted({lab for p in placements for lab in p.labels})
        return {lab: None for lab in union}, problems

    if task_type == "regression":
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


# --------------------------------------------------------------------------- sidecars


class _RowError(Exception):
    pass


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _clean_file_name(raw: Any) -> str:
    """Validate a sidecar ``file_name`` and return it normalised (posix, NFC, no "."/"")."""
    if not isinstance(raw, str):
        raise _RowError(f"field {FILE_NAME_FIELD!r} must be a string, not {raw!r}")
    if raw.strip() == "":
        raise _RowError(f"field {FILE_NAME_FIELD!r} is empty")
    if "\x00" in raw:
        raise _RowError(f"field {FILE_NAME_FIELD!r} contains a NUL character")
    if raw.startswith(("/", "\\")) or (len(raw) >= 2 and raw[1] == ":" and raw[0].isalpha()):
        raise _RowError(f"field {FILE_NAME_FIELD!r} {raw!r} is an absolute path")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts) or any(part == ".." for part in raw.split("\\")):
        raise _RowError(
            f"field {FILE_NAME_FIELD!r} {raw!r} uses '..' (must stay inside the folder)"
        )
    if not parts:
        raise _RowError(f"field {FILE_NAME_FIELD!r} {raw!r} names no file")
    return nfc("/".join(parts))


def _clean_label(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise _RowError(f"field {LABEL_FIELD!r} must be a string, not {raw!r}")
    raw = raw.strip()
    return nfc(raw) if raw else None


def _split_labels(text: str) -> tuple[str, ...]:
    return tuple(nfc(part.strip()) for part in text.split(CSV_LABELS_SEPARATOR) if part.strip())


def _clean_labels(raw: Any, *, csv_cell: bool) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        if csv_cell and raw.strip() == "":
            return None  # an empty CSV cell means "not given"
        return _split_labels(raw)
    if isinstance(raw, list):
        out: list[str] = []
        for item in raw:
            if not isinstance(item, str):
                raise _RowError(f"field {LABELS_FIELD!r} must hold strings, not {item!r}")
            item = item.strip()
            if item:
                out.append(nfc(item))
        return tuple(out)
    raise _RowError(f"field {LABELS_FIELD!r} must be a list of strings or a string, not {raw!r}")


def _clean_value(raw: Any) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise _RowError(f"field {VALUE_FIELD!r} must be a number, not {raw!r}")
    if isinstance(raw, int | float):
        try:
            number = float(raw)
        except OverflowError:
            raise _RowError(f"field {VALUE_FIELD!r} {raw!r} is too large") from None
    elif isinstance(raw, str):
        if raw.strip() == "":
            return None
        try:
            number = float(raw.strip())
        except ValueError:
            raise _RowError(f"field {VALUE_FIELD!r} {raw!r} is not a number") from None
    else:
        raise _RowError(f"field {VALUE_FIELD!r} must be a number, not {raw!r}")
    if not math.isfinite(number):
        raise _RowError(f"field {VALUE_FIELD!r} {raw!r} is not a finite number")
    return number


def _row_from_record(
    folder: str, source: str, record: Mapping[str, Any], *, csv_cells: bool
) -> SidecarRow:
    if FILE_NAME_FIELD not in record or record[FILE_NAME_FIELD] in (None, ""):
        raise _RowError(f"missing field {FILE_NAME_FIELD!r}")
    file_name = _clean_file_name(record[FILE_NAME_FIELD])
    label = _clean_label(record.get(LABEL_FIELD))
    labels = _clean_labels(record.get(LABELS_FIELD), csv_cell=csv_cells)
    value = _clean_value(record.get(VALUE_FIELD))
    meta: dict[str, Any] = {}
    for key, val in record.items():
        if key in _KNOWN_FIELDS:
            continue
        if csv_cells and val in (None, ""):
            continue  # an empty CSV cell means "not given"
        meta[key] = val
    return SidecarRow(
        path=_join(nfc(folder), file_name),
        source=source,
        label=label,
        labels=labels,
        value=value,
        meta_data=meta,
    )


def _jsonl_records(text: str) -> Iterable[tuple[int, Mapping[str, Any] | str]]:
    """(line number, record or error message) for each non-blank line."""
    # Split on "\n" only: str.splitlines would also split inside JSON strings that hold
    # U+2028 and friends, which json.dumps(ensure_ascii=False) leaves unescaped.
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            yield lineno, f"not valid JSON ({exc})"
            continue
        if not isinstance(record, dict):
            yield lineno, f"expected a JSON object, got {type(record).__name__}"
            continue
        yield lineno, record


def _csv_records(text: str) -> Iterable[tuple[int, Mapping[str, Any] | str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield 1, f"unreadable CSV header ({exc})"
        return
    header = [name.strip() for name in header]
    if FILE_NAME_FIELD not in header:
        yield 1, f"the header has no {FILE_NAME_FIELD!r} column"
        return
    if len(set(header)) != len(header):
        dupes = sorted({name for name in header if header.count(name) > 1})
        yield 1, f"the header repeats columns {dupes}"
        return
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, f"unreadable CSV ({exc})"
            return
        lineno, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        if len(cells) > len(header):
            yield lineno, f"{len(cells)} fields but the header has {len(header)}"
            continue
        yield lineno, dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=True))


def parse_sidecar(folder: str, name: str, text: str) -> tuple[list[SidecarRow], list[str]]:
    """Parse one sidecar file found in ``folder`` (repository-relative, "" for the root).

    ``name`` is ``metadata.jsonl`` or ``metadata.csv``. Returns the good rows (their
    ``path`` is the NFC repository path of the file they describe) and one message per
    bad line, naming the sidecar path, line number and field. A row with any error is
    dropped whole; when one file_name appears twice the later row wins (reported).
    """
    if name not in SIDECAR_NAMES:
        raise ValueError(f"not a sidecar name: {name!r} (expected one of {SIDECAR_NAMES})")
    source = _join(folder, name)
    if text.startswith("\ufeff"):
        text = text[1:]
    is_csv = name.endswith(".csv")
    records = _csv_records(text) if is_csv else _jsonl_records(text)
    rows: dict[str, tuple[int, SidecarRow]] = {}
    problems: list[str] = []
    for lineno, record in records:
        if isinstance(record, str):
            problems.append(f"{source}:{lineno}: {record}")
            continue
        try:
            row = _row_from_record(folder, source, record, csv_cells=is_csv)
        except _RowError as exc:
            problems.append(f"{source}:{lineno}: {exc}")
            continue
        if row.path in rows:
            earlier = rows.pop(row.path)[0]
            problems.append(
                f"{source}:{lineno}: {row.path} already described on line {earlier}; "
                f"line {lineno} wins"
            )
        rows[row.path] = (lineno, row)
    return [row for _, row in rows.values()], problems


def _depth(folder: str) -> int:
    return 0 if folder == "" else folder.count("/") + 1


def resolve_sidecars(
    sidecar_files: Mapping[str, Mapping[str, str]],
) -> tuple[dict[str, SidecarRow], list[str]]:
    """Parse every sidecar and decide which row describes each file.

    ``sidecar_files`` is ``{folder: {sidecar name: text}}``. In one folder metadata.jsonl
    is preferred over metadata.csv (the csv is reported as ignored). When sidecars in
    nested folders name the same file, the deepest folder's row wins (reported).
    Returns ``({NFC repository path: row}, problems)``; look rows up with
    :func:`sidecar_for` (or ``rows.get(nfc(path))``).
    """
    rows: dict[str, SidecarRow] = {}
    problems: list[str] = []
    for folder in sorted(sidecar_files, key=lambda f: (_depth(f), f)):
        files = sidecar_files[folder]
        present = [name for name in SIDECAR_NAMES if name in files]
        if not present:
            continue
        chosen = present[0]
        for other in present[1:]:
            problems.append(
                f"{_join(folder, other)}: ignored, {_join(folder, chosen)} takes precedence"
            )
        parsed, errors = parse_sidecar(folder, chosen, files[chosen])
        problems.extend(errors)
        for row in parsed:
            earlier = rows.get(row.path)
            if earlier is not None:
                problems.append(
                    f"{row.path}: described by {earlier.source} and {row.source}; "
                    f"the deeper {row.source} wins"
                )
            rows[row.path] = row
    return rows, problems


def sidecar_for(rows: Mapping[str, SidecarRow], path: str) -> SidecarRow | None:
    """The sidecar row for ``path`` from :func:`resolve_sidecars`, or None."""
    row = rows.get(path)
    if row is None and not path.isascii():
        row = rows.get(nfc(path))
    return row


__all__ = [
    "CSV_LABELS_SEPARATOR",
    "IMAGE_EXTENSIONS",
    "SIDECAR_NAMES",
    "TASK_TYPES",
    "UNLABELED_DIR",
    "Placement",
    "SidecarRow",
    "TaskBinding",
    "TaskType",
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
