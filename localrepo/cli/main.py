"""The `repo` command line. Thin: parse, call, print. Heavy imports happen inside the
commands so that `repo --help` starts fast."""

from __future__ import annotations

import os
import sys

import click

from localrepo import __version__
from localrepo.cli.context import Ctx, examples, run_guarded
from localrepo.cli.status import show_scan, show_status
from localrepo.vocabulary import MULTI_CLASS, TASK_TYPES

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# The commands that talk to the remote or run the watcher, defined at module level in
# their modules and imported only when one runs (or help lists them): `repo status`
# should not pay for defining them.
LAZY_COMMANDS: dict[str, str] = {
    **{
        name: f"localrepo.cli.sync_cmds:{name}"
        for name in ("sync", "push", "pull", "clone", "verify")
    },
    **{name: f"localrepo.cli.conflict_cmds:{name}" for name in ("conflicts", "resolve")},
    **{
        name: f"localrepo.cli.remote_cmds:{name}" for name in ("login", "remote", "tasks", "labels")
    },
    **{
        name: f"localrepo.cli.ml_cmds:{name}"
        for name in ("train", "models", "classify", "evaluate")
    },
    "watch": "localrepo.cli.daemon_cmds:watch",
    "daemon": "localrepo.cli.daemon_cmds:daemon",
}


class LazyGroup(click.Group):
    """A group whose LAZY_COMMANDS are imported when asked for (the way datasette and
    sqlite-utils register theirs)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        import importlib

        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=LazyGroup,
    context_settings=CONTEXT,
    epilog=examples(
        "repo init ~/pets --task pets --remote http://localhost:8000/", "repo -C ~/pets sync"
    ),
)
@click.option("-C", "directory", metavar="DIR", help="Run as if started in DIR (like git -C).")
@click.option("-v", "--verbose", count=True, help="Say more (repeat for more).")
@click.option("-q", "--quiet", is_flag=True, help="Say only what went wrong.")
@click.version_option(__version__, "--version", prog_name="localrepo")
@click.pass_context
def cli(ctx: click.Context, directory: str | None, verbose: int, quiet: bool) -> None:
    """localrepo: keep a folder-labelled image dataset in sync with a Recognition v2 API.

    The folder an image sits in is its label. Exit codes: 0 ok, 1 error, 2 usage,
    3 not in sync yet (conflicts, held-back files; with status --exit-code: changes
    pending), 4 authentication failed, 5 remote unreachable, 6 partial success,
    7 stopped by a safety limit, 130 stopped by Ctrl-C (the next sync resumes).
    """
    if directory is not None and not os.path.isdir(directory):
        raise click.BadParameter(f"{directory} is not a folder.", param_hint="-C")
    ctx.obj = Ctx(directory, verbose, quiet)


@cli.command(
    epilog=examples(
        "repo init ~/pets --task pets --type multi_class --remote http://localhost:8000/",
        "repo init ~/pets --task pets --remote http://localhost:8000/ --join",
    )
)
@click.argument("path", required=False, type=click.Path(file_okay=False))
@click.option("--task", "task", required=True, help="Name of the task bound to the root.")
@click.option(
    "--type",
    "task_type",
    type=click.Choice(TASK_TYPES),
    default=MULTI_CLASS,
    show_default=True,
    help="Task type.",
)
@click.option("--remote", metavar="URL", help="Base URL of the Recognition v2 API.")
@click.option("--workspace", metavar="ID", help="Remote workspace id (default: Default).")
@click.option(
    "--join",
    is_flag=True,
    help="Bind to the server's task of this name and type even if it holds images "
    "(needs the server and a token).",
)
@click.pass_obj
def init(
    obj: Ctx,
    path: str | None,
    task: str,
    task_type: str,
    remote: str | None,
    workspace: str | None,
    join: bool,
) -> None:
    """Create a repository in PATH (default: here) and bind its root to one task.

    With --remote, a server task of the same name that already holds images is never
    taken over: init refuses (or, offline, the first sync does) unless --join.
    """
    from localrepo.repository import init_repository

    if join and not remote:
        raise click.UsageError("--join needs --remote URL")
    target = obj.directory / path if path else obj.directory
    remote_id = None
    if remote:
        from localrepo.cli.connect import check_init_binding, typed_url

        remote = typed_url(obj, remote)

        remote_id = check_init_binding(obj, remote, workspace, task, task_type, join=join)
    repo = init_repository(
        target, task=task, task_type=task_type, remote=remote, workspace=workspace
    )
    if remote_id is not None:
        repo.bind_root_task(remote_id)
    obj.info(f"Initialised a localrepo repository in {repo.root} (task '{task}', {task_type}).")
    if remote_id is not None:
        obj.info(f"Joined the server task '{task}' ({remote_id}): 'repo sync' brings it here.")


@cli.group(epilog=examples("repo task add birds --task birds --type multi_label", "repo task list"))
def task() -> None:
    """Bind tasks to folders of the repository."""


@task.command(
    "add",
    epilog=examples(
        "repo task add birds --task birds --type multi_label",
        "repo task add ages --task ages --type regression",
    ),
)
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--task", "name", required=True, help="Task name.")
@click.option(
    "--type", "task_type", type=click.Choice(TASK_TYPES), default=MULTI_CLASS, show_default=True
)
@click.pass_obj
def task_add(obj: Ctx, path: str, name: str, task_type: str) -> None:
    """Bind the subfolder PATH to a new task (deeper bindings win over the root's)."""
    from localrepo.repository import add_task

    repo = obj.repo()
    rel = add_task(repo, obj.directory / path, task=name, task_type=task_type)
    obj.info(f"Bound {rel}/ to the task '{name}' ({task_type}).")


@task.command("rename", epilog=examples("repo task rename birds wild-birds"))
@click.argument("old")
@click.argument("new")
@click.pass_obj
def task_rename(obj: Ctx, old: str, new: str) -> None:
    """Rename a task of this repository that was never synced.

    \b
    Example:
      repo task rename pets pets-2026
    """
    from localrepo.repository import rename_task

    rename_task(obj.repo(), old, new)
    obj.info(f"Renamed the task '{old}' to '{new}'.")


@task.command(
    "remove",
    epilog=examples(
        "repo task remove birds", "repo task remove birds --force    # even with unsynced changes"
    ),
)
@click.argument("name")
@click.option(
    "--force", is_flag=True, help="Remove it even with changes or conflicts not synced yet."
)
@click.pass_obj
def task_remove(obj: Ctx, name: str, force: bool) -> None:
    """Unbind the task NAME from its folder. Deletes no file, here or on the server.

    The folder and its files stay as they are; the folder is ignored from then on (a
    line in the root's .localrepoignore; delete it and they join the enclosing task).
    The server's task keeps its images. Refused (exit 3) while the task has changes or
    conflicts not synced yet, unless --force.

    \b
    Example:
      repo task remove birds
    """
    from localrepo.repository import remove_task

    done = remove_task(obj.repo(), name, force=force)
    obj.info(f"Removed the task '{done.name}' from this repository; {done.root}/ is untouched.")
    obj.info(
        f"{done.root}/ is ignored from now on ('{done.ignore_line}' in .localrepoignore; "
        f"delete that line and its files join the task '{done.parent}')."
    )
    if done.remote_id is not None:
        obj.info(f"Nothing changed on the server: its task ({done.remote_id}) keeps its images.")
    if done.dropped_changes:
        obj.info(f"Gave up {done.dropped_changes} unsynced changes or conflicts (--force).")


@task.command("list", epilog=examples("repo task list", "repo task list --json"))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def task_list(obj: Ctx, as_json: bool) -> None:
    """List the tasks bound in this repository."""
    from localrepo.catalog.tasks import task_rows

    conn = obj.repo().connect()
    rows = task_rows(conn)
    conn.close()
    if as_json:
        import json

        click.echo(
            json.dumps(
                [
                    {"id": r[0], "name": r[1], "type": r[2], "root": r[3], "remote_id": r[4]}
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    for r in rows:
        click.echo(f"{r[1]}\t{r[2]}\t{r[3] or '.'}/")


@cli.command(epilog=examples("repo scan", "repo scan -n --json"))
@click.option("-n", "--dry-run", is_flag=True, help="Show what changed; record nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the scan report as JSON.")
@click.pass_obj
def scan(obj: Ctx, dry_run: bool, as_json: bool) -> None:
    """Scan the folder tree and journal what changed since the last scan."""
    show_scan(obj, dry_run=dry_run, as_json=as_json)


@cli.command(epilog=examples("repo status", "repo status --all", "repo status --porcelain -z"))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--porcelain", is_flag=True, help="Stable, script-friendly lines.")
@click.option("-z", "nul", is_flag=True, help="With --porcelain: NUL-terminated, no quoting.")
@click.option(
    "--exit-code", is_flag=True, help="Exit 3 when there are pending changes or conflicts."
)
@click.option("--all", "show_all", is_flag=True, help="List every file (not only the first 10).")
@click.pass_obj
def status(
    obj: Ctx, as_json: bool, porcelain: bool, nul: bool, exit_code: bool, show_all: bool
) -> None:
    """Scan, then show per task: images per label; the files changed since the last sync,
    by kind (new, relabelled, value changed, moved, deleted), damaged and invalid files,
    problems and conflicts."""
    if nul and not porcelain:
        raise click.UsageError("-z goes with --porcelain.")
    if as_json and porcelain:
        raise click.UsageError("choose one of --json and --porcelain.")
    code = show_status(
        obj,
        as_json=as_json,
        porcelain=porcelain,
        nul=nul,
        exit_code=exit_code,
        show_all=show_all,
    )
    if code:
        sys.exit(code)


@cli.command(
    epilog=examples("repo log --limit 20", "repo log --pending", "repo log --debug --json")
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N entries.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--pending", is_flag=True, help="Only entries not yet synced.")
@click.option("--debug", is_flag=True, help="Every journal entry, the sync's own included.")
@click.pass_obj
def log(obj: Ctx, limit: int | None, as_json: bool, pending: bool, debug: bool) -> None:
    """Show what happened to which file, on which side (local or server), newest first.

    --json lists every journal entry, each with its `change` in these words (null for
    the sync's own bookkeeping, which only --debug prints)."""
    from localrepo.cli import report

    # The human log skips bookkeeping entries, so --limit counts the entries it shows.
    raw_limit = limit if as_json or debug else None
    conn = obj.repo().connect()
    try:
        entries = report.journal_entries(conn, limit=raw_limit, pending_only=pending)
    finally:
        conn.close()
    if as_json:
        report.print_json(entries)
    elif debug:
        report.print_log_debug(entries)
    else:
        report.print_log(entries, limit=limit)


@cli.command(
    "check-ignore",
    epilog=examples(
        "repo check-ignore -v cats/Thumbs.db", "repo check-ignore -v -n cats/a.jpg cats/b.jpg"
    ),
)
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "-v",
    "--verbose",
    "verbose",
    is_flag=True,
    help="Show the ignore file, line and pattern that matched.",
)
@click.option(
    "-n", "--non-matching", is_flag=True, help="With -v, also show paths that are not ignored."
)
@click.pass_obj
def check_ignore(obj: Ctx, paths: tuple[str, ...], verbose: bool, non_matching: bool) -> None:
    """Tell which PATHs the ignore rules exclude (exit 0 if any is, 1 if none)."""
    from localrepo.cli.report import check_ignore_lines

    repo = obj.repo()
    lines, any_ignored = check_ignore_lines(repo.root, obj.directory, paths, verbose, non_matching)
    for line in lines:
        click.echo(line)
    sys.exit(0 if any_ignored else 1)


def main(argv: list[str] | None = None) -> None:
    """The full command line (click). Console scripts start at cli/entry.py, which runs
    `repo status` without importing click and everything else through here."""
    run_guarded(lambda: _run_click(argv))


def _run_click(argv: list[str] | None) -> int:
    try:
        # Without standalone mode, click returns ctx.exit()'s code (--help, --version).
        code = cli.main(args=argv, prog_name="repo", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    main()
