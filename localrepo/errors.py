"""Errors a user can act on, each with the exit code the design gives it."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
# `repo sync`: conflicts remain, files are held back, or work is left (`push`/`pull`);
# `repo status --exit-code`: changes are pending or need a decision.
EXIT_DECISION = 3
EXIT_AUTH = 4
EXIT_UNREACHABLE = 5
EXIT_PARTIAL = 6
EXIT_SAFETY = 7
# Stopped by the user (Ctrl-C), as shells report a SIGINT: 128 + 2.
EXIT_STOPPED = 130


class LocalrepoError(Exception):
    """A failure with a message meant for the user (no traceback is shown)."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class NotARepositoryError(LocalrepoError):
    pass


class CatalogVersionError(LocalrepoError):
    """The catalog was written by a newer localrepo (or is not one of ours)."""
