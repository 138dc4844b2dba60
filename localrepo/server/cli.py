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
import os
import sys
from pathlib import Path
from typing import Any

from . import cli_accounts, cli_data, datadir
from .cli_examples import add_examples
from .cliargs import megabytes, positive_seconds, rate
from .config import (
    COMPAT_MIN_IMAGES,
    ENV_DATA,
    Settings,
    default_data_dir,
    default_database_url,
)
from .data import accounts
from .data.storage import (
    ENV_STORAGE,
    StorageUnavailable,
    StorageURLError,
    parse_storage_url,
)
from .ml.workerids import REQUEUE_EVERY_SECONDS


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


# -- object storage (docs/server.md, "Object storage"): the commands that open the blobs --


def _storage_option(parser: argparse.ArgumentParser, media: bool = False) -> None:
    parser.add_argument(
        "--storage",
        default=None,
        metavar="URL",
        help="where the image files live: 'local' (the data folder) or s3://BUCKET/PREFIX"
        "?endpoint=URL&region=NAME, credentials from AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY (default: $LOCALREPO_STORAGE, else local)",
    )
    if media:
        parser.add_argument(
            "--media",
            choices=["proxy", "redirect"],
            default="proxy",
            help="serve image files through the server (proxy) or answer with a "
            "short-lived presigned URL of the bucket (redirect: s3 storage only)",
        )


def _common_with_storage(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    _storage_option(parser)


def _storage_settings(args: argparse.Namespace) -> dict[str, Any]:
    if not hasattr(args, "storage"):
        return {}
    url = args.storage if args.storage is not None else os.environ.get(ENV_STORAGE, "")
    parse_storage_url(url)  # StorageURLError: main() prints it
    return {"storage_url": url, "media_mode": getattr(args, "media", "proxy")}


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
        "--compat",
        choices=sorted(COMPAT_MIN_IMAGES),
        default="local",
        help="defaults: 'local' (small tasks train) or 'hosted' (20 images per label, "
        "no change feed)",
    )
    parser.add_argument(
        "--train-step-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="fault injection: a training waits S seconds after each progress step "
        "(each batch of image features, the fit, the scoring)",
    )
    parser.add_argument(
        "--min-images-per-label",
        type=int,
        default=None,
        metavar="N",
        help="train/ refuses a label with fewer images (default 5; 20 with --compat hosted)",
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
        type=megabytes,
        default=32 * 1024 * 1024,
        metavar="MB",
        help="largest request body, in MiB (default 32); more answers 413",
    )
    serve.add_argument(
        "--decode-budget-mb",
        type=megabytes,
        default=512 * 1024 * 1024,
        metavar="MB",
        help="decoded pixels held at once, in MiB (default 512); more decodes wait",
    )
    serve.add_argument(
        "--decode-wait",
        type=float,
        default=30.0,
        metavar="S",
        help="how long a decode waits for the budget before answering 503 (default 30)",
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
        type=rate,
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
        help="how long a checked token is trusted without a database look-up (a token "
        "revoked by another process: at once on PostgreSQL, else after this long)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="API processes sharing the port (default 1); more than 1 needs PostgreSQL "
        "(--database-url), as SQLite serves one process",
    )
    # Set by `serve --workers N` on the API processes it starts (server/prefork.py).
    serve.add_argument("--api-process", default=None, help=argparse.SUPPRESS)
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--no-access-log", action="store_true")
    serve.add_argument(
        "--forwarded-allow-ips",
        default=None,
        help="trust X-Forwarded-* from these proxy IPs (for links behind a reverse proxy)",
    )
    _backend_choice(serve)
    _storage_option(serve, media=True)
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
        type=megabytes,
        default=20 * 1024 * 1024,
        metavar="MB",
        help="largest image a _url record may fetch, in MiB (default 20)",
    )

    cli_accounts.add_parsers(sub, _common)

    worker = sub.add_parser("worker", help="run the training worker (serve starts one itself)")
    _common_with_storage(worker)
    _backend_choice(worker)
    worker.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    worker.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    worker.add_argument(
        "--requeue-every",
        type=positive_seconds,
        default=REQUEUE_EVERY_SECONDS,
        metavar="S",
        help="look for the jobs of workers that died every S seconds "
        f"(default {REQUEUE_EVERY_SECONDS:g})",
    )
    cli_data.add_parsers(sub, _common_with_storage)
    add_examples(parser)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    data = args.data if args.data is not None else default_data_dir()
    url = args.database_url if args.database_url is not None else default_database_url()
    kwargs: dict[str, Any] = {"data_dir": data, "database_url": url, **_storage_settings(args)}
    if args.command in ("serve", "worker"):
        kwargs.update(
            feature_backend=args.backend,
            torch_threads=args.threads,
            min_images_per_label=(
                args.min_images_per_label
                if args.min_images_per_label is not None
                else COMPAT_MIN_IMAGES[args.compat]
            ),
            train_delay=args.train_delay,
            train_step_delay=args.train_step_delay,
            change_feed=args.compat != "hosted",
        )
    if args.command == "serve":
        kwargs.update(
            max_body_bytes=args.max_body_mb,
            decode_budget_bytes=args.decode_budget_mb,
            decode_wait_seconds=args.decode_wait,
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
    problem = _serve_settings_problem(settings) or _workers_problem(args.workers, settings)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from .serving import serve

    return serve(args, settings)


def _serve_settings_problem(settings: Settings) -> str | None:
    if settings.resize_to < 16 or settings.thumb_size < 16:
        return "--resize-to and --thumb-size must be at least 16"
    if not settings.decode_wait_seconds >= 0:
        return "--decode-wait must be 0 or more seconds"
    if not (1 <= settings.page_size_default <= settings.page_size_max):
        return "need 1 <= --page-size <= --max-page-size"
    if settings.media_mode == "redirect" and parse_storage_url(settings.storage_url).is_local:
        return (
            "--media redirect needs --storage s3://... (the data folder's files are served "
            "by the server itself); drop --media or use --media proxy"
        )
    return _ml_settings_problem(settings)


def _workers_problem(workers: int, settings: Settings) -> str | None:
    if workers < 1:
        return "--workers must be at least 1"
    if workers > 1 and not settings.effective_database_url.startswith("postgresql"):
        return (
            f"--workers {workers} needs PostgreSQL: give --database-url "
            "postgresql+psycopg://USER:PASSWORD@HOST/DB (SQLite, the default, serves from "
            'one process; see docs/server.md, "Several processes")'
        )
    return None


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
    from .ml.features import Backends
    from .ml.worker import main_loop, requeue_abandoned

    logging.basicConfig(
        level=args.log_level.upper(), format="%(levelname)s:     worker: %(message)s"
    )
    settings = _settings(args)
    problem = _ml_settings_problem(settings)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from .data.storage import open_storage

    db = datadir.database(settings)  # serve made it before starting this worker
    blobs = open_storage(settings, db)
    if args.parent_pid is None:
        requeue_abandoned(db)
    backends = Backends(settings.feature_backend, settings.torch_threads)
    return main_loop(
        db,
        blobs,
        backends,
        settings.min_images_per_label,
        args.parent_pid,
        settings.train_delay,
        settings.train_step_delay,
        args.requeue_every,
    )


def _accounts_command(args: argparse.Namespace) -> int:
    db = datadir.database(_settings(args))
    try:
        cli_accounts.run(db, args)
    except accounts.AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # `serve --workers N` starts its API processes with the same arguments.
    args.argv = list(sys.argv[1:] if argv is None else argv)
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
    except (datadir.NoDatabase, StorageURLError, StorageUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
