"""How a command reaches the remote: the `--token` option, the client (its retries
bounded from the environment), the repository's remote, and `repo init --remote`'s
check that no server task with content is taken over.

Which remote (contract of `choose_remote`, pure): the sync and ML commands use the
repository's remote. The look-ups (`repo tasks`, `repo labels`, `repo login`) use
``--url``, else the repository's remote when run inside one, else the remote the last
`repo login` remembered (userconfig.py); with none of these, a usage error (exit 2)
says how to give one. A remote task is named explicitly (`--remote-task NAME_OR_ID`)
and `find_remote_task` finds it by id or name, or says which names are close."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from localrepo.errors import EXIT_USAGE, LocalrepoError, NotARepositoryError

if TYPE_CHECKING:  # the remote package is imported when a command needs it
    from localrepo.remote.api import RemoteAPI
    from localrepo.remote.client import RecognitionClient
    from localrepo.remote.models import RemoteTask

# Where a look-up's remote came from (`RemoteChoice.source`).
FROM_OPTION = "--url"
FROM_REPOSITORY = "repository"
FROM_LOGIN = "login"


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
    return _password_moved(obj, text)


def _password_moved(obj: Any, url: str) -> str:
    """`url` without user-info; a password it held is stored as the remote's token in
    the credentials file (0600), the only file a secret may be in (issue 20)."""
    from localrepo.credentials import save_token
    from localrepo.remote.urls import split_password

    plain, password = split_password(url)
    if password is not None:
        path = save_token(plain, password)
        obj.info(
            f"The password in the URL is stored as the API token for {plain} in {path} "
            "(readable only by you); the URL is kept without it."
        )
    elif plain != url:
        obj.info(f"The user name in the URL is not used: using {plain}")
    return plain


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


@dataclass(frozen=True)
class RemoteChoice:
    """The remote a look-up talks to, and where that choice came from."""

    url: str
    workspace: str | None
    source: str  # FROM_OPTION, FROM_REPOSITORY or FROM_LOGIN


def choose_remote(
    typed: str | None, repository: tuple[str | None, str | None] | None, remembered: str | None
) -> RemoteChoice:
    """Pure: `typed` (``--url``), else the repository's (url, workspace) when the command
    runs inside one (`repository` is None outside), else the `remembered` remote."""
    if typed:
        return RemoteChoice(typed, None, FROM_OPTION)
    if repository is not None:
        url, workspace = repository
        if not url:
            raise LocalrepoError(
                "This repository has no remote: give --url URL, or set one with "
                "'repo remote set URL'.",
                exit_code=EXIT_USAGE,
            )
        return RemoteChoice(url, workspace, FROM_REPOSITORY)
    if remembered:
        return RemoteChoice(remembered, None, FROM_LOGIN)
    raise LocalrepoError(
        "Not inside a repository, and no remote remembered: give --url URL, or run "
        "'repo login URL' once (it remembers that remote for commands run outside a "
        "repository).",
        exit_code=EXIT_USAGE,
    )


def lookup_remote(obj: Any, url: str | None) -> RemoteChoice:
    """`choose_remote` over the command line, the repository (if any) and the user
    settings; with -v, says when the remembered remote is used."""
    from localrepo.userconfig import load_default_remote, user_config_path

    typed = typed_url(obj, url) if url is not None else None
    repository = None
    if typed is None:
        try:
            cfg = obj.repo().config()
            repository = (cfg.remote.url, cfg.remote.workspace)
        except NotARepositoryError:
            repository = None
    remembered = load_default_remote() if typed is None and repository is None else None
    choice = choose_remote(typed, repository, remembered)
    if choice.source == FROM_LOGIN and obj.verbose:
        obj.info(f"Using {choice.url}, the remote of 'repo login' ({user_config_path()}).")
    return choice


def any_client(obj: Any, url: str | None, token: str | None) -> RecognitionClient:
    choice = lookup_remote(obj, url)
    return make_client(choice.url, token, choice.workspace)


def find_remote_task(client: RemoteAPI, name_or_id: str, *, option: str, where: str) -> RemoteTask:
    """The remote task whose id, else whose name, is `name_or_id`; an unknown one is a
    usage error naming the close names (didyoumean.py), a name several tasks share asks
    for the id."""
    from urllib.parse import quote

    from localrepo.didyoumean import unknown_name
    from localrepo.remote.errors import BadRequestError, NotFoundError

    try:
        # Quoted: a name may hold characters that mean something in a URL path.
        return client.get_task(quote(name_or_id, safe=""))
    except (NotFoundError, BadRequestError):
        pass  # not an id (or not one of this workspace): a name, then
    tasks = list(client.iter_tasks())
    matches = [t for t in tasks if t.name == name_or_id]
    if not matches:
        raise unknown_name(option, name_or_id, [t.name for t in tasks], where=where)
    if len(matches) > 1:
        ids = ", ".join(t.id for t in matches)
        raise LocalrepoError(
            f"{option}: {len(matches)} tasks {where} are named '{name_or_id}' ({ids}); "
            "give the id of the one you mean.",
            exit_code=EXIT_USAGE,
        )
    return matches[0]
