"""`repo train`, `models` (with `promote`, `rollback`), `classify`, `evaluate`: the click
commands, thin.

Each parses its options and calls its runner: `ml_train.run_train`,
`ml_models.run_models` (`run_promote`, `run_rollback`), `ml_classify.run_classify`,
`ml_evaluate.run_evaluate`. Those shells read the catalog and the files, call the
server and print; the decisions and the text are ml_report.py's and promotion.py's
(pure). The commands are registered lazily by cli/main.py
(`LAZY_COMMANDS`)."""

from __future__ import annotations

from typing import Any

import click

from localrepo.cli.connect import token_option
from localrepo.cli.context import Ctx, examples
from localrepo.cli.ml_classify import run_classify
from localrepo.cli.ml_evaluate import EvaluateOptions, run_evaluate
from localrepo.cli.ml_models import run_models, run_promote, run_rollback
from localrepo.cli.ml_train import run_train
from localrepo.cli.promotion import IF_BETTER, POLICIES
from localrepo.vocabulary import CLASSIFY_BATCH

DEFAULT_TOP = 3
DEFAULT_JOBS = 4  # parallel classify requests


def _task_option(f: Any) -> Any:
    return click.option(
        "--task", "task_name", metavar="NAME", help="The task (default: the one bound here)."
    )(f)


@click.command(epilog=examples("repo train --wait", "repo train --wait --promote always"))
@_task_option
@click.option("--wait", is_flag=True, help="Wait for the training to end; show its metrics.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Give up waiting for the training after this long (the server keeps training).",
)
@click.option(
    "--force", is_flag=True, help="Train even with local changes that are not synced yet."
)
@click.option(
    "-n", "--dry-run", is_flag=True, help="Check and show what would be trained; queue nothing."
)
@click.option(
    "--promote",
    type=click.Choice(POLICIES),
    default=IF_BETTER,
    show_default=True,
    help="Which version is in production afterwards: the new one 'always', only "
    "'if-better' than the current one on the same test images, or 'never'.",
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
    promote: str,
    as_json: bool,
    token: str | None,
) -> None:
    """Train a new version of the task's model on the server, from the images the
    server holds (run 'repo sync' first). With --wait, follow the training and print
    its metrics; exit 1 if it failed.

    The new version goes into production only if it scores at least as well as the
    current one on the same test images (--promote if-better): for that, train waits
    for the end even without --wait, unless --promote always."""
    run_train(obj, task_name, wait, timeout, force, as_json, token, dry_run, promote)


_MODELS_DEFAULTS = "localrepo.models"  # the group's --task/--json/--token, for its subcommands


@click.group(
    invoke_without_command=True, epilog=examples("repo models", "repo models --version 3 --json")
)
@_task_option
@click.option("--version", type=click.IntRange(min=1), help="Show this version in detail.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@token_option
@click.pass_context
def models(
    ctx: click.Context,
    task_name: str | None,
    version: int | None,
    as_json: bool,
    token: str | None,
) -> None:
    """List the task's model versions with their metrics; * marks the production
    version (the one classify uses). 'repo models promote VERSION' and 'repo models
    rollback' choose another."""
    if ctx.invoked_subcommand is None:
        run_models(ctx.obj, task_name, version, as_json, token)
    elif version is not None:
        raise click.UsageError("--version lists one version; it does not go with a subcommand.")
    ctx.meta[_MODELS_DEFAULTS] = (task_name, as_json, token)


def _inherited(
    ctx: click.Context, task_name: str | None, as_json: bool, token: str | None
) -> tuple[str | None, bool, str | None]:
    """A subcommand's --task/--json/--token, else those given to `repo models`."""
    group_task, group_json, group_token = ctx.meta.get(_MODELS_DEFAULTS, (None, False, None))
    return task_name or group_task, as_json or group_json, token or group_token


@models.command(epilog=examples("repo models promote 3"))
@click.argument("version", type=click.IntRange(min=1))
@_task_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@token_option
@click.pass_context
def promote(
    ctx: click.Context, version: int, task_name: str | None, as_json: bool, token: str | None
) -> None:
    """Make VERSION (a version that trained) the production version."""
    run_promote(ctx.obj, version, *_inherited(ctx, task_name, as_json, token))


@models.command(epilog=examples("repo models rollback"))
@_task_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@token_option
@click.pass_context
def rollback(ctx: click.Context, task_name: str | None, as_json: bool, token: str | None) -> None:
    """Go back to the trained version before the production one."""
    run_rollback(ctx.obj, *_inherited(ctx, task_name, as_json, token))


@click.command(
    epilog=examples(
        "repo classify ~/new-photos",
        "repo classify a.jpg --top 1 --json",
        "repo classify --remote-task pets --url http://localhost:8000/ a.jpg",
    )
)
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


@click.command(
    epilog=examples("repo evaluate", "repo evaluate --holdout ~/held-out --report evaluation.html")
)
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
@click.option(
    "--holdout",
    metavar="DIR",
    # Checked by the command, relative to -C DIR like every path here (click would
    # check it against the working folder).
    help="Score the images of this folder tree instead (the folder under DIR is the label).",
)
@click.option(
    "--report",
    metavar="FILE.html",
    type=click.Path(dir_okay=False),
    help="Also write a self-contained HTML report with pictures (needs the report extra).",
)
@click.option("--all", "show_all", is_flag=True, help="List every misclassified file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@token_option
@click.pass_obj
def evaluate(
    obj: Ctx,
    task_name: str | None,
    version: int | None,
    jobs: int,
    holdout: str | None,
    report: str | None,
    show_all: bool,
    as_json: bool,
    token: str | None,
) -> None:
    """Classify the repository's labelled images (or, with --holdout, those of a folder
    tree the model never saw) and compare with their folders: per-label precision,
    recall and F1 and the confusion matrix (multi_class), per-tag scores (multi_label),
    MAE/RMSE/R2 (regression); then the misclassified files (regression: the largest
    errors), true -> predicted (confidence). Exit 6 when some files failed."""
    options = EvaluateOptions(holdout=holdout, report=report, show_all=show_all)
    run_evaluate(obj, task_name, version, jobs, as_json, token, options)
