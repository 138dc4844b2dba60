"""What every command runs with, and how failures become exit codes. No click here:
`repo status` runs without importing it (see cli/entry.py), and this is what it shares
with the click commands."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from localrepo.errors import EXIT_ERROR, EXIT_STOPPED, LocalrepoError


def echo(message: str = "", *, err: bool = False) -> None:
    """One line to stdout (or stderr), flushed: what click.echo does with a str."""
    stream = sys.stderr if err else sys.stdout
    stream.write(f"{message}\n")
    stream.flush()


def examples(*lines: str) -> str:
    """A command's help epilog: its examples, printed last and unwrapped (click's \\b)
    so that a user can copy them (clig.dev: lead with examples)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


class Ctx:
    def __init__(self, directory: str | None, verbose: int, quiet: bool) -> None:
        self.directory = Path(directory).absolute() if directory else Path.cwd()
        self.verbose = verbose
        self.quiet = quiet

    def repo(self):  # -> Repository
        from localrepo.repository import find_repository

        repo = find_repository(self.directory)
        repo.on_lock_wait = lambda: _say_waiting(repo.state_dir, self.quiet)
        return repo

    def info(self, message: str) -> None:
        if not self.quiet:
            echo(message, err=True)


def _say_waiting(state_dir: Path, quiet: bool) -> None:
    """Another process holds the repository lock: say who, then wait for it."""
    if quiet:
        return
    from localrepo.watch.daemon_files import running_pid

    pid = running_pid(state_dir)
    who = f"; the daemon runs here as pid {pid}" if pid else ""
    echo(
        f"repo: waiting for this repository's lock (another localrepo process holds it{who})...",
        err=True,
    )


def run_guarded(command: Callable[[], int | None], *, quick_exit: bool = False) -> NoReturn:
    """Run a command and exit with its code; a known failure is one line on stderr and
    its exit code, never a traceback.

    `quick_exit`: the command closed everything it opened (catalog, pool, files), so
    once the output is flushed the process ends at once, without the interpreter's
    teardown of every module and object (a tenth of a no-change `repo status`)."""
    try:
        code = command() or 0
        if quick_exit:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    except LocalrepoError as exc:
        echo(f"repo: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        echo("Interrupted; nothing half-done was recorded.", err=True)
        sys.exit(EXIT_STOPPED)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(EXIT_ERROR)
    sys.exit(code)
