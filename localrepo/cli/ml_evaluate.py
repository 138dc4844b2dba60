"""`repo evaluate`: classify the repository's own labelled images and compare the
answers with their folders.

A shell: it scans, reads the task's labelled images from the catalog (the LOCAL state:
what the folders say now), sends them through the classify pipeline
(`ml_classify.classify_items`) and hands the answers to the pure core,
`ml_report.evaluate_predictions` for the numbers and `ml_report.metrics_lines` for the
text. Files that could not be classified are named and leave the numbers out; the exit
code is then EXIT_PARTIAL, or EXIT_ERROR when no file could be.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence
from typing import Any

import click

from localrepo.cli import ml_report as mr
from localrepo.cli.context import Ctx
from localrepo.cli.ml_classify import Item, Outcome, classify_items
from localrepo.cli.ml_task import check_version, echo_json, pick_task, remote_client
from localrepo.errors import EXIT_ERROR, EXIT_PARTIAL, LocalrepoError
from localrepo.vocabulary import CLASSIFY_BATCH

Truth = list[tuple[str, float | None]]  # an image's [(label, value)] as the folders say


def run_evaluate(
    obj: Ctx,
    task_name: str | None,
    version: int | None,
    jobs: int,
    as_json: bool,
    token: str | None,
) -> None:
    """`repo evaluate`: scan, classify every labelled image, print the evaluation."""
    from localrepo.cli.status import run_scan

    repo = obj.repo()
    task = pick_task(obj, repo, task_name)
    run_scan(obj)
    conn = repo.connect()
    try:
        rows, names = _labelled_images(conn, task)
    finally:
        conn.close()
    if not rows:
        raise LocalrepoError(f"The task '{task.name}' has no labelled images to evaluate on.")
    truth = {path: labs for path, labs in rows}
    items = [Item(path, repo.root / path) for path, _ in rows]
    used, outcomes = _classify(obj, task, items, version, jobs, as_json, token)
    good = [o for o in outcomes if o.error is None]
    failed = [o for o in outcomes if o.error is not None]
    predicted = [(o.item.shown, o.record) for o in good if o.record is not None]
    report = mr.evaluate_predictions(task.type, names, truth, predicted)
    report = {"task": task.name, "version": used, **report}
    if failed:
        report["failed"] = [{"path": o.item.shown, "error": o.error} for o in failed]
    if as_json:
        echo_json(report)
    else:
        _print_report(obj, task, used, report, len(good), failed)
    if failed:
        sys.exit(EXIT_PARTIAL if good else EXIT_ERROR)


def _labelled_images(
    conn: sqlite3.Connection, task: mr.TaskRow
) -> tuple[list[tuple[str, Truth]], list[str]]:
    """[(one file path of the image, [(label, value)])] for the task's labelled images as
    the folders say (the catalog's local state), and the task's label names."""
    from localrepo.catalog.files import image_files
    from localrepo.catalog.labels import image_label_names, sorted_task_label_names
    from localrepo.catalog.sides import LOCAL

    labels: dict[int, Truth] = {}
    for image_id, name, value in image_label_names(conn, task.id, LOCAL):
        labels.setdefault(image_id, []).append((name, value))
    prefix = task.root + "/" if task.root else ""
    paths: dict[int, str] = {}
    for path, image_id in image_files(conn):
        if image_id in labels and image_id not in paths and path.startswith(prefix):
            paths[image_id] = path
    names = sorted_task_label_names(conn, task.id, LOCAL)
    rows = sorted((paths[i], labs) for i, labs in labels.items() if i in paths)
    return rows, names


def _classify(
    obj: Ctx,
    task: mr.TaskRow,
    items: Sequence[Item],
    version: int | None,
    jobs: int,
    as_json: bool,
    token: str | None,
) -> tuple[int, list[Outcome]]:
    """(the model version used, the outcome of every item)."""
    from localrepo.cli.progress import progress_bar

    client = remote_client(obj, task, token, jobs)
    try:
        _, used = check_version(client, task, version)
        with progress_bar("Evaluating", quiet=obj.quiet or as_json) as bar:
            outcomes = list(
                classify_items(
                    client,
                    task.remote_id,  # type: ignore[arg-type]
                    items,
                    version=version,
                    jobs=jobs,
                    batch_size=CLASSIFY_BATCH,
                    progress=bar,
                )
            )
    finally:
        client.close()
    return used, outcomes


def _print_report(
    obj: Ctx,
    task: mr.TaskRow,
    used: int,
    report: dict[str, Any],
    evaluated: int,
    failed: Sequence[Outcome],
) -> None:
    obj.info(
        f"Evaluated version {used} of '{task.name}' on {evaluated} labelled images of the "
        "repository (images it was trained on included: expect optimistic numbers)."
    )
    for line in mr.metrics_lines(
        {k: v for k, v in report.items() if k not in ("task", "version", "failed")}, {}
    ):
        click.echo(line)
    for o in failed:
        click.echo(f"{o.item.shown}: {o.error}", err=True)
