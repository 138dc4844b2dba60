"""``localrepo-server``'s one data folder, and its refusal to make a database by
accident (docs/server.md, "The data folder").

The folder is ``--data``, else ``$LOCALREPO_SERVER_DATA``, else the per-user data folder
(config.default_data_dir). Only ``serve`` and ``init`` create a database there
(`database(..., create=True)`); every other command gets `NoDatabase` (exit 2, saying
how to start one) where there is none, so a forgotten or mistyped ``--data`` never
leaves an empty database behind.

``make_private`` (serve, init) keeps the folder to its owner: 0700, and every file this
process creates 0600 (a umask of 077), the SQLite files of an older folder included
(the blob store fixes its own files: server/fsck.py).
"""

from __future__ import annotations

import contextlib
import os

from .config import ENV_DATA, Settings, default_data_dir
from .data.db import Database, DatabaseUnavailable

_HELP = f"""\
The data folder (the SQLite database and the image files) is --data DIR, else
${ENV_DATA}, else the per-user data folder ({{default}}).
Only 'serve' and 'init' create a database there; the other commands refuse (exit 2)
when there is none, rather than making an empty one by accident."""


def help_text() -> str:
    """What ``localrepo-server --help`` says of the data folder (the default as it is
    here, the environment's if set)."""
    return _HELP.format(default=default_data_dir())


class NoDatabase(Exception):
    """There is no localrepo-server database where the settings point (exit 2)."""


def missing_message(settings: Settings) -> str:
    if settings.database_url:
        # Never the URL itself: it may hold a password.
        return (
            "the database of --database-url (or $LOCALREPO_SERVER_DATABASE_URL) has no "
            "localrepo-server tables; create them with `localrepo-server init "
            "--database-url URL` or by starting `localrepo-server serve` once"
        )
    data = settings.data_dir
    return (
        f"no localrepo-server data in {data}; start the server once with "
        f"`localrepo-server serve --data {data}` (or run `localrepo-server init --data "
        f"{data}`), or pass --data DIR (or set ${ENV_DATA}) to use another folder"
    )


def exists(settings: Settings) -> bool:
    try:
        return Database.exists(settings.effective_database_url)
    except DatabaseUnavailable as exc:
        raise NoDatabase(f"cannot open the database ({exc})") from None


def database(settings: Settings, *, create: bool = False) -> Database:
    """The settings' database; made only when `create` (serve's worker, `init`), else
    `NoDatabase` where there is none."""
    if not create and not exists(settings):
        raise NoDatabase(missing_message(settings))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database.from_settings(settings)
    db.create_all()
    return db


# SQLite's database and the files it keeps next to it (WAL mode).
_SQLITE_FILES = ("server.db", "server.db-wal", "server.db-shm")
_LOCK_FILE = "blobs.lock"  # data/storage/locks.py


def make_private(settings: Settings) -> None:
    """The data folder 0700, its SQLite files 0600, and files made from now on by this
    process (and the worker it starts) readable by their owner only."""
    os.umask(0o077)
    data = settings.data_dir
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        data.chmod(0o700)
    for name in (*_SQLITE_FILES, _LOCK_FILE):
        with contextlib.suppress(OSError):
            (data / name).chmod(0o600)
