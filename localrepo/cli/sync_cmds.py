"""`repo sync`, `push`, `pull`, `clone`, `conflicts`, `resolve`, `verify`, `login`,
`remote`, `tasks`, `labels`: the commands that talk to the remote."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from localrepo.errors import EXIT_DECISION, EXIT_OK, EXIT_PARTIAL, EXIT_SAFETY, LocalrepoError
from localrepo.vocabulary import MULTI_CLASS, POLICIES, POLICY_LOCAL, POLICY_REMOTE

if TYPE_CHECKING:  # the remote package is imported when a command needs it
    from localrepo.remote.api import RemoteAPI
    from localrepo.remote.client import RecognitionClient
    from localrepo.remote.models import RemoteTask


def token_option(f: Any) -> Any:
    return click.option(
        "--token",
        envvar=None,
        metavar="TOKEN",
        help="API token (else LOCALREPO_TOKEN, else the credentials file of 'repo login').",
    )(f)


def make_client(
    url: str, token: str | None, workspace: str | None, jobs: int = 8
) -> RecognitionClient:
    import logging

    from localrepo.credentials import resolve_token
    from localrepo.remote.client import RecognitionClient

    # stamina logs every scheduled retry at WARNING; with no logging set up Python's
    # last-resort handler printed a bare "stamina.retry_scheduled" line per retry.
    logging.getLogger("stamina").setLevel(logging.ERROR)

    return RecognitionClient(
        url, resolve_token(url, token), workspace=workspace, concurrency=jobs, **retry_settings()
    )


def retry_settings() -> dict[str, Any]:
    """LOCALREPO_RETRY_ATTEMPTS / LOCALREPO_RETRY_TIMEOUT (seconds) bound the retries of a
    failing request (default: 6 attempts within 60 s)."""
    import os

    out: dict[str, Any] = {}
    for env, key, kind in (
        ("LOCALREPO_RETRY_ATTEMPTS", "retry_attempts", int),
        ("LOCALREPO_RETRY_TIMEOUT", "retry_timeout", float),
    ):
        raw = os.environ.get(env)
        if raw:
            try:
                value = kind(raw)
                if value <= 0:
                    raise ValueError
            except ValueError:
                raise LocalrepoError(f"{env}={raw!r}: give a positive number.") from None
            out[key] = value
    return out


def check_init_binding(
    obj: Any, url: str, workspace: str | None, name: str, task_type: str, *, join: bool
) -> str | None:
    """`repo init --remote`: refuse a takeover of a server task with content now, when
    the server can be asked (one try, short timeout); offline, the first sync asks.
    With `join`, the server task's id (the server must answer)."""
    from localrepo.credentials import MissingTokenError, resolve_token
    from localrepo.remote.client import RecognitionClient
    from localrepo.remote.errors import RemoteError
    from localrepo.sync.binding import TakeoverRefused, check_new_binding

    try:
        token = resolve_token(url, None)
    except MissingTokenError:
        if join:
            raise
        return None
    client = RecognitionClient(url, token, workspace=workspace, timeout=5.0, retry_attempts=1)
    try:
        return check_new_binding(
            client,
            name,
            task_type,
            join=join,
            url=url,
            rename_hint="repo init --task NEW_NAME",
        )
    except TakeoverRefused:
        raise
    except RemoteError as exc:
        if join:
            raise
        obj.info(f"Could not ask {url} about a task named '{name}' ({exc}); the first sync will.")
        return None
    finally:
        client.close()


def repo_client(obj: Any, token: str | None, jobs: int = 8) -> tuple[Any, RecognitionClient]:
    repo = obj.repo()
    cfg = repo.config()
    if not cfg.remote.url:
        raise LocalrepoError(
            "This repository has no remote. Set one with: repo remote set URL [--workspace ID]"
        )
    return repo, make_client(cfg.remote.url, token, cfg.remote.workspace, jobs)


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
    with _progress(obj.quiet or as_json) as bar:

        def progress(_what: str, done: int, total: int) -> None:
            bar(done, total)

        try:
            report = Engine(repo, client, options, progress=progress).run()
        finally:
            client.close()
    summary = sync_summary(report, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print_sync(summary, verbose=obj.verbose)
    sys.exit(sync_exit_code(summary))


def sync_exit_code(summary: dict[str, Any]) -> int:
    """7 stopped by a safety limit, 6 some items failed, 3 not in sync yet (conflicts,
    held-back files, images left alone for a reported problem, work left for the other
    direction), 0 in sync (docs/sync.md)."""
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
    o = report.outcome
    tasks = []
    for t in report.tasks:
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
                "conflicts": [
                    {
                        "image": c.key,
                        "field": c.field,
                        "base": dict(c.base),
                        "local": dict(c.local),
                        "remote": dict(c.remote),
                        "resolution": c.resolution,
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


def print_sync(s: dict[str, Any], *, verbose: int) -> None:
    echo = click.echo
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
        if s["dry_run"]:
            if not t["plan"]:
                echo(f"{t['task']}: nothing to do.")
            else:
                kinds = ", ".join(
                    f"{n} {k.replace('_', ' ')}" for k, n in sorted(t["plan"].items())
                )
                echo(f"{t['task']}: would do {kinds}")
                if verbose:
                    for op in t["ops"]:
                        echo(f"  {op['kind']:<14} {op['label'] or op['key']}")
        for c in t["conflicts"]:
            how = f"settled: {c['resolution']} wins" if c["resolution"] else "needs 'repo resolve'"
            echo(
                f"conflict in {t['task']}: image {c['image'][:12]} {c['field']}: local "
                f"{sorted(c['local'])} vs remote {sorted(c['remote'])} ({how})",
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


@click.command()
@sync_options
@click.pass_obj
def sync(obj: Any, **kw: Any) -> None:
    """Scan, then push local changes and pull remote ones."""
    run_sync(obj, "sync", **kw)


@click.command()
@sync_options
@click.pass_obj
def push(obj: Any, **kw: Any) -> None:
    """Scan, then send local changes to the remote (nothing on disk changes)."""
    run_sync(obj, "push", **kw)


@click.command()
@sync_options
@click.pass_obj
def pull(obj: Any, **kw: Any) -> None:
    """Bring remote changes to disk (nothing on the remote changes)."""
    run_sync(obj, "pull", **kw)


@click.command()
@click.argument("url")
@click.option("--task", "task", required=True, metavar="ID|NAME", help="The remote task.")
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

    client = make_client(url, token, workspace, jobs)
    try:
        remote_task = _find_remote_task(client, task)
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
        with _progress(obj.quiet) as bar:
            report = Engine(
                repo,
                client,
                SyncOptions(mode="pull", jobs=jobs, share_labels=cfg.sync.share_labels),
                progress=lambda _w, d, t: bar(d, t),
            ).run()
    finally:
        client.close()
    summary = sync_summary(report, dry_run=False)
    obj.info(f"Cloned task '{remote_task.name}' ({remote_task.type}) into {repo.root}")
    print_sync(summary, verbose=obj.verbose)
    sys.exit(sync_exit_code(summary))


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def conflicts(obj: Any, as_json: bool) -> None:
    """List the conflicts waiting for 'repo resolve'."""
    from localrepo.catalog.conflicts import open_details

    conn = obj.repo().connect()
    rows = open_details(conn)
    conn.close()
    items = [
        {
            "id": r[0],
            "task": r[1],
            "path": r[2],
            "field": r[3],
            "base": json.loads(r[4]),
            "local": json.loads(r[5]),
            "remote": json.loads(r[6]),
            "image": r[7],
        }
        for r in rows
    ]
    if as_json:
        click.echo(json.dumps(items, indent=2, ensure_ascii=False))
        return
    if not items:
        click.echo("No conflicts.")
    for c in items:
        click.echo(
            f"{c['path'] or c['image']}\t{c['field']}: base {sorted(c['base'])}, local "
            f"{sorted(c['local'])}, remote {sorted(c['remote'])}"
        )


@click.command()
@click.argument("paths", nargs=-1)
@click.option(
    "--take", type=click.Choice([POLICY_LOCAL, POLICY_REMOTE]), help="The side that wins."
)
@click.option(
    "--keep",
    metavar="LABEL",
    help="multi_class: the category the image keeps (its copies in other label "
    "folders go to the trash).",
)
@click.option("--all", "all_", is_flag=True, help="Every open conflict.")
@token_option
@click.pass_obj
def resolve(
    obj: Any,
    paths: tuple[str, ...],
    take: str | None,
    keep: str | None,
    all_: bool,
    token: str | None,
) -> None:
    """Settle the conflicts of PATHs (any copy of the image), then sync.

    --take keeps one side's state; --keep LABEL keeps one category of an image
    whose copies sit in several label folders, or that has several on the server.

    \b
    Examples:
      repo resolve dog/a.jpg --take local
      repo resolve cat/b.jpg --keep cat
      repo resolve --all --take remote
    """
    from localrepo.sync.engine import Engine, SyncOptions

    if (take is None) == (keep is None):
        raise click.UsageError("give one of --take local|remote or --keep LABEL")
    if bool(paths) == all_:
        raise click.UsageError("give the PATHs of the conflicts to settle, or --all")
    repo = obj.repo()
    keys = _conflict_keys(repo, obj.directory, paths, all_)
    if keep is not None:
        _keep_on_disk(repo, keys, keep)
        take = POLICY_LOCAL
    repo, client = repo_client(obj, token)
    try:
        options = SyncOptions(
            policy=take,  # type: ignore[arg-type]
            resolve_keys=frozenset(keys),
            share_labels=repo.config().sync.share_labels,
        )
        report = Engine(repo, client, options).run()
    finally:
        client.close()
    summary = sync_summary(report, dry_run=False)
    print_sync(summary, verbose=obj.verbose)
    sys.exit(sync_exit_code(summary))


@click.command()
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


@click.command()
@click.option("--url", metavar="URL", help="The remote (default: this repository's).")
@click.option("--token", metavar="TOKEN", help="The token (default: ask).")
@click.pass_obj
def login(obj: Any, url: str | None, token: str | None) -> None:
    """Store an API token for a remote in the per-user credentials file (mode 0600)."""
    from localrepo.credentials import save_token

    if url is None:
        url = obj.repo().config().remote.url
        if not url:
            raise click.UsageError("give --url, or run inside a repository with a remote")
    if not token:
        token = click.prompt("API token", hide_input=True)
    client = make_client(url, token, None)
    try:
        client.list_workspaces()  # proves the token works before it is saved
    finally:
        client.close()
    path = save_token(url, token)
    obj.info(f"Token saved for {url} in {path} (readable only by you).")


@click.group()
def remote() -> None:
    """Show or set this repository's remote."""


@remote.command("set")
@click.argument("url")
@click.option("--workspace", metavar="ID")
@click.pass_obj
def remote_set(obj: Any, url: str, workspace: str | None) -> None:
    from localrepo.config import save_config

    repo = obj.repo()
    cfg = repo.config()
    cfg.remote.url = url
    cfg.remote.workspace = workspace
    save_config(repo.state_dir, cfg)
    obj.info(f"Remote set to {url}")


@remote.command("show")
@click.pass_obj
def remote_show(obj: Any) -> None:
    cfg = obj.repo().config()
    click.echo(f"url\t{cfg.remote.url or '(none)'}\nworkspace\t{cfg.remote.workspace or 'Default'}")


@click.command()
@click.option("--url", metavar="URL")
@click.option("--json", "as_json", is_flag=True)
@token_option
@click.pass_obj
def tasks(obj: Any, url: str | None, as_json: bool, token: str | None) -> None:
    """List the remote's tasks."""
    client = _any_client(obj, url, token)
    try:
        items = [
            {
                "id": t.id,
                "name": t.name,
                "type": t.type,
                "production_version": t.production_version,
                "last_train_status": t.last_train_status,
            }
            for t in client.iter_tasks()
        ]
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(items, indent=2, ensure_ascii=False))
        return
    for t in items:
        click.echo(f"{t['id']}\t{t['type']}\t{t['name']}")


@click.command()
@click.option("--url", metavar="URL")
@click.option("--task", "task", metavar="ID", help="Only the labels of this remote task.")
@click.option("--json", "as_json", is_flag=True)
@token_option
@click.pass_obj
def labels(obj: Any, url: str | None, task: str | None, as_json: bool, token: str | None) -> None:
    """List the remote's labels."""
    client = _any_client(obj, url, token)
    try:
        items = [
            {"id": lab.id, "name": lab.name, "type": lab.type, "images_count": lab.images_count}
            for lab in client.iter_labels(task=task)
        ]
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(items, indent=2, ensure_ascii=False))
        return
    for lab in items:
        click.echo(f"{lab['id']}\t{lab['type']}\t{lab['images_count']}\t{lab['name']}")


def _any_client(obj: Any, url: str | None, token: str | None) -> RecognitionClient:
    workspace = None
    if url is None:
        cfg = obj.repo().config()
        url, workspace = cfg.remote.url, cfg.remote.workspace
        if not url:
            raise click.UsageError("give --url, or run inside a repository with a remote")
    return make_client(url, token, workspace)


def _find_remote_task(client: RemoteAPI, task: str) -> RemoteTask:
    from localrepo.remote.errors import NotFoundError

    try:
        return client.get_task(task)
    except (NotFoundError, LocalrepoError):
        pass
    matches = [t for t in client.iter_tasks() if t.name == task]
    if not matches:
        raise LocalrepoError(f"no remote task with the id or name {task!r} (see 'repo tasks').")
    if len(matches) > 1:
        raise LocalrepoError(f"{len(matches)} remote tasks are named {task!r}; give its id.")
    return matches[0]


def _conflict_keys(repo: Any, cwd: Path, paths: tuple[str, ...], all_: bool) -> set[str]:
    """The images whose open conflicts the user names: by any file of the image, or by
    the path the conflict was recorded with."""
    from localrepo.catalog.conflicts import image_at, open_conflicts

    conn = repo.connect()
    try:
        rows = open_conflicts(conn)
        if all_:
            if not rows:
                raise LocalrepoError("no open conflicts (see 'repo conflicts').")
            return {r[2] for r in rows if r[2]}
        open_keys = {r[2] for r in rows if r[2]}
        keys: set[str] = set()
        missing = []
        for given in paths:
            rel = _rel(repo.root, cwd, given)
            key = image_at(conn, rel) or next((r[2] for r in rows if r[1] == rel), None)
            if key is None or key not in open_keys:
                missing.append(rel)
            else:
                keys.add(key)
    finally:
        conn.close()
    if missing:
        raise LocalrepoError(
            "no open conflict for: " + ", ".join(sorted(missing)) + " (see 'repo conflicts')"
        )
    return keys


def _keep_on_disk(repo: Any, keys: set[str], label: str) -> None:
    """`--keep LABEL`: make each image's files say exactly LABEL (sync/keep.py)."""
    from localrepo.catalog import files as catalog_files
    from localrepo.catalog import tasks as catalog_tasks
    from localrepo.labelnames import folder_for_label
    from localrepo.layout import folder_label, nfc
    from localrepo.sync.keep import keep_label
    from localrepo.sync.localfs import LocalFS
    from localrepo.sync.snapshot import local_files

    label = nfc(label)
    with repo.lock():
        conn = repo.connect()
        try:
            bindings = catalog_tasks.load_bindings(conn)
            stats = catalog_files.load_stats(conn)
            fs = LocalFS(repo.root)
            work = []
            for binding in bindings:
                files = local_files(conn, binding, bindings)
                mine = [k for k in sorted(keys) if k in files]
                if not mine:
                    continue
                if binding.type != MULTI_CLASS:
                    raise LocalrepoError(
                        f"--keep is for multi_class tasks; '{binding.name}' is "
                        f"{binding.type}: use --take local|remote."
                    )
                name = folder_for_label(label)
                if name is None:
                    raise LocalrepoError(f"--keep: no folder can hold the label {label!r}.")
                folder = f"{binding.root}/{name}" if binding.root else name
                work += [(binding, folder, files[key]) for key in mine]
            if len(work) < len(keys):
                raise LocalrepoError(
                    "--keep: an image in conflict has no file here to keep; settle it with "
                    "--take remote (or --take local to keep what the folders say)."
                )
            for binding, folder, paths in work:
                for line in keep_label(
                    fs, paths, label, folder, lambda p, b=binding: folder_label(p, b), stats
                ):
                    click.echo(line, err=True)
        finally:
            conn.close()


def _rel(root: Path, cwd: Path, given: str) -> str:
    import os

    full = Path(os.path.normpath(cwd / given))
    try:
        return full.relative_to(root.resolve()).as_posix()
    except ValueError:
        raise LocalrepoError(f"{given} is outside the repository {root}") from None
