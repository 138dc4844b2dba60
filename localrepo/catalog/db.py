"""Opening the catalog: SQLite in WAL mode, a busy timeout and foreign keys on every
connection, write transactions taken with BEGIN IMMEDIATE so that two writers queue on
the busy timeout instead of failing with "database is locked".

Two ways in: `connect()` gives a plain sqlite3 connection (the scanner's fast path, no
SQLAlchemy import), `make_engine()` a SQLAlchemy engine for sqlmodel sessions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localrepo.catalog.schema import HEAD_REVISION, KNOWN_REVISIONS
from localrepo.errors import CatalogVersionError, LocalrepoError
from localrepo.vocabulary import STATE_DIR

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

BUSY_TIMEOUT_MS = 60_000
CATALOG_NAME = "catalog.db"


def catalog_path(root: Path) -> Path:
    return root / STATE_DIR / CATALOG_NAME


def file_of(conn: sqlite3.Connection) -> Path:
    """The file of the connection's main database."""
    return Path(conn.execute("PRAGMA database_list").fetchone()[2])


def _apply_pragmas(conn: Any) -> None:
    cur = conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; WAL keeps it safe
    cur.execute("PRAGMA foreign_keys = ON")
    # A 16 MiB page cache: an initial scan's one transaction writes ~37 MB of rows and
    # indexes at 100,000 files, and a small cache spills them to the WAL mid-transaction
    # and reads them back (4 MiB made that scan ~20 % slower; 64 MiB gained nothing).
    cur.execute("PRAGMA cache_size = -16384")
    cur.close()


def connect(path: Path, *, check_schema: bool = True) -> sqlite3.Connection:
    """A raw connection in autocommit mode; use `transaction()` for writes."""
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    try:
        _apply_pragmas(conn)
    except sqlite3.DatabaseError as exc:  # "file is not a database": not ours, say so
        conn.close()
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise
        raise LocalrepoError(f"{path} is not a localrepo catalog ({exc}).") from exc
    if check_schema:
        check_revision(conn, path)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection, *, counts: bool = True) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front (waiting on busy_timeout).

    A transaction that changed a row moves the write epoch, which a quiet mark compares
    (catalog/quiet_marks.py). `counts=False` only for writes no plan reads: the copy of
    the remote listing and its cursor (a quiet mark compares the cursor itself), and
    the quiet marks."""
    conn.execute("BEGIN IMMEDIATE")
    start = conn.total_changes
    try:
        yield conn
        if counts and conn.total_changes != start:
            bump_epoch(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


# The row changes at the start of each connection's open `begin()` transaction.
_begun: dict[int, int] = {}


# A transaction whose extent no `with` block fits (the scanner's: opened on its first
# write, which may come from a callback while the pool hashes).
def begin(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, as `transaction()` opens it."""
    conn.execute("BEGIN IMMEDIATE")
    _begun[id(conn)] = conn.total_changes


def commit(conn: sqlite3.Connection) -> None:
    start = _begun.pop(id(conn), None)
    if start is None or conn.total_changes != start:
        bump_epoch(conn)
    conn.execute("COMMIT")


def bump_epoch(conn: sqlite3.Connection) -> None:
    """Move the write epoch: whatever a quiet mark recorded before is stale."""
    conn.execute("UPDATE write_epoch SET n = n + 1 WHERE id = 1")


def write_epoch(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT n FROM write_epoch WHERE id = 1").fetchone()
    return int(row[0]) if row else -1


def rollback(conn: sqlite3.Connection) -> None:
    _begun.pop(id(conn), None)
    conn.execute("ROLLBACK")


# Values bound in one statement at most: SQLite's limit is 999 in old builds.
IN_CHUNK = 500


def rows_in(
    conn: sqlite3.Connection, sql: str, values: Sequence[Any], before: Sequence[Any] = ()
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``sql``, whose ``{marks}`` is an ``IN`` list, over ``values`` in
    chunks of IN_CHUNK, chunk after chunk (each chunk's rows in the statement's order);
    ``before``: the values of the placeholders ahead of the list. The cursors are
    chained in C: no Python frame per row (a first status reads millions of rows)."""
    return chain.from_iterable(_cursors_in(conn, sql, values, before))


def rows_of_ids(
    conn: sqlite3.Connection,
    sql: str,
    column: str,
    ids: Sequence[int],
    before: Sequence[Any] = (),
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``sql`` for these ``ids`` (sorted), whose ``{ids}`` is the condition
    on ``column`` and whose rows start with that column: ids close together (a run of
    new images) as one range of the index, the rows of the ids between them left out,
    which reads a million rows about three times as fast as IN lists; others by IN
    lists (rows_in)."""
    if ids and ids[-1] - ids[0] < 2 * len(ids):
        wanted = set(ids)
        cur = conn.execute(
            sql.replace("{ids}", f"{column} BETWEEN ? AND ?"), (*before, ids[0], ids[-1])
        )
        return (row for row in cur if row[0] in wanted)
    return rows_in(conn, sql.replace("{ids}", f"{column} IN ({{marks}})"), ids, before)


def _cursors_in(
    conn: sqlite3.Connection, sql: str, values: Sequence[Any], before: Sequence[Any]
) -> Iterator[sqlite3.Cursor]:
    for start in range(0, len(values), IN_CHUNK):
        chunk = values[start : start + IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        yield conn.execute(sql.replace("{marks}", marks), (*before, *chunk))


def current_revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no such table: not initialised
        return None
    return row[0] if row else None


def check_revision(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse catalogs this build does not understand; upgrade older ones in place."""
    try:
        rev = current_revision(conn)
    except sqlite3.DatabaseError as exc:  # not a database at all
        raise LocalrepoError(f"{path} is not a localrepo catalog ({exc}).") from exc
    if rev == HEAD_REVISION:
        return
    if rev is None:
        raise LocalrepoError(
            f"{path} is not an initialised localrepo catalog (no schema version). "
            "Run 'repo init' in a new folder, or restore the catalog from a backup."
        )
    if rev not in KNOWN_REVISIONS:
        raise CatalogVersionError(
            f"The catalog {path} has schema revision '{rev}', which is newer than this "
            f"localrepo understands (newest known: '{HEAD_REVISION}'). Upgrade localrepo "
            "(pip install -U localrepo) to use this repository; nothing was changed."
        )
    upgrade(path)


def upgrade(path: Path) -> None:
    """Run the Alembic revisions up to head (creates the catalog when the file is new)."""
    from localrepo.catalog.migrate import upgrade_to_head

    upgrade_to_head(path)


def make_engine(path: Path) -> Engine:
    from sqlalchemy import create_engine, event

    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
        _apply_pragmas(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
