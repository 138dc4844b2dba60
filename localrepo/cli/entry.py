"""The console scripts' entry point.

`repo status` and `repo scan`, in the forms scripts and people type, run from here
without importing click: at 20,000 files, importing click is a tenth of a no-change
status. Every other command, and any argument this parser does not know (--help, a
typo, bundled short flags, `-C` naming no folder), goes to the click command line in
cli/main.py, which runs it or says what is wrong. Both run the same functions
(cli/status.py), so the output cannot differ."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from localrepo.cli.context import Ctx, run_guarded

STATUS_FLAGS = frozenset({"--json", "--porcelain", "-z", "--exit-code", "--all"})
SCAN_FLAGS = frozenset({"-n", "--dry-run", "--json"})


def parse_fast(args: Sequence[str]) -> Callable[[], int] | None:
    """The command `args` asks for, ready to run, if it is a plain status or scan;
    None for anything the click command line should handle."""
    directory: str | None = None
    verbose, quiet = 0, False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-C" and i + 1 < len(args):
            directory = args[i + 1]
            i += 2
        elif arg in ("-q", "--quiet"):
            quiet, i = True, i + 1
        elif arg in ("-v", "--verbose"):
            verbose, i = verbose + 1, i + 1
        else:
            break
    if i >= len(args) or (directory is not None and not os.path.isdir(directory)):
        return None
    command, flags = args[i], set(args[i + 1 :])
    if command == "status" and flags <= STATUS_FLAGS:
        if "-z" in flags and "--porcelain" not in flags:
            return None  # a usage error: click words it
        if "--json" in flags and "--porcelain" in flags:
            return None
        from localrepo.cli.status import show_status

        return lambda: show_status(
            Ctx(directory, verbose, quiet),
            as_json="--json" in flags,
            porcelain="--porcelain" in flags,
            nul="-z" in flags,
            exit_code="--exit-code" in flags,
            show_all="--all" in flags,
        )
    if command == "scan" and flags <= SCAN_FLAGS:
        from localrepo.cli.status import show_scan

        return lambda: show_scan(
            Ctx(directory, verbose, quiet),
            dry_run=bool(flags & {"-n", "--dry-run"}),
            as_json="--json" in flags,
        )
    return None


def main(argv: list[str] | None = None) -> None:
    command = parse_fast(sys.argv[1:] if argv is None else argv)
    if command is None:
        from localrepo.cli.main import main as full

        full(argv)
    else:
        run_guarded(command, quick_exit=True)
