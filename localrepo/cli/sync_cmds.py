"""`repo sync`, `push`, `pull`, `clone`, `verify`: the commands that run the sync engine
(sync/engine.py) or check its result, and the summary and exit code of a run."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from localrepo.cli.connect import (
    find_remote_task,
    make_client,
    repo_client,
    token_option,
    typed_url,
)
from localrepo.cli.context import examples
from localrepo.cli.interrupt import ctrl_c_stops, say_stopped
from localrepo.errors import (
    EXIT_DECISION,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_SAFETY,
    EXIT_STOPPED,
    LocalrepoError,
)
from localrepo.sync.stopping import StopRequest
from localrepo.vocabulary import POLICIES


def _progress(quiet: bool):  # type: ignore[no-untyped-def]
    from localrepo.cli.progress import progress_bar

    return progress_bar("Syncing", quiet=quiet)


def run_sync(
    obj: Any,
    mode: str,
    *,
    dry_run: bool,
    policy: str | None,
    max_delete: str | None,
    force: bool,
    jobs: int,
    as_json: bool,
    token: str | None,
    join: bool = False,
    verbose: int = 0,
) -> None:
    from localrepo.sync.engine import Engine, SyncOptions

    repo, client = repo_client(obj, token, jobs)
    cfg = repo.config()
    options = SyncOptions(
        mode=mode,
        dry_run=dry_run,
        policy=(policy or cfg.sync.policy),  # type: ignore[arg-type]
        max_delete=max_delete or cfg.sync.max_delete,
        force=force,
        jobs=jobs,
        noresize=cfg.sync.noresize,
        share_labels=cfg.sync.share_labels,
        join=join,
    )
    stop = StopRequest()
    with _progress(obj.quiet or as_json) as bar, ctrl_c_stops(stop, mode):

        def progress(_what: str, done: int, total: int) -> None:
            bar(done, total)

        try:
            report = Engine(repo, client, options, progress=progress, stop=stop).run()
        finally:
            if not stop.abandons():
                client.close()
    summary = sync_summary(report, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print_sync(summary, verbose=obj.verbose + verbose)
    say_stopped(report, mode, quiet=obj.quiet)
    sys.exit(sync_exit_code(summary))


def _conflict_state(c: dict[str, Any]) -> str:
    """What a run's conflict waits for, in words."""
    if c["resolution"]:
        return f"settled: {c['resolution']} wins"
    decided = c.get("decided")
    if decided == "local":
        return "decided: this side wins; 'repo push' or 'repo sync' sends it"
    if decided == "remote":
        return "decided: the server's side wins; 'repo pull' or 'repo sync' brings it"
    return "needs 'repo resolve'"


def sync_exit_code(summary: dict[str, Any]) -> int:
    """7 stopped by a safety limit, 6 some items failed, 3 not in sync yet (conflicts,
    held-back files, images left alone for a reported problem, work left for the other
    direction), 0 in sync (docs/sync.md)."""
    if summary.get("stopped"):
        return EXIT_STOPPED
    if any(t["stop"] for t in summary["tasks"]):
        return EXIT_SAFETY
    if summary["failed"]:
        return EXIT_PARTIAL
    if summary["conflicts"] or any(t["held"] or t["problems"] for t in summary["tasks"]):
        return EXIT_DECISION
    if not summary["dry_run"] and any(
        t["left_for_other_side"] or t["twins_left"] for t in summary["tasks"]
    ):
        return EXIT_DECISION
    return EXIT_OK


def sync_summary(report: Any, *, dry_run: bool) -> dict[str, Any]:
    """The JSON of a run: totals, and per task its plan (op counts, and with `dry_run`
    its ops), its `changes` per file in the user's words (cli/describe.py), conflicts,
    problems, files held back and safety stops."""
    from localrepo.cli.describe import plan_changes

    o = report.outcome
    tasks = []
    for t in report.tasks:
        paths = t.paths
        plan_ops: dict[str, int] = {}
        for op in t.plan.ops if t.plan else []:
            plan_ops[op.kind] = plan_ops.get(op.kind, 0) + 1
        tasks.append(
            {
                "task": t.task,
                "remote_id": t.remote_id,
                "created_remote_task": t.created_remote_task,
                "plan": plan_ops,
                "ops": [
                    {
                        "kind": op.kind,
                        "key": op.key,
                        "label": op.label,
                        "target": dict(op.target) if op.target else None,
                    }
                    for op in (t.plan.ops if t.plan and dry_run else [])
                ],
                "changes": [c.as_json() for c in plan_changes(t.plan.ops if t.plan else [], paths)],
                "conflicts": [
                    {
                        "image": c.key,
                        "path": (paths.get(c.key) or [None])[0],
                        "field": c.field,
                        "base": dict(c.base),
                        "local": dict(c.local),
                        "remote": dict(c.remote),
                        "resolution": c.resolution,
                        "decided": t.waiting.get(c.key),
                    }
                    for c in t.conflicts
                ],
                "problems": t.problems,
                "held": [{"path": h.path, "reason": h.reason} for h in t.held],
                "left_for_other_side": t.left_for_other_side,
                "twins_left": t.twins_left,
                "stop": t.stop.message if t.stop else None,
                "stop_paths": t.stop_paths,
            }
        )
    return {
        "dry_run": dry_run,
        "stopped": report.stopped,
        "uploaded": o.uploaded,
        "downloaded": o.downloaded,
        "relabelled": o.relabelled_remote + o.relabelled_local,
        "deleted": o.deleted_remote + o.unlinked_remote + o.trashed_local,
        "labels_created": o.labels_created,
        "conflicts": report.conflicts,
        "failed": [{"what": w, "reason": r} for w, r in o.failed],
        "tasks": tasks,
        "seconds": round(report.seconds, 3),
    }


DRY_RUN_LINES = 20  # files `repo sync -n` names per task; -v names them all


def print_sync(s: dict[str, Any], *, verbose: int) -> None:
    """The human summary: per task what stops or holds it back, then (a dry run, or a
    run with -v) one line per file in the user's words (cli/describe.py), then totals."""
    from localrepo.cli.describe import labels_text

    echo = click.echo
    failed = {f["what"] for f in s["failed"]}
    for t in s["tasks"]:
        if t["created_remote_task"]:
            echo(f"Created the task '{t['task']}' on the server ({t['remote_id']}).")
        for p in t["problems"]:
            echo(f"problem: {p}", err=True)
        for h in t["held"]:
            echo(f"held back: {h['path']}: {h['reason']} (not synced until fixed)", err=True)
        if t["stop"]:
            echo(f"Stopped: {t['stop']}", err=True)
            paths = t["stop_paths"]
            for path in paths[:20]:
                echo(f"  would delete: {path}", err=True)
            if len(paths) > 20:
                echo(f"  ... and {len(paths) - 20} more (--json lists them all)", err=True)
        _print_changes(t, dry_run=s["dry_run"], verbose=verbose, failed=failed)
        for c in t["conflicts"]:
            how = _conflict_state(c)
            echo(
                f"conflict in {t['task']}: {c['path'] or 'an image not on disk'} {c['field']}: "
                f"here {labels_text(c['local'])}, on the server {labels_text(c['remote'])} ({how})",
                err=True,
            )
    if not s["dry_run"]:
        echo(
            f"uploaded {s['uploaded']}, downloaded {s['downloaded']}, relabelled "
            f"{s['relabelled']}, deleted {s['deleted']}, conflicts {s['conflicts']}, "
            f"failed {len(s['failed'])} ({s['seconds']:.1f}s)"
        )
    for f in s["failed"]:
        echo(f"failed: {f['what']}: {f['reason']}", err=True)


def _print_changes(t: dict[str, Any], *, dry_run: bool, verbose: int, failed: set[str]) -> None:
    """A task's files: what a dry run would do to each (capped without -v), then the
    totals; what a run did (with -v)."""
    from localrepo.cli.describe import FileChange, action_line, capped, totals_text

    changes = [FileChange(**c) for c in t["changes"]]
    if dry_run:
        lines = [action_line(c) for c in changes]
        for line in capped(lines, None if verbose else DRY_RUN_LINES, "-v lists them all"):
            click.echo(f"  {line}")
        what = f"would {totals_text(changes)}" if changes else "nothing to do."
        click.echo(f"{t['task']}: {what}")
    elif verbose and not t["stop"]:
        for c in changes:
            if c.path not in failed:
                click.echo(f"  {action_line(c, done=True)}")


def sync_options(f: Any) -> Any:
    for deco in reversed(
        [
            click.option("-n", "--dry-run", is_flag=True, help="Show the plan; change nothing."),
            click.option(
                "--policy",
                type=click.Choice(POLICIES),
                default=None,
                help="Conflicts: record them (manual, the default) or let one side win.",
            ),
            click.option(
                "--max-delete",
                metavar="N|P%",
                default=None,
                help="Stop before deleting more than N images or P% of a task (default 50%).",
            ),
            click.option("--force", is_flag=True, help="Go past the safety limits."),
            click.option(
                "-j",
                "--jobs",
                type=click.IntRange(1, 64),
                default=8,
                show_default=True,
                help="Parallel requests.",
            ),
            click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
            click.option(
                "-v",
                "--verbose",
                count=True,
                help="Name every file the run changes (a dry run: every file it would).",
            ),
            click.option(
                "--join",
                is_flag=True,
                help="A task never synced may bind to the server's task of its name even "
                "if that holds images (otherwise the sync stops).",
            ),
            token_option,
        ]
    ):
        f = deco(f)
    return f


@click.command(
    epilog=examples(
        "repo sync",
        "repo sync -n -v          # every file it would change, nothing done",
        "repo sync --policy local",
    )
)
@sync_options
@click.pass_obj
def sync(obj: Any, **kw: Any) -> None:
    """Scan, then push local changes and pull remote ones."""
    run_sync(obj, "sync", **kw)


@click.command(epilog=examples("repo push", "repo push -n -v --max-delete 10"))
@sync_options
@click.pass_obj
def push(obj: Any, **kw: Any) -> None:
    """Scan, then send local changes to the remote (nothing on disk changes)."""
    run_sync(obj, "push", **kw)


@click.command(epilog=examples("repo pull", "repo pull -n -v"))
@sync_options
@click.pass_obj
def pull(obj: Any, **kw: Any) -> None:
    """Bring remote changes to disk (nothing on the remote changes)."""
    run_sync(obj, "pull", **kw)


@click.command(epilog=examples("repo clone http://localhost:8000/ --remote-task pets ~/pets"))
@click.argument("url")
@click.option(
    "--remote-task",
    "--task",  # the older spelling, kept for scripts
    "task",
    required=True,
    metavar="ID|NAME",
    help="The remote task to clone, by id or name.",
)
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--workspace", metavar="ID", help="Remote workspace (default: Default).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=8, show_default=True)
@token_option
@click.pass_obj
def clone(
    obj: Any,
    url: str,
    task: str,
    directory: str | None,
    workspace: str | None,
    jobs: int,
    token: str | None,
) -> None:
    """Make a new folder tree from an existing remote task, and sync it."""
    from localrepo.config import load_config, save_config
    from localrepo.repository import init_repository
    from localrepo.sync.engine import Engine, SyncOptions

    url = typed_url(obj, url)
    client = make_client(url, token, workspace, jobs)
    stop = StopRequest()
    try:
        remote_task = find_remote_task(client, task, option="--remote-task", where=f"on {url}")
        target = obj.directory / (directory or remote_task.name)
        if target.exists() and any(target.iterdir()):
            raise LocalrepoError(f"{target} exists and is not empty; clone into a new folder.")
        repo = init_repository(
            target,
            task=remote_task.name,
            task_type=remote_task.type,
            remote=url,
            workspace=workspace,
        )
        repo.bind_root_task(remote_task.id)
        cfg = load_config(repo.state_dir)
        save_config(repo.state_dir, cfg)
        with _progress(obj.quiet) as bar, ctrl_c_stops(stop, "sync"):
            report = Engine(
                repo,
                client,
                SyncOptions(mode="pull", jobs=jobs, share_labels=cfg.sync.share_labels),
                progress=lambda _w, d, t: bar(d, t),
                stop=stop,
            ).run()
    finally:
        if not stop.abandons():
            client.close()
    summary = sync_summary(report, dry_run=False)
    obj.info(f"Cloned task '{remote_task.name}' ({remote_task.type}) into {repo.root}")
    print_sync(summary, verbose=obj.verbose)
    say_stopped(report, "sync", quiet=obj.quiet)
    sys.exit(sync_exit_code(summary))


@click.command(epilog=examples("repo verify", "repo verify --offline"))
@click.option("--offline", is_flag=True, help="Check the disk and the catalog only.")
@click.option("--json", "as_json", is_flag=True)
@token_option
@click.pass_obj
def verify(obj: Any, offline: bool, as_json: bool, token: str | None) -> None:
    """Check that the disk, the catalog and the remote agree (re-reads every file).

    Exit 0 when they do, 3 when something drifted or waits for a sync."""
    from localrepo.sync.verify import verify as run_verify

    client = None
    if offline:
        repo = obj.repo()
    else:
        repo, client = repo_client(obj, token)
    try:
        rep = run_verify(repo, client)
    finally:
        if client is not None:
            client.close()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": rep.ok,
                    "files": rep.files,
                    "images": rep.images,
                    "remote_images": rep.remote_images,
                    "drift": rep.drift,
                    "pending": rep.pending,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        for line in rep.drift:
            click.echo(f"drift: {line}")
        for line in rep.pending:
            click.echo(f"pending: {line}")
        tasks = ", ".join(f"{k} {v}" for k, v in rep.images.items())
        click.echo(
            f"{'OK' if rep.ok else 'NOT IN SYNC'}: {rep.files} files re-read; synced images "
            f"per task: {tasks or 'none'}"
        )
    if not rep.ok:
        sys.exit(EXIT_DECISION)
