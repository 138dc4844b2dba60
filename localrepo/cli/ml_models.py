"""`repo models`, `repo models promote VERSION`, `repo models rollback`: list a task's
model versions, and choose which one is in production (the one classification uses).

A shell: it reads the catalog, calls the server and prints. The text of the listing is
cli/ml_report.py's (`model_row`, `model_json`, `metrics_lines`); which version promote
and rollback set is cli/promotion.py's (`promote_target`, `rollback_target`). The task
and its remote come from cli/ml_task.py.

Contract:
- models lists every version (or one with --version, in detail), `*` marking production;
- promote sets a trained version as production (exit 2, naming the trained versions,
  for one that does not exist or did not train); already production: nothing is sent;
- rollback sets the newest trained version older than the production one (exit 1 when
  there is none).
"""

from __future__ import annotations

from typing import Any

import click

from localrepo.cli import ml_report as mr
from localrepo.cli import promotion as pr
from localrepo.cli.context import Ctx
from localrepo.cli.ml_task import echo_json, gone, pick_task, remote_client, remote_task
from localrepo.errors import EXIT_USAGE, LocalrepoError


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


def run_promote(
    obj: Ctx, version: int, task_name: str | None, as_json: bool, token: str | None
) -> None:
    """`repo models promote VERSION`."""
    _set_production(
        obj,
        task_name,
        as_json,
        token,
        lambda versions, _now, name: pr.promote_target(version, versions, name),
    )


def run_rollback(obj: Ctx, task_name: str | None, as_json: bool, token: str | None) -> None:
    """`repo models rollback`."""
    _set_production(obj, task_name, as_json, token, pr.rollback_target)


def _set_production(
    obj: Ctx,
    task_name: str | None,
    as_json: bool,
    token: str | None,
    choose: Any,  # (versions, production now, task name) -> the version to set
) -> None:
    repo = obj.repo()
    task = pick_task(obj, repo, task_name)
    client = remote_client(obj, task, token)
    try:
        before = remote_task(client, task).production_version
        versions = [
            pr.Version(m.version, m.train_status, m.detail)
            for m in client.task_models(task.remote_id)
            if m.version is not None
        ]
        target: int = choose(versions, before, task.name)
        now = before
        if target != before:
            now = _patch(client, task, target)
    finally:
        client.close()
    if as_json:
        echo_json(
            {
                "task": task.name,
                "production_version": now,
                "previous_production_version": before,
                "changed": now != before,
            }
        )
        return
    if now == before:
        obj.info(f"Version {now} of '{task.name}' is already the production version.")
        return
    was = f" (was version {before})" if before is not None else ""
    obj.info(f"Version {now} of '{task.name}' is now the production version{was}.")


def _patch(client: Any, task: mr.TaskRow, version: int) -> int | None:
    """Set the production version; the server's refusal as a user message."""
    from localrepo.remote.errors import BadRequestError, NotFoundError

    try:
        remote = client.set_production_version(task.remote_id, version)
    except BadRequestError as exc:
        said = " ".join(exc.field_errors.get("production_version", [])) or exc.detail or str(exc)
        raise LocalrepoError(
            f"The server refused version {version} of '{task.name}': {said}",
            exit_code=EXIT_USAGE,
        ) from None
    except NotFoundError:
        raise gone(task) from None
    production: int | None = remote.production_version
    return production
