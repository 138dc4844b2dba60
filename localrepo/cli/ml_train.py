"""`repo train` and `repo models`: train a new version of a task's model on the server,
and list the versions it has.

A shell: it scans, reads the catalog, calls the server and prints. What it decides it
asks cli/ml_report.py (pure): whether the catalog is synced enough to train
(`unsynced_message`), and every line and JSON object it prints (`metrics_lines`,
`model_json`, `model_row`, `table`). The task and its remote come from cli/ml_task.py.

Contract:
- train refuses a task with unsynced changes or conflicts (with --force it warns and
  trains what the server holds, once the task was synced at least once);
- without --wait it queues and returns; with --wait it follows the training and exits 1
  when it did not end TRAINED;
- -n/--dry-run checks everything and queues nothing;
- models lists every version (or one with --version, in detail), `*` marking production.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from localrepo.cli import ml_report as mr
from localrepo.cli.context import Ctx
from localrepo.cli.ml_task import (
    echo_json,
    gone,
    pick_task,
    remote_client,
    remote_task,
    sync_state,
    task_rows,
)
from localrepo.errors import LocalrepoError

OnStatus = Callable[[str | None, float], None]  # (training status, seconds waited)

# -- train ---------------------------------------------------------------------------------------


def run_train(
    obj: Ctx,
    task_name: str | None,
    wait: bool,
    timeout: float | None,
    force: bool,
    as_json: bool,
    token: str | None,
    dry_run: bool = False,
) -> None:
    """`repo train`: check the task is synced, queue a training, and maybe follow it."""
    task = _trainable_task(obj, task_name, force)
    client = remote_client(obj, task, token)
    try:
        before = remote_task(client, task)
        known = [m.id for m in client.task_models(task.remote_id)]
        if dry_run:
            _echo_dry_run(task, before, len(known), as_json)
            return
        answer = _queue_training(client, task)
        if not wait:
            _report_queued(obj, task, client.get_task(task.remote_id), answer, as_json)
            return
        update, stop = _status_display(task.name, obj.quiet or as_json)
        try:
            remote, model = client.wait_for_training(
                task.remote_id, before, known, timeout=timeout, on_status=update
            )
        finally:
            stop()
    finally:
        client.close()
    _report_trained(obj, task, remote, model, as_json)


def _trainable_task(obj: Ctx, task_name: str | None, force: bool) -> mr.TaskRow:
    """The task to train, after a scan (like status: the folders as they are now, so
    pending changes are known); refused when `ml_report.unsynced_message` has a reason,
    unless `force` and the server knows the task (then the reason is a warning)."""
    from localrepo.cli.status import run_scan

    repo = obj.repo()
    task = pick_task(obj, repo, task_name)
    run_scan(obj)
    conn = repo.connect()
    try:
        pending, conflicts = sync_state(conn, task.id)
        task = next(t for t in task_rows(conn) if t.id == task.id)
    finally:
        conn.close()
    message = mr.unsynced_message(task, pending, conflicts)
    if message is not None and (task.remote_id is None or not force):
        raise mr.not_synced_error(message)
    if message is not None:
        obj.info(f"warning: {message}")
    return task


def _queue_training(client: Any, task: mr.TaskRow) -> dict[str, Any]:
    """Ask the server to train the task; its answer (version, detail)."""
    from localrepo.remote.errors import BadRequestError, NotFoundError

    try:
        answer: dict[str, Any] = client.train_task(task.remote_id)
    except BadRequestError as exc:
        raise LocalrepoError(
            f"The server refused to train '{task.name}': {exc.detail or exc}"
        ) from None
    except NotFoundError:
        raise gone(task) from None
    return answer


def _report_queued(
    obj: Ctx, task: mr.TaskRow, now: Any, answer: dict[str, Any], as_json: bool
) -> None:
    """Say that a training was queued (without --wait); `now` is the remote task."""
    if as_json:
        echo_json(
            {
                "task": task.name,
                "remote_id": task.remote_id,
                "status": now.last_train_status,
                "version": answer.get("version"),
                "detail": answer.get("detail"),
            }
        )
        return
    said = answer.get("detail")
    obj.info(
        f"Training of '{task.name}' queued ({now.last_train_status or 'queued'})"
        + (f": {said}" if isinstance(said, str) and said else ".")
        + " See 'repo models' for the result, or use --wait next time."
    )


def _report_trained(obj: Ctx, task: mr.TaskRow, remote: Any, model: Any, as_json: bool) -> None:
    """Print how a followed training ended; an error when it did not end TRAINED."""
    status = remote.last_train_status
    if as_json:
        echo_json(
            {
                "task": task.name,
                "remote_id": task.remote_id,
                "status": status,
                "version": model.version if model else None,
                "model": mr.model_json(model, remote.production_version) if model else None,
            }
        )
    if status != "TRAINED":
        reason = (model.detail if model else None) or "the server gave no reason"
        raise LocalrepoError(f"Training of '{task.name}' failed: {reason}")
    if as_json:
        return
    version = model.version if model else remote.production_version
    backend = f" (features: {model.backend})" if model and model.backend else ""
    obj.info(f"Trained '{task.name}': version {version} is now the production version{backend}.")
    if model is not None:
        for line in mr.metrics_lines(model.metrics, mr.summary_numbers(model)):
            click.echo(line)


def _status_display(name: str, quiet: bool) -> tuple[OnStatus, Callable[[], None]]:
    """A callback for wait_for_training: a rich spinner on a terminal, one line per status
    change otherwise, nothing when quiet. Returns (callback, stop)."""
    if quiet:
        return (lambda status, elapsed: None), (lambda: None)
    if sys.stderr.isatty():
        from rich.console import Console

        status_ui = Console(stderr=True).status(f"Training '{name}': queued")
        status_ui.start()

        def update(status: str | None, elapsed: float) -> None:
            status_ui.update(f"Training '{name}': {status or 'queued'} ({elapsed:.0f} s)")

        return update, status_ui.stop
    last: list[str | None] = [""]

    def line(status: str | None, elapsed: float) -> None:
        if status != last[0]:
            last[0] = status
            click.echo(f"training '{name}': {status or 'queued'} ({elapsed:.0f} s)", err=True)

    return line, (lambda: None)


def _echo_dry_run(task: mr.TaskRow, remote: Any, models: int, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "task": task.name,
                "remote_id": task.remote_id,
                "dry_run": True,
                "status": remote.last_train_status,
                "production_version": remote.production_version,
                "models": models,
            }
        )
        return
    click.echo(
        f"Would queue a training of '{task.name}' ({task.remote_id}): now "
        f"{remote.last_train_status or 'never trained'}, production version "
        f"{remote.production_version or '-'}, {models} model(s) so far."
    )


# -- models --------------------------------------------------------------------------------------


def run_models(
    obj: Ctx, task_name: str | None, version: int | None, as_json: bool, token: str | None
) -> None:
    """`repo models`: the task's versions, as a table or JSON; one in detail with
    `version`."""
    repo = obj.repo()
    task = pick_task(obj, repo, task_name)
    client = remote_client(obj, task, token)
    try:
        remote = remote_task(client, task)
        models = client.task_models(task.remote_id)
    finally:
        client.close()
    production = remote.production_version
    if version is not None:
        models = [m for m in models if m.version == version]
        if not models:
            raise LocalrepoError(
                f"--version {version}: the task '{task.name}' has no such version."
            )
    if as_json:
        echo_json([mr.model_json(m, production) for m in models])
        return
    if not models:
        obj.info(f"The task '{task.name}' has no models yet: run 'repo train'.")
        return
    for line in mr.table(
        mr.model_headers(task.type), [mr.model_row(m, production, task.type) for m in models]
    ):
        click.echo(line)
    if production is not None:
        obj.info(f"* production version (classify uses it unless --version): {production}")
    if version is not None:
        [model] = models
        _print_model_detail(model)


def _print_model_detail(model: Any) -> None:
    """What `repo models --version N` adds below the table: the detail and the metrics."""
    if model.detail:
        click.echo(f"\ndetail: {model.detail}")
    lines = mr.metrics_lines(model.metrics, mr.summary_numbers(model))
    if lines:
        click.echo("")
        for line in lines:
            click.echo(line)
