"""`repo scan` and `repo status`: shared by their click commands and the fast path in
cli/entry.py, so no click here."""

from __future__ import annotations

from typing import Any

from localrepo.cli.context import Ctx
from localrepo.errors import EXIT_DECISION, EXIT_OK


def run_scan(obj: Ctx, *, dry_run: bool = False) -> Any:  # -> ScanReport
    from localrepo.cli.progress import progress_bar
    from localrepo.scan.scanner import Scanner

    repo = obj.repo()
    with repo.lock():  # one scan at a time: a second one would journal the same changes
        conn = repo.connect()
        try:
            with progress_bar("Scanning", quiet=obj.quiet) as progress:
                return Scanner(repo.root, conn, progress=progress).scan(dry_run=dry_run)
        finally:
            conn.close()


def show_status(
    obj: Ctx, *, as_json: bool, porcelain: bool, nul: bool, exit_code: bool, show_all: bool = False
) -> int:
    """Scan, then print the status (each list capped unless `show_all`); the exit code
    (EXIT_DECISION with `exit_code` when there are pending changes, conflicts or damaged
    files)."""
    from localrepo.cli import report

    scan_report = run_scan(obj)
    conn = obj.repo().connect()
    try:
        # The human status prints the first STATUS_LINES of each kind of change: only
        # those are built (cli/pending.py); the others print them all.
        cap = None if show_all or as_json or porcelain else report.STATUS_LINES
        st = report.collect_status(conn, scan_report, cap)
        if as_json or porcelain:
            st["changes"] = report.pending_changes(conn)
    finally:
        conn.close()
    if as_json:
        report.print_json(st)
    elif porcelain:
        report.print_porcelain(st, nul=nul)
    else:
        report.print_status(st, cap=cap)
    if exit_code and (st["pending_total"] or st["conflicts"] or st["damaged"]):
        return EXIT_DECISION
    return EXIT_OK


def show_scan(obj: Ctx, *, dry_run: bool, as_json: bool) -> int:
    """Scan and print what changed."""
    from localrepo.cli import report

    rep = run_scan(obj, dry_run=dry_run)
    if as_json:
        additions = []
        if rep.unlisted_additions:
            conn = obj.repo().connect()
            try:
                additions = report.unlisted_additions(conn, rep)
            finally:
                conn.close()
        report.print_json(report.scan_json(rep, additions))
    else:
        report.print_scan(rep, quiet=obj.quiet)
    return EXIT_OK
