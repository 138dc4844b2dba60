"""Sidecars: the metadata.jsonl / metadata.csv files beside images (design section 2).

Pure functions only: no disk. The scanner reads the sidecar files of each folder and
gets back, per image path, the one row that describes it; layout.py (`layout.place`)
then weighs what the row says against the folders.

Contract:
- a row names its file by `file_name`, relative to the sidecar's folder (never
  absolute, never `..`); `label`, `labels` (a list, or `;`-separated in CSV) and
  `value` have a meaning, every other column goes to `meta_data`;
- a row with any error is dropped whole, and one message names the sidecar path, the
  line and the field; in CSV an empty cell means "not given";
- in one folder metadata.jsonl wins over metadata.csv; within one sidecar the later of
  two rows for one file wins; across folders the deepest sidecar's row wins (each
  reported);
- paths are posix, relative to the repository root, compared in NFC
  (`labelnames.nfc`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from localrepo.labelnames import nfc

SIDECAR_NAMES = ("metadata.jsonl", "metadata.csv")  # jsonl preferred when both exist

# Sidecar columns with a meaning; every other column goes to meta_data.
FILE_NAME_FIELD = "file_name"
LABEL_FIELD = "label"
LABELS_FIELD = "labels"
VALUE_FIELD = "value"
CSV_LABELS_SEPARATOR = ";"
_KNOWN_FIELDS = frozenset({FILE_NAME_FIELD, LABEL_FIELD, LABELS_FIELD, VALUE_FIELD})


@dataclass(frozen=True)
class SidecarRow:
    """One row of a metadata.jsonl / metadata.csv, resolved to a repository path."""

    path: str  # posix path relative to the repository root (folder + file_name)
    source: str  # the sidecar file it came from, relative to the repository root
    label: str | None = None
    labels: tuple[str, ...] | None = None
    value: float | None = None
    meta_data: dict = field(default_factory=dict)


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
    "FILE_NAME_FIELD",
    "LABELS_FIELD",
    "LABEL_FIELD",
    "SIDECAR_NAMES",
    "VALUE_FIELD",
    "SidecarRow",
    "parse_sidecar",
    "resolve_sidecars",
    "sidecar_for",
]
