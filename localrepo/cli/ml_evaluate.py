"""`repo evaluate`: classify labelled images and compare the answers with their folders.

A shell. The images are the task's labelled images as the catalog says now (after a
scan: the LOCAL state), or with --holdout DIR those of a folder tree the model never
saw, labelled by the same layout rules (holdout.py, pure, says which file has which
label and which are skipped). They go through the classify pipeline
(`ml_classify.classify_items`); the pure core evaluation.py turns the answers into an
`Evaluation` and its text or JSON. With --report FILE.html, eval_plots.py draws the
pictures and eval_html.py (pure) makes the page, written here. Files that could not
be classified are named and leave the numbers out; the exit code is then EXIT_PARTIAL,
or EXIT_ERROR when no file could be.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from localrepo.cli import evaluation as ev_core
from localrepo.cli import ml_report as mr
from localrepo.cli.context import Ctx
from localrepo.cli.ml_classify import Item, Outcome, classify_items
from localrepo.cli.ml_task import check_version, echo_json, pick_task, remote_client
from localrepo.errors import EXIT_ERROR, EXIT_PARTIAL, EXIT_USAGE, LocalrepoError
from localrepo.vocabulary import CLASSIFY_BATCH, MULTI_CLASS, REGRESSION

Truth = list[tuple[str, float | None]]  # an image's [(label, value)] as the folders say
MAX_THUMBS = 60  # mistakes shown with a picture in the report


@dataclass(frozen=True)
class EvaluateOptions:
    """What `repo evaluate` was asked beyond the task and the model."""

    holdout: str | None = None  # a folder tree to score instead of the repository
    report: str | None = None  # an HTML file to write
    show_all: bool = False  # list every mistake


@dataclass(frozen=True)
class _Images:
    items: list[Item]
    truth: dict[str, Truth]
    names: list[str]
    where: str  # what was evaluated, for the first line


def run_evaluate(
    obj: Ctx,
    task_name: str | None,
    version: int | None,
    jobs: int,
    as_json: bool,
    token: str | None,
    options: EvaluateOptions = EvaluateOptions(),
) -> None:
    """`repo evaluate`: scan, classify the labelled images, print the evaluation."""
    from localrepo.cli import eval_plots
    from localrepo.cli.status import run_scan

    plt = eval_plots.require() if options.report else None  # fail before the work
    repo = obj.repo()
    task = pick_task(obj, repo, task_name)
    run_scan(obj)
    conn = repo.connect()
    try:
        if options.holdout is None:
            images = _repository_images(conn, task, repo.root)
        else:
            images = _holdout_images(obj, conn, task, options.holdout)
    finally:
        conn.close()
    used, outcomes = _classify(obj, task, images.items, version, jobs, as_json, token)
    good = [o for o in outcomes if o.error is None]
    failed = [o for o in outcomes if o.error is not None]
    predicted = [(o.item.shown, o.record) for o in good if o.record is not None]
    ev = ev_core.evaluate_predictions(task.type, images.names, images.truth, predicted)
    if as_json:
        report: dict[str, Any] = {
            "task": task.name,
            "version": used,
            **ev_core.evaluation_json(ev),
        }
        if failed:
            report["failed"] = [{"path": o.item.shown, "error": o.error} for o in failed]
        echo_json(report)
    else:
        obj.info(f"Evaluated version {used} of '{task.name}' on {len(good)} {images.where}.")
        for line in ev_core.evaluation_lines(
            ev, None if options.show_all else ev_core.SHOWN_MISTAKES
        ):
            click.echo(line)
        for o in failed:
            click.echo(f"{o.item.shown}: {o.error}", err=True)
    if options.report:
        about = [f"Version {used} of the task '{task.name}', on {len(good)} {images.where}."]
        about += [f"Could not be classified: {o.item.shown} ({o.error})" for o in failed]
        _write_report(obj, plt, ev, images.items, options.report, task.name, about)
    if failed:
        sys.exit(EXIT_PARTIAL if good else EXIT_ERROR)


def _repository_images(conn: sqlite3.Connection, task: mr.TaskRow, root: Path) -> _Images:
    rows, names = _labelled_images(conn, task)
    if not rows:
        raise LocalrepoError(f"The task '{task.name}' has no labelled images to evaluate on.")
    return _Images(
        [Item(path, root / path) for path, _ in rows],
        {path: labs for path, labs in rows},
        names,
        "labelled images of the repository (images it was trained on included: expect "
        "optimistic numbers)",
    )


def _labelled_images(
    conn: sqlite3.Connection, task: mr.TaskRow
) -> tuple[list[tuple[str, Truth]], list[str]]:
    """[(one file path of the image, [(label, value)])] for the task's labelled images as
    the folders say (the catalog's local state), and the task's label names."""
    from localrepo.catalog.files import image_files
    from localrepo.catalog.labels import image_label_names
    from localrepo.catalog.sides import LOCAL

    labels: dict[int, Truth] = {}
    for image_id, name, value in image_label_names(conn, task.id, LOCAL):
        labels.setdefault(image_id, []).append((name, value))
    prefix = task.root + "/" if task.root else ""
    paths: dict[int, str] = {}
    for path, image_id in image_files(conn):
        if image_id in labels and image_id not in paths and path.startswith(prefix):
            paths[image_id] = path
    rows = sorted((paths[i], labs) for i, labs in labels.items() if i in paths)
    return rows, _label_names(conn, task)


def _label_names(conn: sqlite3.Connection, task: mr.TaskRow) -> list[str]:
    from localrepo.catalog.labels import sorted_task_label_names
    from localrepo.catalog.sides import LOCAL

    return sorted_task_label_names(conn, task.id, LOCAL)


def _holdout_images(obj: Ctx, conn: sqlite3.Connection, task: mr.TaskRow, given: str) -> _Images:
    """The images under DIR with their truth (holdout.holdout_truth); the files it
    skips are named on stderr."""
    from localrepo.cli.holdout import holdout_truth
    from localrepo.layout import resolve_sidecars
    from localrepo.scan.walk import walk

    folder = Path(given) if os.path.isabs(given) else obj.directory / given
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise LocalrepoError(
            f"--holdout {given}: {folder} {what}; give the folder tree to score "
            "(its first-level folders are the labels).",
            exit_code=EXIT_USAGE,
        )
    walked = walk(str(folder))
    for rel, (why, detail) in sorted(walked.skipped.items()):
        obj.info(f"skipped {os.path.join(given, rel)}: {why}" + (f" ({detail})" if detail else ""))
    files = [(rel, _content_key(folder / rel)) for rel in sorted(walked.images)]
    texts: dict[str, dict[str, str]] = {}
    for rel in sorted(walked.sidecars):
        parent, _, name = rel.rpartition("/")
        try:
            texts.setdefault(parent, {})[name] = (folder / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            obj.info(f"{os.path.join(given, rel)}: cannot read this sidecar ({exc})")
    rows, problems = resolve_sidecars(texts)
    for problem in problems:
        obj.info(f"{given}: {problem}")
    names = _label_names(conn, task)
    held = holdout_truth(task.type, names, files, rows)  # type: ignore[arg-type]
    for rel, why in held.skipped:
        obj.info(f"skipped {os.path.join(given, rel)}: {why}")
    if not held.truth:
        raise LocalrepoError(
            f"{given}: no image in a label folder of the task '{task.name}' to evaluate on "
            f"(its labels: {', '.join(names) or 'none'}; the folder under {given} is the label)."
        )
    shown = {rel: os.path.join(given, rel) for rel in held.truth}
    return _Images(
        [Item(shown[rel], folder / rel) for rel in held.truth],
        {shown[rel]: list(labs) for rel, labs in held.truth.items()},
        names,
        f"held-out images of {given}",
    )


def _content_key(path: Path) -> str:
    """What copies of one image share (a hash of the bytes); a file that cannot be read
    is its own image (classify names it)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return f"unreadable:{path}"


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


def _write_report(
    obj: Ctx,
    plt: Any,
    ev: ev_core.Evaluation,
    items: Sequence[Item],
    target: str,
    task_name: str,
    about: list[str],
) -> None:
    """Draw the pictures, make the page (eval_html.render_report), write it."""
    from localrepo.cli import eval_plots
    from localrepo.cli.eval_html import render_report

    figures: list[tuple[str, bytes]] = []
    if ev.task_type == REGRESSION:
        if ev.pairs:
            scatter, residuals = eval_plots.regression_pngs(plt, ev)
            figures += [("Predicted vs actual", scatter), ("Residuals", residuals)]
        wrong = [p.path for p in ev.pairs]
    else:
        if ev.task_type == MULTI_CLASS and ev.confusion is not None:
            figures.append(("Confusion matrix", eval_plots.confusion_png(plt, ev)))
        if ev.per_label:
            figures.append(("Precision-recall", eval_plots.precision_recall_png(plt, ev)))
        wrong = [m.path for m in ev.mistakes]
    where = {item.shown: item.path for item in items}
    thumbs = {}
    for shown in wrong[:MAX_THUMBS]:
        data = eval_plots.thumbnail(where[shown])
        if data is not None:
            thumbs[shown] = data
    html = render_report(ev, f"Evaluation of '{task_name}'", about, figures, thumbs)
    path = Path(target) if os.path.isabs(target) else obj.directory / target
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise LocalrepoError(f"--report {target}: cannot write it ({exc.strerror or exc})") from exc
    obj.info(f"Wrote the report to {target}.")
