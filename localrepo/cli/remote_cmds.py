"""`repo login`, `remote set|show`, `tasks`, `labels`: the remote's token, address and
contents, without syncing anything."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from localrepo.cli.connect import any_client, make_client, token_option, typed_url
from localrepo.cli.context import examples

if TYPE_CHECKING:
    from localrepo.remote.client import RecognitionClient


URL_HELP = (
    "The remote (default: this repository's; outside a repository, the one 'repo login' "
    "remembered)."
)


@click.command(
    epilog=examples(
        "repo login http://localhost:8000/     # then 'repo tasks' works from any folder",
        "repo -C ~/pets login                  # the repository's remote",
    )
)
@click.argument("url", required=False)
@click.option("--url", "url_option", metavar="URL", hidden=True)  # the older spelling
@click.option("--token", metavar="TOKEN", help="The token (default: ask).")
@click.pass_obj
def login(obj: Any, url: str | None, url_option: str | None, token: str | None) -> None:
    """Store an API token for the remote URL in the per-user credentials file (mode
    0600), and remember URL for commands run outside a repository.

    URL defaults to this repository's remote, and outside a repository to the remote
    the last login remembered. The token is never written anywhere else.
    """
    from localrepo.cli.connect import lookup_remote
    from localrepo.credentials import save_token
    from localrepo.remote.urls import split_password
    from localrepo.userconfig import save_default_remote

    if url and url_option and url != url_option:
        raise click.UsageError("give the URL once (as URL or --url)")
    if not token and (url or url_option):
        token = split_password(url or url_option or "")[1]  # the password is the token
    target = lookup_remote(obj, url or url_option).url
    if not token:
        token = click.prompt("API token", hide_input=True)
    client = make_client(target, token, None)
    try:
        client.list_workspaces()  # proves the token works before it is saved
    finally:
        client.close()
    path = save_token(target, token)
    save_default_remote(target)
    obj.info(f"Token saved for {target} in {path} (readable only by you).")
    obj.info(f"Outside a repository, 'repo tasks' and 'repo labels' now use {target}.")


@click.group(epilog=examples("repo remote show", "repo remote set http://localhost:8000/"))
def remote() -> None:
    """Show or set this repository's remote."""


@remote.command(
    "set",
    epilog=examples(
        "repo remote set http://localhost:8000/",
        "repo remote set http://localhost:8000/ --workspace WORKSPACE_ID",
    ),
)
@click.argument("url")
@click.option("--workspace", metavar="ID")
@click.pass_obj
def remote_set(obj: Any, url: str, workspace: str | None) -> None:
    from localrepo.config import save_config

    url = typed_url(obj, url)
    repo = obj.repo()
    cfg = repo.config()
    cfg.remote.url = url
    cfg.remote.workspace = workspace
    save_config(repo.state_dir, cfg)
    obj.info(f"Remote set to {url}")


@remote.command("show", epilog=examples("repo remote show"))
@click.pass_obj
def remote_show(obj: Any) -> None:
    from localrepo.remote.urls import masked

    cfg = obj.repo().config()
    url = masked(cfg.remote.url) if cfg.remote.url else "(none)"
    click.echo(f"url\t{url}\nworkspace\t{cfg.remote.workspace or 'Default'}")


@click.command(epilog=examples("repo tasks", "repo tasks --url http://localhost:8000/ --json"))
@click.option("--url", metavar="URL", help=URL_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@token_option
@click.pass_obj
def tasks(obj: Any, url: str | None, as_json: bool, token: str | None) -> None:
    """List the remote's tasks (id, type, name)."""
    client = any_client(obj, url, token)
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


@click.command(
    epilog=examples(
        "repo labels --task pets", "repo labels --remote-task pets --url http://localhost:8000/"
    )
)
@click.option("--url", metavar="URL", help=URL_HELP)
@click.option(
    "--task",
    "task_name",
    metavar="NAME",
    help="Only the labels of this repository's task NAME (on the repository's remote).",
)
@click.option(
    "--remote-task",
    metavar="NAME|ID",
    help="Only the labels of the remote's task with this id or name (works outside a repository).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@token_option
@click.pass_obj
def labels(
    obj: Any,
    url: str | None,
    task_name: str | None,
    remote_task: str | None,
    as_json: bool,
    token: str | None,
) -> None:
    """List the remote's labels (id, type, images, name): all of them, those of a task
    of this repository (--task), or those of a remote task (--remote-task).

    An unknown task name is a usage error (exit 2) that lists the tasks.
    """
    client, task_id = _labels_client(obj, url, task_name, remote_task, token)
    try:
        items = [
            {"id": lab.id, "name": lab.name, "type": lab.type, "images_count": lab.images_count}
            for lab in client.iter_labels(task=task_id)
        ]
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(items, indent=2, ensure_ascii=False))
        return
    for lab in items:
        click.echo(f"{lab['id']}\t{lab['type']}\t{lab['images_count']}\t{lab['name']}")


def _labels_client(
    obj: Any, url: str | None, task_name: str | None, remote_task: str | None, token: str | None
) -> tuple[RecognitionClient, str | None]:
    """The client `repo labels` asks, and the remote task id to filter by (None: all)."""
    from localrepo.cli.connect import find_remote_task, lookup_remote
    from localrepo.remote.errors import safe_url

    if task_name is not None and remote_task is not None:
        raise click.UsageError("give --task (this repository's) or --remote-task, not both")
    if task_name is not None:
        if url is not None:
            raise click.UsageError(
                "--task names a task of this repository, which uses its own remote; "
                "for another remote's task use --remote-task NAME|ID with --url"
            )
        return _repository_task_client(obj, task_name, token)
    choice = lookup_remote(obj, url)
    client = make_client(choice.url, token, choice.workspace)
    if remote_task is None:
        return client, None
    try:
        found = find_remote_task(
            client, remote_task, option="--remote-task", where=f"on {safe_url(choice.url)}"
        )
    except BaseException:
        client.close()
        raise
    return client, found.id


def _repository_task_client(
    obj: Any, task_name: str, token: str | None
) -> tuple[RecognitionClient, str | None]:
    """`repo labels --task NAME`: the repository's remote and the task's remote id."""
    from localrepo.cli.ml_task import pick_task, remote_client
    from localrepo.errors import EXIT_USAGE, LocalrepoError, NotARepositoryError

    try:
        repo = obj.repo()
    except NotARepositoryError:
        raise LocalrepoError(
            f"--task names a task of a repository, and {obj.directory} is not inside one. "
            f"For a task of the remote, use: repo labels --remote-task {task_name}",
            exit_code=EXIT_USAGE,
        ) from None
    try:
        task = pick_task(obj, repo, task_name)
    except LocalrepoError as exc:
        if exc.exit_code != EXIT_USAGE:
            raise
        # This option once took a remote id: say where those go now.
        raise LocalrepoError(
            f"{exc} For a task of the remote (by name or id): "
            f"repo labels --remote-task {task_name}",
            exit_code=EXIT_USAGE,
        ) from None
    return remote_client(obj, task, token), task.remote_id
