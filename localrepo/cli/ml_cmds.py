"""`repo train`, `models`, `classify`, `evaluate`: the click commands, thin.

Each parses its options and calls its runner: `ml_train.run_train`,
`ml_train.run_models`, `ml_classify.run_classify`, `ml_evaluate.run_evaluate`. Those
shells read the catalog and the files, call the server and print; the decisions and the
text are ml_report.py's (pure). The commands are registered lazily by cli/main.py
(`LAZY_COMMANDS`)."""

from __future__ import annotations

from typing import Any

import click

from localrepo.cli.connect import token_option
from localrepo.cli.context import Ctx
from localrepo.cli.ml_classify import run_classify
from localrepo.cli.ml_evaluate import run_evaluate
from localrepo.cli.ml_train import run_models, run_train
from localrepo.vocabulary import CLASSIFY_BATCH

DEFAULT_TOP = 3
DEFAULT_JOBS = 4  # parallel classify requests


def _task_option(f: Any) -> Any:
    return click.option(
        "--task", "task_name", metavar="NAME", help="The task (default: the one bound here)."
    )(f)


@click.command()
@_task_option
@click.option("--wait", is_flag=True, help="Wait for the training to end; show its metrics.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="With --wait: give up waiting after this long (the server keeps training).",
)
@click.option(
    "--force", is_flag=True, help="Train even with local changes that are not synced yet."
)
@click.option(
    "-n", "--dry-run", is_flag=True, help="Check and show what would be trained; queue nothing."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@token_option
@click.pass_obj
def train(
    obj: Ctx,
    task_name: str | None,
    wait: bool,
    timeout: float | None,
    force: bool,
    dry_run: bool,
    as_json: bool,
    token: str | None,
) -> None:
    """Train a new version of the task's model on the server, from the images the
    server holds (run 'repo sync' first). With --wait, follow the training and print
    its metrics; exit 1 if it failed."""
    run_train(obj, task_name, wait, timeout, force, as_json, token, dry_run)


@click.command()
@_task_option
@click.option("--version", type=click.IntRange(min=1), help="Show this version in detail.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@token_option
@click.pass_obj
def models(
    obj: Ctx, task_name: str | None, version: int | None, as_json: bool, token: str | None
) -> None:
    """List the task's trained versions with their metrics; * marks the production
    version."""
    run_models(obj, task_name, version, as_json, token)


@click.command()
@click.argument("paths", nargs=-1, required=True)
@_task_option
@click.option("--version", type=click.IntRange(min=1), help="Model version (default: production).")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=DEFAULT_TOP,
    show_default=True,
    help="Show the K most probable labels.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 16),
    default=DEFAULT_JOBS,
    show_default=True,
    help="Parallel requests.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100),
    default=CLASSIFY_BATCH,
    show_default=True,
    help=f"Images per request (the hosted service takes at most {CLASSIFY_BATCH}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per image.")
@click.option(
    "--remote-task",
    metavar="NAME|ID",
    help="Use the model of the remote's task of this name or id (works outside a repository).",
)
@click.option(
    "--url",
    metavar="URL",
    help="With --remote-task: the remote (default: this repository's, else the one "
    "'repo login' remembered).",
)
@token_option
@click.pass_obj
def classify(
    obj: Ctx,
    paths: tuple[str, ...],
    task_name: str | None,
    version: int | None,
    top: int,
    jobs: int,
    batch_size: int,
    as_json: bool,
    remote_task: str | None,
    url: str | None,
    token: str | None,
) -> None:
    """Classify image files, or every image in folders, with the task's model.

    One line per image: 'path  label (prob), ...' (regression: 'path  label=value').
    Exit 6 when some files failed (each is named), 1 when all did."""
    run_classify(
        obj, paths, task_name, version, top, jobs, batch_size, as_json, token, (remote_task, url)
    )


@click.command()
@_task_option
@click.option("--version", type=click.IntRange(min=1), help="Model version (default: production).")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 16),
    default=DEFAULT_JOBS,
    show_default=True,
    help="Parallel requests.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@token_option
@click.pass_obj
def evaluate(
    obj: Ctx,
    task_name: str | None,
    version: int | None,
    jobs: int,
    as_json: bool,
    token: str | None,
) -> None:
    """Classify the repository's own labelled images and compare with their folders:
    accuracy and confusion matrix (multi_class), per-tag precision/recall
    (multi_label), MAE/RMSE/R2 (regression)."""
    run_evaluate(obj, task_name, version, jobs, as_json, token)
