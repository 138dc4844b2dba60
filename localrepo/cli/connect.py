"""How a command reaches the remote: the `--token` option, the client (its retries
bounded from the environment), the repository's remote, and `repo init --remote`'s
check that no server task with content is taken over."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from localrepo.errors import LocalrepoError

if TYPE_CHECKING:  # the remote package is imported when a command needs it
    from localrepo.remote.client import RecognitionClient


def token_option(f: Any) -> Any:
    return click.option(
        "--token",
        envvar=None,
        metavar="TOKEN",
        help="API token (else LOCALREPO_TOKEN, else the credentials file of 'repo login').",
    )(f)


def typed_url(obj: Any, url: str) -> str:
    """A remote URL as typed (an option or argument) with its scheme; when one was added
    (``localhost:8000`` -> ``http://localhost:8000``), it says so once on stderr.
    Refuses what is not a URL (exit 2) before anything is sent."""
    from localrepo.remote.errors import safe_url
    from localrepo.remote.urls import with_scheme

    text, added = with_scheme(url)
    if added:
        obj.info(f"No scheme in '{safe_url(text).split('://', 1)[1]}': using {safe_url(text)}")
    return text


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


def any_client(obj: Any, url: str | None, token: str | None) -> RecognitionClient:
    workspace = None
    if url is not None:
        url = typed_url(obj, url)
    else:
        cfg = obj.repo().config()
        url, workspace = cfg.remote.url, cfg.remote.workspace
        if not url:
            raise click.UsageError("give --url, or run inside a repository with a remote")
    return make_client(url, token, workspace)
