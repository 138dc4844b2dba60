"""The classify pipeline, and `repo classify` on top of it.

The pipeline, used by classify and by evaluate (cli/ml_evaluate.py):

1. `collect_items`: the PATHs given (files, or folders walked with the repository's
   ignore rules) -> `Item`s, in the order given, each file once;
2. `classify_items`: each item read and checked to be an image (`scan.hashing.
   check_image`), the valid ones sent in batches, several requests at a time
   (`ml_report.batches` cuts them) -> one `Outcome` per item, in the items' order.

Failures (contract): a file that cannot be read or is not an image fails alone; a batch
the server refused for its images fails its items; a wrong token, a task gone, a request
refused as such (the server names a field: too many records, a bad version) or an
unreachable server stops everything (the error propagates).

`run_classify` prints one line (or JSON object) per outcome as it comes, with the text
of `ml_report.prediction_text` / `prediction_json`, and exits EXIT_PARTIAL when some
files failed, EXIT_ERROR when all did.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from localrepo.cli import ml_report as mr
from localrepo.cli.context import Ctx
from localrepo.cli.ml_task import check_version, echo_json, pick_task, remote_client
from localrepo.errors import EXIT_ERROR, EXIT_PARTIAL, LocalrepoError
from localrepo.vocabulary import STATE_DIR

if TYPE_CHECKING:
    from localrepo.remote.models import ClassifiedRecord

Progress = Callable[[int, int], None]  # (items done, items in all)


@dataclass(frozen=True)
class Item:
    """One file to classify."""

    shown: str  # the path as printed
    path: Path  # where to read it
    error: str | None = None  # known before reading (no such file)


@dataclass(frozen=True)
class Outcome:
    """What became of one item: a record, or an error."""

    item: Item
    record: ClassifiedRecord | None
    error: str | None
    version: int | None  # the model version that answered


# -- 1. collect ----------------------------------------------------------------------------------


def collect_items(
    paths: Sequence[str], cwd: Path, repo_root: Path | None
) -> tuple[list[Item], list[str]]:
    """(files to classify, in the order given, and notes on what a walk skipped) for
    PATHs (files or folders). A path that does not exist is an item with its error.
    `repo_root`: the repository whose ignore rules apply (None outside one)."""
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


def _walk_folder(folder: Path, shown: str, repo_root: Path | None) -> tuple[list[Item], list[str]]:
    """Image files under `folder`, honouring the repository's ignore rules when the folder
    is inside it (and the folder's own .localrepoignore files otherwise)."""
    from localrepo.scan.walk import walk

    real = folder.resolve()
    try:
        if repo_root is None:
            raise ValueError("no repository")
        start = real.relative_to(repo_root.resolve()).as_posix()
        root = repo_root.resolve()
    except ValueError:
        start, root = "", real
    start = "" if start == "." else start
    if start.split("/")[0] == STATE_DIR:
        return [], [f"{shown}: inside the state folder {STATE_DIR}/, skipped"]
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


# -- 2. classify ---------------------------------------------------------------------------------


def classify_items(
    client: Any,
    remote_id: str,
    items: Sequence[Item],
    *,
    version: int | None,
    jobs: int,
    batch_size: int,
    progress: Progress = lambda done, total: None,
) -> Iterator[Outcome]:
    """Classify `items` in batches of `batch_size`, `jobs` requests at a time; yields one
    outcome per item, in the order of `items` (failures: see the module's docstring)."""
    groups = mr.batches(list(items), batch_size)

    def work(index: int) -> list[Outcome]:
        return _classify_batch(client, remote_id, groups[index], version)

    results = client.map(work, range(len(groups)), limit=jobs)
    yield from _in_order(results, len(items), progress)


def _in_order(
    results: Iterable[tuple[int, list[Outcome] | Exception]], total: int, progress: Progress
) -> Iterator[Outcome]:
    """The outcomes of batches that finish in any order, yielded in the batches' order
    as soon as each one's predecessors are in; the first failure is raised."""
    done: dict[int, list[Outcome]] = {}
    next_index = 0
    finished = 0
    for index, outcome in results:
        if isinstance(outcome, Exception):
            raise outcome
        done[index] = outcome
        finished += len(outcome)
        progress(finished, total)
        while next_index in done:
            yield from done.pop(next_index)
            next_index += 1


def _classify_batch(
    client: Any, remote_id: str, batch: Sequence[Item], version: int | None
) -> list[Outcome]:
    """One outcome per item of `batch`, in its order: the files are read, the valid
    ones sent in one request."""
    out: dict[int, Outcome] = {}
    good: list[tuple[int, bytes]] = []
    for i, item in enumerate(batch):
        data, error = (None, item.error) if item.error else _read_valid(item)
        if data is None:
            out[i] = Outcome(item, None, error, None)
        else:
            good.append((i, data))
    if good:
        out.update(_send(client, remote_id, batch, good, version))
    return [out[i] for i in range(len(batch))]


def _read_valid(item: Item) -> tuple[bytes | None, str | None]:
    """(the file's bytes, None) when it is a valid image, else (None, why not)."""
    from localrepo.scan.hashing import check_image

    try:
        data = item.path.read_bytes()
    except OSError as exc:
        return None, f"cannot read the file ({exc.strerror or exc})"
    reason, detail, _ = check_image(data, item.path.name)
    if reason is not None:
        return None, f"not a valid image: {reason}" + (f" ({detail})" if detail else "")
    return data, None


def _send(
    client: Any,
    remote_id: str,
    batch: Sequence[Item],
    good: Sequence[tuple[int, bytes]],
    version: int | None,
) -> dict[int, Outcome]:
    """The outcomes of the valid files of `batch` (`good`: (index in batch, bytes)),
    classified in one request."""
    from localrepo.remote.errors import AuthError, BadRequestError, NotFoundError, RemoteError
    from localrepo.remote.errors import RemoteUnavailableError as Unavailable

    try:
        result = client.classify_images(remote_id, [d for _, d in good], version=version)
    except (AuthError, NotFoundError, Unavailable):
        raise
    except BadRequestError as exc:
        if exc.field_errors:  # about the request (records, version), not an image
            raise
        return _refused(batch, good, f"the server refused it: {exc.detail}")
    except RemoteError as exc:
        return _refused(batch, good, f"the server refused it: {exc.detail or exc}")
    return {
        i: Outcome(batch[i], record, record.error, result.version)
        for (i, _), record in zip(good, result.records, strict=True)
    }


def _refused(
    batch: Sequence[Item], good: Sequence[tuple[int, bytes]], error: str
) -> dict[int, Outcome]:
    return {i: Outcome(batch[i], None, error, None) for i, _ in good}


# -- repo classify -------------------------------------------------------------------------------


def run_classify(
    obj: Ctx,
    paths: Sequence[str],
    task_name: str | None,
    version: int | None,
    top: int,
    jobs: int,
    batch_size: int,
    as_json: bool,
    token: str | None,
    remote: tuple[str | None, str | None] = (None, None),
) -> None:
    """`repo classify PATHS`: collect, classify, print each outcome as it comes.
    `remote`: (--remote-task, --url), to classify with a remote task's model, inside a
    repository or not."""
    from localrepo.cli.progress import progress_bar

    task, client, root = _classify_target(obj, task_name, remote, token, jobs)
    ok = failed = 0
    try:
        items, notes = collect_items(paths, obj.directory, root)
        if obj.verbose:
            for note in notes:
                obj.info(f"skipped: {note}")
        _, used = check_version(client, task, version)
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


def _classify_target(
    obj: Ctx,
    task_name: str | None,
    remote: tuple[str | None, str | None],
    token: str | None,
    jobs: int,
) -> tuple[mr.TaskRow, Any, Path | None]:
    """(the task, a client for its server, the repository root or None): this
    repository's task (--task, else the one bound here), or with --remote-task the
    remote's task of that name or id, on --url, the repository's remote, or the one
    'repo login' remembered (cli/connect.py, `lookup_remote`)."""
    from localrepo.cli.connect import find_remote_task, lookup_remote, make_client
    from localrepo.errors import EXIT_USAGE, NotARepositoryError
    from localrepo.remote.errors import safe_url

    remote_task, url = remote
    if remote_task is None:
        if url is not None:
            raise LocalrepoError(
                "--url goes with --remote-task NAME|ID (a task of this repository uses the "
                "repository's remote).",
                exit_code=EXIT_USAGE,
            )
        repo = obj.repo()
        task = pick_task(obj, repo, task_name)
        return task, remote_client(obj, task, token, jobs), repo.root
    if task_name is not None:
        raise LocalrepoError(
            "give --task (this repository's) or --remote-task, not both", exit_code=EXIT_USAGE
        )
    try:
        root: Path | None = obj.repo().root
    except NotARepositoryError:
        root = None
    choice = lookup_remote(obj, url)
    client = make_client(choice.url, token, choice.workspace, jobs)
    try:
        found = find_remote_task(
            client, remote_task, option="--remote-task", where=f"on {safe_url(choice.url)}"
        )
    except BaseException:
        client.close()
        raise
    return mr.TaskRow(0, found.name, found.type, "", found.id), client, root


def _print_outcome(
    outcome: Outcome, task_type: str, top: int, as_json: bool, version: int | None = None
) -> None:
    shown = outcome.item.shown
    if outcome.error is not None:
        if as_json:
            echo_json({"path": shown, "ok": False, "error": outcome.error}, lines=True)
        else:
            click.echo(f"{shown}: {outcome.error}", err=True)
        return
    record = outcome.record
    if as_json:
        echo_json(
            mr.prediction_json(shown, record, task_type, top, outcome.version or version),
            lines=True,
        )
    else:
        click.echo(f"{shown}  {mr.prediction_text(record, task_type, top)}")
