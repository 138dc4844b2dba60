"""`repo login`, `remote set|show`, `tasks`, `labels`: the remote's token, address and
contents, without syncing anything."""

from __future__ import annotations

import json
from typing import Any

import click

from localrepo.cli.connect import any_client, make_client, token_option, typed_url


@click.command()
@click.option("--url", metavar="URL", help="The remote (default: this repository's).")
@click.option("--token", metavar="TOKEN", help="The token (default: ask).")
@click.pass_obj
def login(obj: Any, url: str | None, token: str | None) -> None:
    """Store an API token for a remote in the per-user credentials file (mode 0600)."""
    from localrepo.credentials import save_token

    if url is not None:
        url = typed_url(obj, url)
    else:
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

    url = typed_url(obj, url)
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


@click.command()
@click.option("--url", metavar="URL")
@click.option("--task", "task", metavar="ID", help="Only the labels of this remote task.")
@click.option("--json", "as_json", is_flag=True)
@token_option
@click.pass_obj
def labels(obj: Any, url: str | None, task: str | None, as_json: bool, token: str | None) -> None:
    """List the remote's labels."""
    client = any_client(obj, url, token)
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
