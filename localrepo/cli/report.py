"""What `scan`, `status`, `log` and `check-ignore` print: human, JSON and porcelain."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from localrepo.catalog import journal
from localrepo.catalog.conflicts import open_by_task
from localrepo.catalog.files import damaged_files, valid_files
from localrepo.catalog.labels import task_label_names_by_task
from localrepo.catalog.meta import get_meta
from localrepo.catalog.problems import all_problems
from localrepo.catalog.sides import LOCAL
from localrepo.catalog.tasks import load_bindings, task_rows
from localrepo.cli import describe as D
from localrepo.cli.context import echo
from localrepo.cli.describe import labels_text as labels_text  # `repo conflicts` uses it
from localrepo.cli.pending import file_changes
from localrepo.layout import folder_label, task_for
from localrepo.scan import changes as ch
from localrepo.scan.scanner import ScanReport
from localrepo.vocabulary import IGNORE_FILE, STATE_DIR

# Porcelain codes, one per journal kind (stable: scripts depend on them).
CODES = {
    ch.ADDED: "A",
    ch.MODIFIED: "M",
    ch.MOVED: "R",
    ch.DELETED: "D",
    ch.LABEL_RENAMED: "N",
    ch.VALUE_CHANGED: "V",
    ch.LABELS_CHANGED: "L",
}


STATUS_LINES = 10  # files each list of `repo status` names; --all names them all


def print_json(data: Any) -> None:
    echo(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False))


def scan_json(rep: ScanReport, additions: Sequence[ch.Change] = ()) -> dict[str, Any]:
    """`additions`: those a large first scan journalled without listing (its report's
    `unlisted_additions`, read back from the journal)."""
    return {
        "files": rep.files,
        "hashed": rep.hashed,
        "changes": [_change_json(c) for c in [*additions, *rep.changes]],
        "invalid": [
            {"path": p, "reason": r, "detail": d} for p, (r, d) in sorted(rep.invalid.items())
        ],
        "retry_later": sorted(rep.retry_later),
        "seconds": round(rep.seconds, 3),
    }


def _change_json(c: ch.Change) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": c.kind}
    for key in ("path", "old_path", "hash", "task_id"):
        value = getattr(c, key)
        if value is not None:
            out[key] = value
    if c.detail:
        out["detail"] = c.detail
    return out


def print_scan(rep: ScanReport, *, quiet: bool) -> None:
    counts = Counter(c.kind for c in rep.changes)
    if rep.unlisted_additions:
        counts[ch.ADDED] += rep.unlisted_additions
    summary = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))
    echo(
        f"Scanned {rep.files} image files ({rep.hashed} hashed) in {rep.seconds:.2f}s: "
        + (summary or "no changes"),
    )
    if rep.invalid:
        echo(f"{len(rep.invalid)} files are not valid images (see 'repo status').")
    if rep.retry_later:
        echo(f"{len(rep.retry_later)} files changed while being read; the next scan retries them.")


def unlisted_additions(conn: sqlite3.Connection, rep: ScanReport) -> list[ch.Change]:
    """The additions a large first scan journalled without listing them in `rep`."""
    if not rep.unlisted_additions:
        return []
    return [
        ch.Change(ch.ADDED, path, None, digest, None, task_id)
        for task_id, path, digest in journal.additions_from(
            conn, rep.unlisted_first_id, rep.unlisted_additions
        )
    ]


def collect_status(
    conn: sqlite3.Connection, rep: ScanReport, cap: int | None = None
) -> dict[str, Any]:
    """What `repo status` prints. `file_changes` holds the first `cap` changes of each
    kind (None: all, as --json prints them); with a cap, `file_change_counts` {kind:
    how many} and `conflicts_decided` say what the rest are (cli/pending.py)."""
    tasks = task_rows(conn)
    per_label: dict[int, dict[str, int]] = defaultdict(dict)
    for task_id, label_counts in json.loads(get_meta(conn, "label_counts") or "{}").items():
        per_label[int(task_id)].update(label_counts)
    for task_id, name in task_label_names_by_task(conn, LOCAL):
        per_label[task_id].setdefault(name, 0)  # an empty label folder is still a label
    pending_by_task: dict[int | None, dict[str, int]] = defaultdict(dict)
    pending_total = 0
    for task_id, kind, n in journal.open_counts(conn):
        pending_by_task[task_id][kind] = n
        pending_total += n
    problems = all_problems(conn)
    conflicts = open_by_task(conn)
    labelled = json.loads(get_meta(conn, "labelled_images") or "{}")
    images_per_task = {
        int(k): v for k, v in json.loads(get_meta(conn, "task_images") or "{}").items()
    }
    out_tasks = []
    for task_id, name, ttype, root, remote_id in tasks:
        out_tasks.append(
            {
                "id": task_id,
                "name": name,
                "type": ttype,
                "root": root,
                "remote_id": remote_id,
                "images": images_per_task.get(task_id, 0),
                "unlabelled": images_per_task.get(task_id, 0) - labelled.get(str(task_id), 0),
                "labels": dict(sorted(per_label.get(task_id, {}).items())),
                "pending": dict(sorted(pending_by_task.get(task_id, {}).items())),
            }
        )
    damaged = damaged_files(conn, "")
    listing, n_decided = file_changes(conn, damaged, cap)
    st: dict[str, Any] = {
        "tasks": out_tasks,
        "pending_total": pending_total,
        "invalid": [
            {"path": p, "reason": r, "detail": d}
            for p, (r, d) in sorted(rep.invalid.items())
            if p not in damaged
        ],
        # Synced files that turned invalid: their images are held back, not deleted.
        "damaged": [{"path": p, "reason": r} for p, (_h, r) in sorted(damaged.items())],
        "retry_later": sorted(rep.retry_later),
        "problems": [{"task_id": t, "path": p, "kind": k, "message": m} for t, p, k, m in problems],
        "conflicts": len(conflicts),
        "conflict_list": [
            {"id": c[0], "task_id": c[1], "path": c[2], "field": c[3]} for c in conflicts
        ],
        # The same changes as `pending` counts, one per file in the user's words.
        "file_changes": [c.as_json() for c in listing.changes],
    }
    if cap is not None:
        st["file_change_counts"] = dict(listing.counts)
        st["conflicts_decided"] = n_decided
    return st


def pending_changes(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every journal entry not yet synced, oldest first; `file` is the path of an entry
    that names only its image (a value changed in a sidecar)."""
    rows = journal.open_entries(conn)
    files: dict[str, str] = {}
    if any(not r[2] and not r[3] and r[4] for r in rows):
        for path, digest in valid_files(conn):
            files.setdefault(digest, path)
    return [
        {
            "kind": r[0],
            "task_id": r[1],
            "path": r[2],
            "old_path": r[3],
            "hash": r[4],
            "detail": json.loads(r[5]) if r[5] else None,
            "file": r[2] or r[3] or files.get(r[4] or ""),
        }
        for r in rows
    ]


def print_status(st: dict[str, Any], *, cap: int | None = STATUS_LINES) -> None:
    """The human `repo status`: each task's counts, then the files changed since the
    last sync grouped by kind, as git does, then a section per kind of trouble
    (`_status_sections`), then conflicts with both sides, or that nothing is pending.
    Each list names at most `cap` files (None: all)."""
    for t in st["tasks"]:
        _print_task_status(t)
    changes = [D.FileChange(**c) for c in st["file_changes"]]
    # With a cap, `file_changes` holds only the first of each kind: the counts say how
    # many there are (collect_status).
    counts = st.get("file_change_counts") or Counter(c.kind for c in changes)
    hint = "'repo status --all' lists them all"
    if any(n for kind, n in counts.items() if kind != D.CONFLICT):
        echo("\nChanges not yet synced ('repo sync' sends them):")
        for kind in D.KINDS:
            if kind == D.CONFLICT:
                continue
            group = [c for c in changes if c.kind == kind]
            shown = group if cap is None else group[:cap]  # format only what is shown
            lines = [f"{kind + ':':<15}{D.change_text(c)}" for c in shown]
            for line in D.capped(lines, cap, hint, counts.get(kind, 0)):
                echo(f"  {line}")
    for heading, lines in _status_sections(st):
        if lines:
            echo(heading)
            for line in D.capped(lines, cap, hint):
                echo(f"  {line}")
    if st["conflicts"]:
        listed = [c for c in changes if c.kind == D.CONFLICT]
        n_decided = st.get("conflicts_decided", sum(1 for c in listed if c.detail))
        echo(f"\n{conflicts_heading(st['conflicts'], n_decided)}")
        lines = [D.change_text(c) for c in listed[:cap]]
        for line in D.capped(lines, cap, hint, counts.get(D.CONFLICT, 0)):
            echo(f"  {line}")
    if not st["pending_total"] and not st["conflicts"] and not st["damaged"]:
        echo("\nNothing pending.")


def conflicts_heading(total: int, n_decided: int) -> str:
    """The status line over the conflicts: how many, and what settles them."""
    if n_decided == total:
        return f"Conflicts: {total}, all decided ('repo sync' carries the decisions out):"
    if n_decided:
        return (
            f"Conflicts: {total}, {n_decided} decided ('repo sync' carries them out); settle "
            "the others with 'repo resolve' ('repo conflicts' shows them):"
        )
    return f"Conflicts: {total} (settle them with 'repo resolve'; 'repo conflicts' shows them):"


def _print_task_status(t: dict[str, Any]) -> None:
    where = (t["root"] or ".") + "/"
    echo(f"Task '{t['name']}' ({t['type']}) in {where}: {t['images']} images")
    if t["labels"]:
        width = max(len(n) for n in t["labels"])
        for name, n in t["labels"].items():
            echo(f"  {name.ljust(width)}  {n}")
    if t["unlabelled"]:
        echo(f"  (unlabelled)  {t['unlabelled']}")
    if t["pending"]:
        kinds = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in t["pending"].items())
        echo(f"  pending changes: {kinds}")


def _status_sections(st: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(heading, lines) of each section of the status below the tasks, in order; a
    section without lines is not printed."""
    damaged, invalid = st["damaged"], st["invalid"]
    retry, problems = st["retry_later"], st["problems"]
    return [
        (
            f"\nDamaged ({len(damaged)}): synced images whose files cannot be read now; "
            "held back (nothing is uploaded or deleted) until they are valid again:",
            [f"{item['path']}: {item['reason']}" for item in damaged],
        ),
        (
            f"\nNot valid images ({len(invalid)}), never uploaded:",
            [f"{item['path']}: {item['reason']}" for item in invalid],
        ),
        (f"\nChanged while being read, retried on the next scan ({len(retry)}):", list(retry)),
        (f"\nProblems ({len(problems)}):", [p["message"] for p in problems]),
    ]


def _quote(path: str) -> str:
    """Quote like git's porcelain when a path has characters a line parser would trip on."""
    if any(c in path for c in '"\\\t\n\r') or " -> " in path or not path.isprintable():
        return json.dumps(path, ensure_ascii=False)
    return path


def print_porcelain(st: dict[str, Any], *, nul: bool) -> None:
    out = sys.stdout
    records: list[list[str]] = []
    for c in st["changes"]:
        code = CODES.get(c["kind"], "?")
        path = c["file"] or c["hash"] or ""
        if c["kind"] in (ch.MOVED, ch.LABEL_RENAMED) and c["old_path"]:
            records.append([code, path, c["old_path"]])
        else:
            records.append([code, path])
    for item in st["invalid"]:
        records.append(["!", item["path"], item["reason"]])
    for item in st["damaged"]:
        records.append(["X", item["path"], item["reason"]])
    for c in st["conflict_list"]:
        records.append(["C", c["path"] or "", c["field"]])
    for p in st["problems"]:
        records.append(["P", p["path"] or "", p["message"]])
    for rec in records:
        if nul:
            out.write(f"{rec[0]} {rec[1]}\0" + "".join(f"{x}\0" for x in rec[2:]))
        elif rec[0] in ("R", "N"):
            out.write(f"{rec[0]} {_quote(rec[2])} -> {_quote(rec[1])}\n")
        elif len(rec) > 2:
            out.write(f"{rec[0]} {_quote(rec[1])}\t{rec[2]}\n")
        else:
            out.write(f"{rec[0]} {_quote(rec[1])}\n")
    out.flush()


def journal_entries(
    conn: sqlite3.Connection, *, limit: int | None, pending_only: bool
) -> list[dict[str, Any]]:
    """The journal rows, newest first, each with `change`: what happened to which file
    on which side in the user's words (`describe.journal_change`), None for internal
    bookkeeping."""
    rows = journal.entries(conn, limit=limit, pending_only=pending_only)
    bindings = load_bindings(conn)
    files: dict[str, str] = {}
    for path, digest in valid_files(conn):
        files.setdefault(digest, path)
    gone = sorted({r[7] for r in rows if r[7] and r[7] not in files})
    last_seen = journal.last_paths(conn, gone)

    def path_of(digest: str | None) -> str | None:
        return (files.get(digest) or last_seen.get(digest)) if digest else None

    def label_of(path: str) -> str | None:
        binding = task_for(path, bindings)
        return folder_label(path, binding) if binding is not None else None

    out = []
    for r in rows:
        detail = json.loads(r[8]) if r[8] else None
        change = D.journal_change(
            D.JournalRow(r[2], r[3], r[5], r[6], r[7], detail), path_of, label_of
        )
        out.append(
            {
                "id": r[0],
                "time": _iso(r[1]),
                "kind": r[2],
                "status": r[3],
                "task": r[4],
                "path": r[5],
                "old_path": r[6],
                "hash": r[7],
                "detail": detail,
                "error": r[9],
                "change": change.as_json() if change is not None else None,
            }
        )
    return out


def _iso(ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="seconds")


_LOG_STATUS = {
    journal.PENDING: " (not synced yet)",
    journal.IN_FLIGHT: " (unfinished: the next sync finishes it)",
}


def print_log(entries: list[dict[str, Any]], *, limit: int | None = None) -> None:
    """What happened to which file, on which side, newest first: the entries with a
    user-level change (at most `limit`); `print_log_debug` prints every entry."""
    shown = [e for e in entries if e["change"] is not None][:limit]
    if not shown:
        echo("The journal is empty." if not entries else "Nothing happened to any file yet.")
        return
    for e in shown:
        c = D.FileChange(**e["change"])
        what = D.action(c, done=True) if e["kind"].startswith(journal.OP_PREFIX) else c.kind
        side = {D.LOCAL: "local", D.REMOTE: "server"}.get(c.side or "", "")
        note = _LOG_STATUS.get(e["status"], "")
        if e["error"]:
            note = f" (failed: {e['error']})"
        echo(f"{e['time']}  {side:<6}  {what}: {D.change_text(c)}{note}")


def print_log_debug(entries: list[dict[str, Any]]) -> None:
    """Every journal entry as it is recorded (`repo log --debug`)."""
    if not entries:
        echo("The journal is empty.")
        return
    for e in entries:
        what = e["path"] or ""
        if e["old_path"]:
            what = f"{e['old_path']} -> {e['path']}"
        if not what and e["hash"]:
            what = f"image {e['hash'][:12]}"
        extra = f"  {json.dumps(e['detail'], ensure_ascii=False)}" if e["detail"] else ""
        err = f"  error: {e['error']}" if e["error"] else ""
        echo(f"{e['id']:>6}  {e['time']}  {e['status']:<9} {e['kind']:<14} {what}{extra}{err}")


def check_ignore_lines(
    root: Path, cwd: Path, paths: tuple[str, ...], verbose: bool, non_matching: bool
) -> tuple[list[str], bool]:
    from localrepo.ignore import IgnoreRules

    texts: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).as_posix()
        rel = "" if rel == "." else rel
        if rel == "" and STATE_DIR in dirnames:
            dirnames.remove(STATE_DIR)
        if IGNORE_FILE in filenames:
            try:
                texts[rel] = (Path(dirpath) / IGNORE_FILE).read_text(
                    encoding="utf-8", errors="replace"
                )
            except OSError:
                continue
    rules = IgnoreRules.from_texts(texts)
    lines: list[str] = []
    any_ignored = False
    for given in paths:
        full = Path(os.path.normpath(cwd / given))
        try:
            rel = full.relative_to(root.resolve()).as_posix()
        except ValueError:
            import click

            raise click.UsageError(f"{given} is outside the repository {root}.") from None
        is_dir = full.is_dir() or given.endswith("/")
        match = rules.match(rel, is_dir) if rel not in ("", ".") else None
        if match is not None:
            any_ignored = True
            if verbose:
                line = "" if match.line is None else str(match.line)
                lines.append(f"{match.source}:{line}:{match.pattern}\t{given}")
            else:
                lines.append(given)
        elif verbose and non_matching:
            lines.append(f"::\t{given}")
    return lines, any_ignored
