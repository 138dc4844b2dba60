"""`repo train`, `models`, `classify`, `evaluate`: the commands that train a task's
remote model and use it. The decisions and the text live in ml_report.py (pure); this
module reads the catalog and the files, calls the server and prints."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from localrepo.cli import ml_report as mr
from localrepo.cli.sync_cmds import repo_client, token_option
from localrepo.errors import EXIT_ERROR, EXIT_PARTIAL, LocalrepoError

DEFAULT_TOP = 3
DEFAULT_JOBS = 4  # parallel classify requests


def _echo_json(data: Any, *, lines: bool = False) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=None if lines else 2)
    click.echo(text)


# -- the catalog ---------------------------------------------------------------------------------


def _tasks(conn: sqlite3.Connection) -> list[mr.TaskRow]:
    from localrepo.catalog.tasks import task_rows

    return [mr.TaskRow(*row) for row in task_rows(conn)]


def _here(obj: Any, root: Path) -> str | None:
    try:
        rel = obj.directory.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
    return "" if rel == "." else rel


def _pick_task(obj: Any, repo: Any, name: str | None) -> mr.TaskRow:
    conn = repo.connect()
    try:
        return mr.choose_task(_tasks(conn), name, _here(obj, repo.root))
    finally:
        conn.close()


def _sync_state(conn: sqlite3.Connection, task_id: int) -> tuple[dict[str, int], int]:
    from localrepo.catalog import conflicts, journal

    return journal.open_counts_of_task(conn, task_id), conflicts.open_count_of_task(conn, task_id)


# -- the remote ----------------------------------------------------------------------------------


def _remote(obj: Any, task: mr.TaskRow, token: str | None, jobs: int = 8) -> Any:
    if task.remote_id is None:
        raise LocalrepoError(
            f"The task '{task.name}' was never synced: the server does not know it yet. "
            "Run 'repo sync' first."
        )
    _, client = repo_client(obj, token, jobs)
    return client


def _gone(task: mr.TaskRow) -> LocalrepoError:
    return LocalrepoError(
        f"The remote task of '{task.name}' ({task.remote_id}) is gone from the server."
    )


def _remote_task(client: Any, task: mr.TaskRow) -> Any:
    from localrepo.remote.errors import NotFoundError

    try:
        return client.get_task(task.remote_id)
    except NotFoundError:
        raise _gone(task) from None


def _check_version(client: Any, task: mr.TaskRow, version: int | None) -> tuple[Any, int]:
    """The remote task and the version a classification will use; a clear error when the
    task was never trained or has no such trained version."""
    remote = _remote_task(client, task)
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


# -- train ---------------------------------------------------------------------------------------


def _status_display(obj: Any, name: str, quiet: bool) -> Any:
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


def run_train(
    obj: Any,
    task_name: str | None,
    wait: bool,
    timeout: float | None,
    force: bool,
    as_json: bool,
    token: str | None,
    dry_run: bool = False,
) -> None:
    from localrepo.cli.status import run_scan as _run_scan
    from localrepo.remote.errors import BadRequestError, NotFoundError

    repo = obj.repo()
    task = _pick_task(obj, repo, task_name)
    _run_scan(obj)  # like status: the folders as they are now, so pending changes are known
    conn = repo.connect()
    try:
        pending, conflicts = _sync_state(conn, task.id)
        task = next(t for t in _tasks(conn) if t.id == task.id)
    finally:
        conn.close()
    message = mr.unsynced_message(task, pending, conflicts)
    if message is not None and (task.remote_id is None or not force):
        raise mr.not_synced_error(message)
    if message is not None:
        obj.info(f"warning: {message}")
    client = _remote(obj, task, token)
    try:
        before = _remote_task(client, task)
        known = [m.id for m in client.task_models(task.remote_id)]
        if dry_run:
            _echo_dry_run(obj, task, before, len(known), as_json)
            return
        try:
            answer = client.train_task(task.remote_id)
        except BadRequestError as exc:
            raise LocalrepoError(
                f"The server refused to train '{task.name}': {exc.detail or exc}"
            ) from None
        except NotFoundError:
            raise _gone(task) from None
        if not wait:
            now = client.get_task(task.remote_id)
            if as_json:
                _echo_json(
                    {
                        "task": task.name,
                        "remote_id": task.remote_id,
                        "status": now.last_train_status,
                        "version": answer.get("version"),
                        "detail": answer.get("detail"),
                    }
                )
            else:
                said = answer.get("detail")
                obj.info(
                    f"Training of '{task.name}' queued ({now.last_train_status or 'queued'})"
                    + (f": {said}" if isinstance(said, str) and said else ".")
                    + " See 'repo models' for the result, or use --wait next time."
                )
            return
        update, stop = _status_display(obj, task.name, obj.quiet or as_json)
        try:
            remote, model = client.wait_for_training(
                task.remote_id, before, known, timeout=timeout, on_status=update
            )
        finally:
            stop()
    finally:
        client.close()
    status = remote.last_train_status
    if as_json:
        _echo_json(
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
    if not as_json:
        version = model.version if model else remote.production_version
        backend = f" (features: {model.backend})" if model and model.backend else ""
        obj.info(
            f"Trained '{task.name}': version {version} is now the production version{backend}."
        )
        if model is not None:
            for line in mr.metrics_lines(model.metrics, mr.summary_numbers(model)):
                click.echo(line)


def _echo_dry_run(obj: Any, task: mr.TaskRow, remote: Any, models: int, as_json: bool) -> None:
    if as_json:
        _echo_json(
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
    obj: Any, task_name: str | None, version: int | None, as_json: bool, token: str | None
) -> None:
    repo = obj.repo()
    task = _pick_task(obj, repo, task_name)
    client = _remote(obj, task, token)
    try:
        remote = _remote_task(client, task)
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
        _echo_json([mr.model_json(m, production) for m in models])
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
        if model.detail:
            click.echo(f"\ndetail: {model.detail}")
        lines = mr.metrics_lines(model.metrics, mr.summary_numbers(model))
        if lines:
            click.echo("")
            for line in lines:
                click.echo(line)


# -- classify ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    shown: str  # the path as printed
    path: Path  # where to read it
    error: str | None = None  # known before reading (no such file)


@dataclass(frozen=True)
class Outcome:
    item: Item
    record: Any  # ClassifiedRecord | None
    error: str | None
    version: int | None


def _walk_folder(folder: Path, shown: str, repo_root: Path) -> tuple[list[Item], list[str]]:
    """Image files under `folder`, honouring the repository's ignore rules when the folder
    is inside it (and the folder's own .localrepoignore files otherwise)."""
    from localrepo.scan.walk import walk

    real = folder.resolve()
    try:
        start = real.relative_to(repo_root.resolve()).as_posix()
        root = repo_root.resolve()
    except ValueError:
        start, root = "", real
    start = "" if start == "." else start
    if start.split("/")[0] == ".localrepo":
        return [], [f"{shown}: inside the state folder .localrepo/, skipped"]
    result = walk(str(root), start=start)
    cut = len(start) + 1 if start else 0
    base = shown.rstrip("/") or "."
    items = [
        Item(os.path.join(base, rel[cut:]) if base != "." else rel[cut:], root / rel)
        for rel in sorted(result.images)
    ]
    skipped = [
        f"{os.path.join(base, p[cut:])}: {r}" for p, (r, _) in sorted(result.skipped.items())
    ]
    return items, skipped


def collect_items(paths: Sequence[str], cwd: Path, repo_root: Path) -> tuple[list[Item], list[str]]:
    """(files to classify, in the order given, and notes on what a walk skipped) for
    PATHs (files or folders). A path that does not exist is an item with its error."""
    items: list[Item] = []
    notes: list[str] = []
    seen: set[Path] = set()
    for given in paths:
        full = Path(given) if os.path.isabs(given) else cwd / given
        if full.is_dir():
            found, skipped = _walk_folder(full, given, repo_root)
            notes += skipped
            if not found:
                notes.append(f"{given}: no image files in this folder")
        elif full.exists():
            found = [Item(given, full)]
        else:
            found = [Item(given, full, "no such file or folder")]
        for item in found:
            key = item.path.resolve()
            if key not in seen:
                seen.add(key)
                items.append(item)
    return items, notes


def _read_valid(item: Item) -> tuple[bytes | None, str | None]:
    from localrepo.scan.hashing import check_image

    try:
        data = item.path.read_bytes()
    except OSError as exc:
        return None, f"cannot read the file ({exc.strerror or exc})"
    reason, detail, _ = check_image(data, item.path.name)
    if reason is not None:
        return None, f"not a valid image: {reason}" + (f" ({detail})" if detail else "")
    return data, None


def classify_items(
    client: Any,
    remote_id: str,
    items: Sequence[Item],
    *,
    version: int | None,
    jobs: int,
    batch_size: int,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Iterator[Outcome]:
    """Classify `items` in batches of `batch_size`, `jobs` requests at a time; yields one
    outcome per item, in the order of `items`. Files that are not valid images fail on
    their own; a request the server refused for its images fails its batch; a wrong
    token, a missing task, a request refused as such (too many records, a bad version:
    the server names the field) or an unreachable server stops everything."""
    from localrepo.remote.errors import AuthError, BadRequestError, NotFoundError, RemoteError
    from localrepo.remote.errors import RemoteUnavailableError as Unavailable

    groups = mr.batches(list(items), batch_size)

    def work(index: int) -> list[Outcome]:
        batch = groups[index]
        out: dict[int, Outcome] = {}
        good: list[tuple[int, bytes]] = []
        for i, item in enumerate(batch):
            data, error = (None, item.error) if item.error else _read_valid(item)
            if data is None:
                out[i] = Outcome(item, None, error, None)
            else:
                good.append((i, data))
        if good:
            try:
                result = client.classify_images(remote_id, [d for _, d in good], version=version)
            except (AuthError, NotFoundError, Unavailable):
                raise
            except BadRequestError as exc:
                if exc.field_errors:  # about the request (records, version), not an image
                    raise
                for i, _ in good:
                    out[i] = Outcome(batch[i], None, f"the server refused it: {exc.detail}", None)
            except RemoteError as exc:
                for i, _ in good:
                    out[i] = Outcome(
                        batch[i], None, f"the server refused it: {exc.detail or exc}", None
                    )
            else:
                for (i, _), record in zip(good, result.records, strict=True):
                    out[i] = Outcome(batch[i], record, record.error, result.version)
        return [out[i] for i in range(len(batch))]

    done: dict[int, list[Outcome]] = {}
    next_index = 0
    finished = 0
    for index, outcome in client.map(work, range(len(groups)), limit=jobs):
        if isinstance(outcome, Exception):
            raise outcome
        done[index] = outcome
        finished += len(outcome)
        progress(finished, len(items))
        while next_index in done:
            yield from done.pop(next_index)
            next_index += 1


def run_classify(
    obj: Any,
    paths: Sequence[str],
    task_name: str | None,
    version: int | None,
    top: int,
    jobs: int,
    batch_size: int,
    as_json: bool,
    token: str | None,
) -> None:
    from localrepo.cli.progress import progress_bar

    repo = obj.repo()
    task = _pick_task(obj, repo, task_name)
    items, notes = collect_items(paths, obj.directory, repo.root)
    if obj.verbose:
        for note in notes:
            obj.info(f"skipped: {note}")
    client = _remote(obj, task, token, jobs)
    ok = failed = 0
    try:
        _, used = _check_version(client, task, version)
        with progress_bar("Classifying", quiet=obj.quiet or as_json) as bar:
            for outcome in classify_items(
                client,
                task.remote_id,  # type: ignore[arg-type]
                items,
                version=version,
                jobs=jobs,
                batch_size=batch_size,
                progress=bar,
            ):
                _print_outcome(outcome, task.type, top, as_json, used)
                if outcome.error is None:
                    ok += 1
                else:
                    failed += 1
    finally:
        client.close()
    if not items:
        raise LocalrepoError("No image files found in the given paths.")
    if failed:
        obj.info(f"{failed} of {len(items)} files could not be classified.")
        sys.exit(EXIT_PARTIAL if ok else EXIT_ERROR)


def _print_outcome(
    outcome: Outcome, task_type: str, top: int, as_json: bool, version: int | None = None
) -> None:
    shown = outcome.item.shown
    if outcome.error is not None:
        if as_json:
            _echo_json({"path": shown, "ok": False, "error": outcome.error}, lines=True)
        else:
            click.echo(f"{shown}: {outcome.error}", err=True)
        return
    record = outcome.record
    if as_json:
        _echo_json(
            mr.prediction_json(shown, record, task_type, top, outcome.version or version),
            lines=True,
        )
    else:
        click.echo(f"{shown}  {mr.prediction_text(record, task_type, top)}")


# -- evaluate ------------------------------------------------------------------------------------


def _labelled_images(
    conn: sqlite3.Connection, task: mr.TaskRow
) -> tuple[list[tuple[str, list[tuple[str, float | None]]]], list[str]]:
    """[(one file path of the image, [(label, value)])] for the task's labelled images as
    the folders say (the catalog's local state), and the task's label names."""
    from localrepo.catalog.files import image_files
    from localrepo.catalog.labels import image_label_names, sorted_task_label_names
    from localrepo.catalog.states import LOCAL

    labels: dict[int, list[tuple[str, float | None]]] = {}
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


def run_evaluate(
    obj: Any,
    task_name: str | None,
    version: int | None,
    jobs: int,
    as_json: bool,
    token: str | None,
) -> None:
    from localrepo.cli.progress import progress_bar
    from localrepo.cli.status import run_scan as _run_scan

    repo = obj.repo()
    task = _pick_task(obj, repo, task_name)
    _run_scan(obj)
    conn = repo.connect()
    try:
        rows, names = _labelled_images(conn, task)
    finally:
        conn.close()
    if not rows:
        raise LocalrepoError(f"The task '{task.name}' has no labelled images to evaluate on.")
    truth = {path: labs for path, labs in rows}
    items = [Item(path, repo.root / path) for path, _ in rows]
    client = _remote(obj, task, token, jobs)
    outcomes: list[Outcome] = []
    try:
        _, used = _check_version(client, task, version)
        with progress_bar("Evaluating", quiet=obj.quiet or as_json) as bar:
            outcomes = list(
                classify_items(
                    client,
                    task.remote_id,  # type: ignore[arg-type]
                    items,
                    version=version,
                    jobs=jobs,
                    batch_size=10,
                    progress=bar,
                )
            )
    finally:
        client.close()
    good = [o for o in outcomes if o.error is None]
    failed = [o for o in outcomes if o.error is not None]
    report = _evaluation(task, names, truth, good)
    report = {"task": task.name, "version": used, **report}
    if failed:
        report["failed"] = [{"path": o.item.shown, "error": o.error} for o in failed]
    if as_json:
        _echo_json(report)
    else:
        obj.info(
            f"Evaluated version {used} of '{task.name}' on {len(good)} labelled images of the "
            "repository (images it was trained on included: expect optimistic numbers)."
        )
        for line in mr.metrics_lines(
            {k: v for k, v in report.items() if k not in ("task", "version", "failed")}, {}
        ):
            click.echo(line)
        for o in failed:
            click.echo(f"{o.item.shown}: {o.error}", err=True)
    if failed:
        sys.exit(EXIT_PARTIAL if good else EXIT_ERROR)


def _evaluation(
    task: mr.TaskRow,
    names: list[str],
    truth: dict[str, list[tuple[str, float | None]]],
    good: list[Outcome],
) -> dict[str, Any]:
    if task.type == "multi_class":
        pairs = []
        for o in good:
            best = o.record.best_label or (o.record.labels[0] if o.record.labels else None)
            pairs.append((truth[o.item.shown][0][0], best.name if best else None))
        return mr.evaluate_multi_class(pairs, names)
    if task.type == "multi_label":
        tags = set(names)
        tag_pairs = [
            (
                frozenset(n for n, _ in truth[o.item.shown]),
                frozenset(p.name for p in mr.predicted_tags(o.record) if p.name in tags),
            )
            for o in good
        ]
        return mr.evaluate_multi_label(tag_pairs, names)
    triples = []
    for o in good:
        predicted = {p.name: p.value for p in o.record.labels}
        for name, value in truth[o.item.shown]:
            if value is not None:
                triples.append((name, value, predicted.get(name)))
    return mr.evaluate_regression(triples)


# -- registration --------------------------------------------------------------------------------


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
    obj: Any,
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
    obj: Any, task_name: str | None, version: int | None, as_json: bool, token: str | None
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
    default=10,
    show_default=True,
    help="Images per request (the hosted service takes at most 10).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per image.")
@token_option
@click.pass_obj
def classify(
    obj: Any,
    paths: tuple[str, ...],
    task_name: str | None,
    version: int | None,
    top: int,
    jobs: int,
    batch_size: int,
    as_json: bool,
    token: str | None,
) -> None:
    """Classify image files, or every image in folders, with the task's model.

    One line per image: 'path  label (prob), ...' (regression: 'path  label=value').
    Exit 6 when some files failed (each is named), 1 when all did."""
    run_classify(obj, paths, task_name, version, top, jobs, batch_size, as_json, token)


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
    obj: Any,
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
