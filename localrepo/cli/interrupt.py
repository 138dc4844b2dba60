"""Ctrl-C during a sync run (`repo sync`, `push`, `pull`, `clone`): before the run
executes anything it interrupts at once, as before (`Aborted.`, cli/main.py); then the
first one asks the run to stop (sync/stopping.py: no new work, the requests in flight
get a grace of two seconds) and says so; a second one ends the process at once, exit
130, and the journal recovers the work in flight at the next run (docs/sync.md,
"Stopping a sync").

The shell around `StopRequest` and the words of sync/stopping.py; signal handlers can
only be set from the main thread, so elsewhere (a test calling `main()` from a thread)
Ctrl-C keeps Python's default."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from localrepo.cli.context import echo
from localrepo.errors import EXIT_STOPPED
from localrepo.sync import plan as P
from localrepo.sync.stopping import StopRequest, quit_text, stopped_text, stopping_text


@contextmanager
def ctrl_c_stops(stop: StopRequest, command: str) -> Iterator[None]:
    """While the block runs, SIGINT asks `stop` to stop, then quits."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(_signum: int, _frame: FrameType | None) -> None:
        if stop.requested:
            echo(quit_text(command), err=True)
            sys.stdout.flush()
            os._exit(EXIT_STOPPED)
        if not stop.executing:  # scanning, listing, planning: nothing to let end
            raise KeyboardInterrupt
        stop.request()
        echo(stopping_text(stop.in_flight), err=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def end_now(code: int) -> None:
    """End a stopped run's process: its abandoned workers may still wait on the server,
    and the interpreter would wait for them at exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def say_stopped(report: Any, command: str, *, quiet: bool) -> None:
    """A stopped run's last line (sync/stopping.py words it); the process then ends at
    once, not waiting for abandoned workers."""
    if not report.stopped:
        return
    planned = [op.kind for t in report.tasks if t.plan for op in t.plan.ops]
    o = report.outcome
    if not quiet:
        echo(
            stopped_text(
                command,
                uploaded=o.uploaded,
                to_upload=planned.count(P.UPLOAD),
                downloaded=o.downloaded,
                to_download=planned.count(P.DOWNLOAD),
                abandoned=o.abandoned,
            ),
            err=True,
        )
    end_now(EXIT_STOPPED)
