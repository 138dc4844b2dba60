"""The task an ML command works on, and its counterpart on the server.

Shared by `repo train`, `models`, `classify` and `evaluate` (cli/ml_train.py,
cli/ml_classify.py, cli/ml_evaluate.py). A shell: it reads the catalog and asks the
server, and leaves the decisions to the pure core in cli/ml_report.py
(`ml_report.choose_task` picks the task).

Contract:
- `pick_task` is the task named by --task, else the one bound where the command runs;
- `remote_client` refuses a task that was never synced (the server does not know it);
- `remote_task` and `check_version` turn a task gone from the server, a task never
  trained and a version that was never trained into one clear `LocalrepoError` each.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import click

from localrepo.cli import ml_report as mr
from localrepo.cli.connect import repo_client
from localrepo.cli.context import Ctx
from localrepo.errors import LocalrepoError


def echo_json(data: Any, *, lines: bool = False) -> None:
    """`data` as JSON on stdout: indented, or on one line (`lines`: one record a line)."""
    text = json.dumps(data, ensure_ascii=False, indent=None if lines else 2)
    click.echo(text)


# -- the catalog ---------------------------------------------------------------------------------


def task_rows(conn: sqlite3.Connection) -> list[mr.TaskRow]:
    """Every task bound in the repository."""
    from localrepo.catalog.tasks import task_rows as rows

    return [mr.TaskRow(*row) for row in rows(conn)]


def _here(obj: Ctx, root: Path) -> str | None:
    """The working folder relative to the repository root ("" for the root), or None
    when it is outside the repository."""
    try:
        rel = obj.directory.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
    return "" if rel == "." else rel


def pick_task(obj: Ctx, repo: Any, name: str | None) -> mr.TaskRow:
    """The task a command is about (`ml_report.choose_task` over the catalog's tasks)."""
    conn = repo.connect()
    try:
        return mr.choose_task(task_rows(conn), name, _here(obj, repo.root))
    finally:
        conn.close()


def sync_state(conn: sqlite3.Connection, task_id: int) -> tuple[dict[str, int], int]:
    """(open journal entries by kind, open conflicts) of one task."""
    from localrepo.catalog import conflicts, journal

    return journal.open_counts_of_task(conn, task_id), conflicts.open_count_of_task(conn, task_id)


# -- the remote ----------------------------------------------------------------------------------


def remote_client(obj: Ctx, task: mr.TaskRow, token: str | None, jobs: int = 8) -> Any:
    """A client of the repository's remote for a task the server knows (the caller
    closes it)."""
    if task.remote_id is None:
        raise LocalrepoError(
            f"The task '{task.name}' was never synced: the server does not know it yet. "
            "Run 'repo sync' first."
        )
    _, client = repo_client(obj, token, jobs)
    return client


def gone(task: mr.TaskRow) -> LocalrepoError:
    """The error for a task whose remote counterpart was deleted."""
    return LocalrepoError(
        f"The remote task of '{task.name}' ({task.remote_id}) is gone from the server."
    )


def remote_task(client: Any, task: mr.TaskRow) -> Any:
    """The server's view of the task (a RemoteTask)."""
    from localrepo.remote.errors import NotFoundError

    try:
        return client.get_task(task.remote_id)
    except NotFoundError:
        raise gone(task) from None


def check_version(client: Any, task: mr.TaskRow, version: int | None) -> tuple[Any, int]:
    """The remote task and the version a classification will use; a clear error when the
    task was never trained or has no such trained version."""
    remote = remote_task(client, task)
    if version is None:
        if remote.production_version is None:
            raise LocalrepoError(
                f"The task '{task.name}' has no trained model yet: run 'repo train --wait' first."
            )
        return remote, remote.production_version
    models = client.task_models(task.remote_id)
    trained = [m.version for m in models if m.train_status == "TRAINED" and m.version is not None]
    if version not in trained:
        have = ", ".join(str(v) for v in trained) or "none"
        raise LocalrepoError(
            f"--version {version}: the task '{task.name}' has no trained version {version} "
            f"(trained versions: {have}; see 'repo models')."
        )
    return remote, version
