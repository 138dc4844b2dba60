"""`repo train`: train a new version of a task's model on the server, and keep in
production the version the --promote policy picks.

A shell: it scans, reads the catalog, calls the server and prints. What it decides it
asks cli/ml_report.py (pure): whether the catalog is synced enough to train
(`unsynced_message`) and the metrics it prints; and cli/promotion.py (pure): which version
stays in production after the training (`decide`). The task and its remote come from
cli/ml_task.py.

Contract:
- train refuses a task with unsynced changes or conflicts (with --force it warns and
  trains what the server holds, once the task was synced at least once);
- without --wait it queues and returns, unless a production version exists and the
  policy is not `always`: then it waits for the end (saying so) to compare; with --wait
  it follows the training and exits 1 when it did not end TRAINED;
- the server makes every new version production; when `decide` keeps the previous
  one, train sets it back (PATCH task/ production_version) and says why;
- -n/--dry-run checks everything and queues nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from localrepo.cli import ml_report as mr
from localrepo.cli import promotion as pr
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
    promote: str = pr.IF_BETTER,
) -> None:
    """`repo train`: check the task is synced, queue a training, follow it (with --wait,
    or when `promote` needs its end), and keep the version `promotion.decide` picks."""
    task = _trainable_task(obj, task_name, force)
    client = remote_client(obj, task, token)
    try:
        before = remote_task(client, task)
        known = [m.id for m in client.task_models(task.remote_id)]
        if dry_run:
            _echo_dry_run(task, before, len(known), as_json)
            return
        answer = _queue_training(client, task)
        previous = before.production_version
        must_compare = promote != pr.ALWAYS and previous is not None
        if not wait and not must_compare:
            _report_queued(obj, task, client.get_task(task.remote_id), answer, as_json)
            return
        if not wait:
            obj.info(
                f"Waiting for the training to end, to compare it with version {previous} "
                f"(--promote {promote}); --promote always returns at once."
            )
        remote, model = _follow(obj, client, task, before, known, timeout, must_compare, as_json)
        decision = None
        if remote.last_train_status == "TRAINED" and model is not None:
            decision, remote = _promote(client, task, remote, model, previous, promote)
    finally:
        client.close()
    _report_trained(obj, task, remote, model, decision, as_json)


def _follow(
    obj: Ctx,
    client: Any,
    task: mr.TaskRow,
    before: Any,
    known: list[str],
    timeout: float | None,
    must_compare: bool,
    as_json: bool,
) -> tuple[Any, Any]:
    """Wait for the training to end: (the remote task, the model it made)."""
    from localrepo.remote.training import TrainingTimeout

    update, stop = _status_display(task.name, obj.quiet or as_json)
    try:
        return client.wait_for_training(
            task.remote_id, before, known, timeout=timeout, on_status=update
        )
    except TrainingTimeout as exc:
        if not must_compare:
            raise
        raise LocalrepoError(
            f"{exc} When it ends the server puts it in production without comparing it "
            f"with version {before.production_version}: check 'repo models', and "
            "'repo models rollback' restores the previous version."
        ) from None
    finally:
        stop()


def _promote(
    client: Any, task: mr.TaskRow, remote: Any, model: Any, previous: int | None, policy: str
) -> tuple[pr.Decision | None, Any]:
    """Apply `promotion.decide` to a training that ended TRAINED: set the previous
    version back when it stays. Returns the decision (None when something else changed
    the production version meanwhile: then it is left alone) and the task as it is now."""
    if model.version is None or remote.production_version != model.version:
        return None, remote
    older = next((m for m in client.task_models(task.remote_id) if m.version == previous), None)
    case = pr.Case(
        policy=policy,
        task_type=task.type,
        new=_measured(model),
        previous=previous,
        baseline=pr.baseline_from(model.metrics),
        previous_own=_measured(older) if older is not None else None,
    )
    decision = pr.decide(case)
    if decision.restore:
        from localrepo.remote.errors import BadRequestError

        try:
            remote = client.set_production_version(task.remote_id, decision.production)
        except BadRequestError as exc:  # e.g. the previous version was deleted meanwhile
            said = " ".join(exc.field_errors.get("production_version", [])) or exc.detail
            decision = pr.not_restored(decision, model.version, said or str(exc))
    return decision, remote


def _measured(model: Any) -> pr.Measured:
    images = model.metrics.get("test_images")
    return pr.Measured(
        model.version or 0, mr.summary_numbers(model), images if isinstance(images, int) else None
    )


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


def _report_trained(
    obj: Ctx,
    task: mr.TaskRow,
    remote: Any,
    model: Any,
    decision: pr.Decision | None,
    as_json: bool,
) -> None:
    """Print how a followed training ended and which version is in production; an error
    when it did not end TRAINED."""
    status = remote.last_train_status
    production = remote.production_version
    if as_json:
        echo_json(
            {
                "task": task.name,
                "remote_id": task.remote_id,
                "status": status,
                "version": model.version if model else None,
                "production_version": production,
                "promotion": _decision_json(decision),
                "model": mr.model_json(model, production) if model else None,
            }
        )
    if status != "TRAINED":
        reason = (model.detail if model else None) or "the server gave no reason"
        raise LocalrepoError(f"Training of '{task.name}' failed: {reason}")
    if as_json:
        return
    version = model.version if model else production
    backend = f" (features: {model.backend})" if model and model.backend else ""
    obj.info(f"Trained '{task.name}': version {version}{backend}.")
    if model is not None:
        for line in mr.metrics_lines(model.metrics, mr.summary_numbers(model)):
            click.echo(line)
    if decision is not None:
        obj.info(decision.message)
    else:
        obj.info(f"Version {production} is the production version.")


def _decision_json(decision: pr.Decision | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    c = decision.comparison
    return {
        "production_version": decision.production,
        "restored_previous": decision.restore,
        "message": decision.message,
        "comparison": None
        if c is None
        else {
            "metric": c.new.metric,
            "new": c.new.value,
            "previous": c.old.value,
            "previous_version": c.old_version,
            "same_test_images": c.same_images,
            "test_images": c.test_images,
        },
    }


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
