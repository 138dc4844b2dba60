"""``localrepo-server``: run the server and manage accounts. This module parses the
command line, reads and checks the settings, and runs the account and worker commands;
``serve`` itself is server/serving.py's.

    localrepo-server serve [--host 127.0.0.1] [--port 8000] [--data DIR] [--dev] ...
    localrepo-server user create NAME [--ask-password | --password-stdin]
    localrepo-server user set-password NAME [--password-stdin]   (web sign-in)
    localrepo-server token create USER          (prints the token, once)
    localrepo-server workspace create NAME --user USER
    localrepo-server worker                    (the training worker; serve starts one)
    localrepo-server init                      (make the data folder and database)
    localrepo-server fsck | backup DIR | restore DIR   (server/cli_data.py)

Every command takes ``--data DIR`` and ``--database-url URL`` (environment:
``LOCALREPO_SERVER_DATA``, ``LOCALREPO_SERVER_DATABASE_URL``). The data folder is
``--data``, else ``$LOCALREPO_SERVER_DATA``, else the per-user data folder; only
``serve`` and ``init`` create a database there (server/datadir.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from . import cli_data, datadir
from .cli_examples import add_examples
from .config import ENV_DATA, RateLimit, Settings, default_data_dir, default_database_url
from .data import accounts
from .data.db import Database


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help=f"data folder: the SQLite database and the image files "
        f"(default: ${ENV_DATA}, else the per-user data folder)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="any SQLAlchemy database URL, e.g. postgresql+psycopg://user:pw@host/db "
        "(default: $LOCALREPO_SERVER_DATABASE_URL or SQLite in the data folder)",
    )


def _megabytes(text: str) -> int:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return int(value * 1024 * 1024)


def _rate(text: str) -> RateLimit:
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _backend_choice(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=["auto", "efficientnet-lite0", "handcrafted"],
        default="auto",
        help="image features for new trainings: the pretrained EfficientNet-Lite0 (needs "
        "the 'ml' extra), handcrafted colour/gradient features, or auto (the pretrained "
        "one when installed)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads for image features (default 1)"
    )
    parser.add_argument(
        "--train-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="fault injection: every training waits S seconds once it is IN_TRAINING",
    )
    parser.add_argument(
        "--min-images-per-label",
        type=int,
        default=5,
        metavar="N",
        help="train/ answers 400 when a label of the task has fewer images (default 5)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="localrepo-server",
        description="A self-hosted Recognition v2 API server for localrepo.",
        epilog=datadir.help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init", help="create the data folder and its database (serve does too)")
    _common(init)

    serve = sub.add_parser("serve", help="run the HTTP server")
    _common(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    serve.add_argument(
        "--dev",
        action="store_true",
        help="create the user (--dev-user, default 'dev') if missing and print a new token",
    )
    serve.add_argument("--dev-user", default="dev")
    serve.add_argument(
        "--ready-file",
        type=Path,
        help='once listening, write {"url", "port", "pid"[, "token"]} as JSON to this file',
    )
    serve.add_argument(
        "--max-body-mb",
        type=_megabytes,
        default=32 * 1024 * 1024,
        metavar="MB",
        help="largest request body, in MiB (default 32); more answers 413",
    )
    serve.add_argument(
        "--max-image-pixels",
        type=int,
        default=None,
        help="decompression-bomb limit in pixels (default: Pillow's, 89478485)",
    )
    serve.add_argument(
        "--resize-to",
        type=int,
        default=1024,
        help="shrink uploads to this many pixels on the longer side unless noresize",
    )
    serve.add_argument("--thumb-size", type=int, default=256)
    serve.add_argument("--page-size", type=int, default=50, help="default page size")
    serve.add_argument("--max-page-size", type=int, default=1000)
    serve.add_argument(
        "--rate-limit",
        type=_rate,
        default=None,
        metavar="N/s",
        help="per-token request rate (N/s, N/m or N/h); more answers 429 with Retry-After",
    )
    serve.add_argument(
        "--fail-every",
        type=int,
        default=0,
        metavar="N",
        help="fault injection: every Nth API request answers 503",
    )
    serve.add_argument(
        "--latency-ms",
        type=int,
        default=0,
        help="fault injection: delay every API request",
    )
    serve.add_argument(
        "--inline-fsync-ms",
        type=float,
        default=1.0,
        metavar="MS",
        help="fsync small uploads on the event loop while the disk answers faster than "
        "this (a thread hand-off costs more); 0: always in a thread",
    )
    serve.add_argument(
        "--sqlite-synchronous",
        choices=["NORMAL", "FULL"],
        default="NORMAL",
        help="SQLite durability: NORMAL survives a process crash, FULL also a power cut",
    )
    serve.add_argument(
        "--auth-cache-seconds",
        type=float,
        default=2.0,
        help="how long a checked token is trusted without a database look-up",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--no-access-log", action="store_true")
    serve.add_argument(
        "--forwarded-allow-ips",
        default=None,
        help="trust X-Forwarded-* from these proxy IPs (for links behind a reverse proxy)",
    )
    _backend_choice(serve)
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="do not start the training worker (run 'localrepo-server worker' yourself)",
    )
    serve.add_argument(
        "--classify-max-records",
        type=int,
        default=10,
        metavar="N",
        help="most records in one classify/ request (default 10); more answers 400",
    )
    serve.add_argument(
        "--allow-private-urls",
        action="store_true",
        help="let classify/ fetch _url records from loopback and private addresses",
    )
    serve.add_argument(
        "--url-timeout", type=float, default=10.0, help="seconds to fetch one _url record"
    )
    serve.add_argument(
        "--url-max-mb",
        type=_megabytes,
        default=20 * 1024 * 1024,
        metavar="MB",
        help="largest image a _url record may fetch, in MiB (default 20)",
    )

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    p = user.add_parser(
        "create", aliases=["add"], help="create a user (with its Default workspace)"
    )
    _common(p)
    p.add_argument("name")
    _password_options(p, optional=True)
    p = user.add_parser(
        "set-password", help="set a user's password for the web interface (asked twice)"
    )
    _common(p)
    p.add_argument("name")
    _password_options(p, optional=False)
    p = user.add_parser("list", help="list users")
    _common(p)

    token = sub.add_parser("token", help="manage API tokens").add_subparsers(
        dest="action", required=True
    )
    p = token.add_parser("create", help="create a token for a user and print it (once)")
    _common(p)
    p.add_argument("user")
    p.add_argument("--name", default="", help="a note to recognise the token by")
    p = token.add_parser("list", help="list a user's tokens (ids and names, never the tokens)")
    _common(p)
    p.add_argument("user")
    p = token.add_parser("revoke", help="revoke a token by its id")
    _common(p)
    p.add_argument("token_id")

    ws = sub.add_parser("workspace", help="manage workspaces").add_subparsers(
        dest="action", required=True
    )
    p = ws.add_parser("create", help="create a workspace for a user")
    _common(p)
    p.add_argument("name")
    p.add_argument("--user", required=True)
    p = ws.add_parser("list", help="list a user's workspaces")
    _common(p)
    p.add_argument("--user", required=True)

    worker = sub.add_parser("worker", help="run the training worker (serve starts one itself)")
    _common(worker)
    _backend_choice(worker)
    worker.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    worker.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    cli_data.add_parsers(sub, _common)
    add_examples(parser)
    return parser


def _password_options(parser: argparse.ArgumentParser, *, optional: bool) -> None:
    # Never the password itself on the command line: other users see it in `ps`.
    if optional:
        parser.add_argument(
            "--ask-password",
            action="store_true",
            help="ask for a password for the web interface (twice, not echoed)",
        )
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead",
    )


def _read_password(args: argparse.Namespace) -> str | None:
    """The new password the options ask for (None: none asked for). Raises
    AccountError when it will not do; never shows it."""
    import getpass

    from .passwords import password_problem

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif getattr(args, "ask_password", True):
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise accounts.AccountError("the two passwords differ; nothing was changed")
    else:
        return None
    problem = password_problem(password)
    if problem:
        raise accounts.AccountError(f"{problem}; nothing was changed")
    return password


def _set_password_command(db: Database, args: argparse.Namespace) -> None:
    if accounts.sign_in_record(db, args.name) is None:  # before asking for a password
        raise accounts.AccountError(f"no user named {args.name!r}")
    password = _read_password(args)
    if password is None:  # pragma: no cover - set-password always reads one
        raise AssertionError(args)
    _set_password(db, args.name, password)
    print(f"set the web interface password of {args.name!r}; their web sessions ended")


def _set_password(db: Database, username: str, password: str) -> None:
    from .passwords import hash_password

    accounts.set_password(db, username, hash_password(password))


def _settings(args: argparse.Namespace) -> Settings:
    data = args.data if args.data is not None else default_data_dir()
    url = args.database_url if args.database_url is not None else default_database_url()
    kwargs: dict[str, Any] = {"data_dir": data, "database_url": url}
    if args.command in ("serve", "worker"):
        kwargs.update(
            feature_backend=args.backend,
            torch_threads=args.threads,
            min_images_per_label=args.min_images_per_label,
            train_delay=args.train_delay,
        )
    if args.command == "serve":
        kwargs.update(
            max_body_bytes=args.max_body_mb,
            resize_to=args.resize_to,
            thumb_size=args.thumb_size,
            page_size_default=args.page_size,
            page_size_max=args.max_page_size,
            rate_limit=args.rate_limit,
            fail_every=args.fail_every,
            latency_ms=args.latency_ms,
            sqlite_synchronous=args.sqlite_synchronous,
            inline_fsync_ms=args.inline_fsync_ms,
            auth_cache_seconds=args.auth_cache_seconds,
            classify_max_records=args.classify_max_records,
            allow_private_urls=args.allow_private_urls,
            url_timeout=args.url_timeout,
            url_max_bytes=args.url_max_mb,
        )
        if args.max_image_pixels is not None:
            kwargs["max_image_pixels"] = args.max_image_pixels
    return Settings(**kwargs)


def _init_command(args: argparse.Namespace) -> int:
    settings = _settings(args)
    existed = datadir.exists(settings)
    datadir.make_private(settings)
    datadir.database(settings, create=True).dispose()
    where = "the database of --database-url" if settings.database_url else settings.data_dir
    print(f"localrepo-server data {'already in' if existed else 'created in'} {where}")
    return 0


def _serve_command(args: argparse.Namespace) -> int:
    settings = _settings(args)
    problem = _serve_settings_problem(settings)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from .serving import serve

    return serve(args, settings)


def _serve_settings_problem(settings: Settings) -> str | None:
    if settings.resize_to < 16 or settings.thumb_size < 16:
        return "--resize-to and --thumb-size must be at least 16"
    if not (1 <= settings.page_size_default <= settings.page_size_max):
        return "need 1 <= --page-size <= --max-page-size"
    return _ml_settings_problem(settings)


def _ml_settings_problem(settings: Settings) -> str | None:
    from .ml.features import PRETRAINED, pretrained_installed

    if settings.min_images_per_label < 1:
        return "--min-images-per-label must be at least 1"
    if settings.classify_max_records < 1:
        return "--classify-max-records must be at least 1"
    if settings.feature_backend == PRETRAINED and not pretrained_installed():
        return (
            f"--backend {PRETRAINED} needs the 'ml' extra: pip install 'localrepo[ml]' "
            "(or use --backend auto or handcrafted)"
        )
    return None


def _worker_command(args: argparse.Namespace) -> int:
    from .data import training
    from .ml.features import Backends
    from .ml.worker import main_loop

    logging.basicConfig(
        level=args.log_level.upper(), format="%(levelname)s:     worker: %(message)s"
    )
    settings = _settings(args)
    problem = _ml_settings_problem(settings)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    db = datadir.database(settings)  # serve made it before starting this worker
    if args.parent_pid is None:
        training.requeue_running(db)
    backends = Backends(settings.feature_backend, settings.torch_threads)
    return main_loop(
        db,
        settings.blobs_dir,
        backends,
        settings.min_images_per_label,
        args.parent_pid,
        settings.train_delay,
    )


def _accounts_command(args: argparse.Namespace) -> int:
    settings = _settings(args)
    db = datadir.database(settings)
    try:
        if args.command == "user" and args.action in ("create", "add"):
            password = _read_password(args)
            user = accounts.create_user(db, args.name)
            print(f"created user {user.username!r} (id {user.id}) with workspace 'Default'")
            if password is not None:
                _set_password(db, args.name, password)
                print(f"set the web interface password of {args.name!r}")
        elif args.command == "user" and args.action == "set-password":
            _set_password_command(db, args)
        elif args.command == "user" and args.action == "list":
            for user in accounts.list_users(db):
                print(f"{user.id}  {user.username}  {user.created}")
        elif args.command == "token" and args.action == "create":
            new = accounts.create_token(db, args.user, args.name)
            print(
                f"token for {new.username!r} (id {new.id}); it is shown only this once:",
                file=sys.stderr,
            )
            print(new.token)
        elif args.command == "token" and args.action == "list":
            for tok in accounts.list_tokens(db, args.user):
                print(f"{tok.id}  {tok.created}  {tok.name}")
        elif args.command == "token" and args.action == "revoke":
            accounts.revoke_token(db, args.token_id)
            print(f"revoked token {args.token_id}")
        elif args.command == "workspace" and args.action == "create":
            ws = accounts.create_workspace(db, args.name, args.user)
            print(f"created workspace {ws.name!r} for {args.user!r}: {ws.id}")
        elif args.command == "workspace" and args.action == "list":
            for w in accounts.list_workspaces(db, args.user):
                flag = "  (default)" if w.is_default else ""
                print(f"{w.id}  {w.name}{flag}")
        else:  # pragma: no cover - argparse only lets known actions through
            raise AssertionError(args)
    except accounts.AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve_command(args)
        if args.command == "init":
            return _init_command(args)
        if args.command == "worker":
            return _worker_command(args)
        if args.command in cli_data.COMMANDS:
            return cli_data.run(args, _settings(args))
        return _accounts_command(args)
    except datadir.NoDatabase as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
