"""Engine and transactions.

SQLite (the default) runs in WAL mode with a busy timeout. Transactions are begun
explicitly: ``read()`` with a plain BEGIN, ``write()`` with BEGIN IMMEDIATE, so that a
writer takes the write lock up front and waits for it (busy timeout) instead of failing
with "database is locked" when it upgrades a read lock. Other databases (any SQLAlchemy
URL, e.g. PostgreSQL) use their normal transactions.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.expression import Executable
from sqlmodel import Session, SQLModel, create_engine, text

from ..config import Settings
from . import imagedocs, tables

# A unique constraint broke (through SQLAlchemy, or from sqlite3 on the raw fast paths).
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (IntegrityError, sqlite3.IntegrityError)


def database_full(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "database or disk is full" (SQLITE_FULL), raw or
    through SQLAlchemy."""
    inner = getattr(exc, "orig", exc)
    return isinstance(inner, sqlite3.OperationalError) and "full" in str(inner)


class DatabaseUnavailable(Exception):
    """`Database.exists` could not ask the database (its error's class is the message)."""


class Database:
    def __init__(
        self, url: str, *, sqlite_synchronous: str = "NORMAL", busy_timeout_ms: int = 10_000
    ):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
            if ":memory:" in url or url in ("sqlite://", "sqlite:///"):
                raise ValueError("an in-memory SQLite database cannot be shared; give a file")
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        # One-statement reads (auth, look-ups) need no transaction: an autocommit engine
        # skips BEGIN/ROLLBACK and the ORM session, which is most of their cost.
        self.autocommit_engine: Engine = create_engine(url, isolation_level="AUTOCOMMIT", **kwargs)
        self._sqlite_pragmas: list[str] = []
        # synchronous=FULL/EXTRA: every commit waits for an fsync (not on the event loop).
        self.commit_syncs = sqlite_synchronous.upper() in ("FULL", "EXTRA")
        self._local = threading.local()
        self._raw_connections: list[sqlite3.Connection] = []
        if self.is_sqlite:
            self._setup_sqlite(sqlite_synchronous.upper(), busy_timeout_ms)
        self._writer = self.engine.execution_options(begin_mode="IMMEDIATE")
        # What several processes share beyond rows is PostgreSQL's (advisory locks,
        # NOTIFY, the rate limits' upsert): server/prefork.py.
        self.is_postgres = self.engine.dialect.name == "postgresql"
        # SQLite has one writer at a time. Writers of this process queue on this lock
        # (woken at once) instead of polling SQLite's busy handler (which sleeps 1-100 ms
        # between tries); other processes still meet the busy timeout.
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if self.is_sqlite else contextlib.nullcontext()
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            settings.effective_database_url,
            sqlite_synchronous=settings.sqlite_synchronous,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        )

    def _setup_sqlite(self, synchronous: str, busy_timeout_ms: int) -> None:
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"invalid SQLite synchronous mode {synchronous!r}")

        self._sqlite_pragmas = [
            "PRAGMA journal_mode=WAL",
            f"PRAGMA synchronous={synchronous}",
            f"PRAGMA busy_timeout={int(busy_timeout_ms)}",
            "PRAGMA foreign_keys=ON",
        ]

        @event.listens_for(self.engine, "connect")
        @event.listens_for(self.autocommit_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control away from the sqlite3 module; see _on_begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            for pragma in self._sqlite_pragmas:
                cur.execute(pragma)
            cur.close()

        @event.listens_for(self.engine, "begin")
        def _on_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("begin_mode", "")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")

    @staticmethod
    def exists(url: str) -> bool:
        """Whether `url` names a database this server already made: for SQLite, the file
        is there (looked at without connecting, which would create it); otherwise its
        schema table is (server/cli.py refuses to make a database by accident). A
        database that cannot be asked raises `DatabaseUnavailable`."""
        from pathlib import Path

        from sqlalchemy import inspect
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import SQLAlchemyError

        try:
            parsed = make_url(url)
            if parsed.get_backend_name() == "sqlite":
                return bool(parsed.database) and Path(parsed.database).is_file()
            engine = create_engine(url, pool_pre_ping=True)
            try:
                return inspect(engine).has_table(tables.SchemaInfo.__tablename__)
            finally:
                engine.dispose()
        except SQLAlchemyError as exc:
            # The class only: the message may quote the URL, and with it a password.
            raise DatabaseUnavailable(type(exc).__name__) from None

    def create_all(self) -> None:
        SQLModel.metadata.create_all(self.engine)
        with self.write() as session:
            row = session.get(tables.SchemaInfo, "schema_version")
            if row is None:
                session.add(
                    tables.SchemaInfo(key="schema_version", value=str(tables.SCHEMA_VERSION))
                )
            elif int(row.value) > tables.SCHEMA_VERSION:
                raise RuntimeError(
                    f"the database has schema version {row.value}, newer than this "
                    f"localrepo-server ({tables.SCHEMA_VERSION}); upgrade localrepo-server"
                )
            elif int(row.value) < tables.SCHEMA_VERSION:
                # create_all made the new tables, but not what older tables lack.
                if int(row.value) < 2:
                    session.execute(text("ALTER TABLE models ADD COLUMN backend VARCHAR(64)"))
                if int(row.value) < 3:
                    session.execute(
                        text(
                            "CREATE INDEX IF NOT EXISTS ix_image_labels_image_created "
                            "ON image_labels (image_id, created, label_id)"
                        )
                    )
                if int(row.value) < 4:
                    session.execute(text("ALTER TABLE users ADD COLUMN password_hash VARCHAR(255)"))
                if int(row.value) < 5:
                    # (image_events is a new table: create_all made it.)
                    _add_column(session, "training_jobs", "progress FLOAT")
                    _add_column(session, "training_jobs", "stage VARCHAR(200)")
                if int(row.value) < 6:
                    _add_column(session, "images", "verify_count INTEGER NOT NULL DEFAULT 0")
                    # Stored without `real`, they took a default of false the hosted
                    # service does not have (docs/api.md, "Training images").
                    session.execute(text("UPDATE images SET real = TRUE"))
                # (7: image_changes and change_counters are new tables; the feed's
                # triggers are installed below, on every start.)
                row.value = str(tables.SCHEMA_VERSION)
                session.add(row)
            session.flush()
            if self.is_sqlite:
                imagedocs.install(session.connection())
            from . import changes  # (it reads through this module)

            changes.install(session.connection())

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on any exception."""
        with self._write_lock, Session(self._writer, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def write_conn(self) -> Iterator[Connection]:
        """A write transaction on a Core connection (no ORM session): for hot paths."""
        with self._write_lock, self._writer.begin() as conn:
            yield conn

    def first(self, stmt: Executable, params: dict[str, Any] | None = None) -> Sequence[Any] | None:
        """The first row of a one-statement read (autocommit)."""
        if self.is_sqlite and isinstance(stmt, TextClause):
            # sqlite3 takes the same ":name" parameters: skip SQLAlchemy's execution layer.
            cur = self._thread_connection().execute(stmt.text, params or {})
            try:
                return cur.fetchone()  # type: ignore[no-any-return]
            finally:
                cur.close()
        with self.autocommit_engine.connect() as conn:
            return conn.execute(stmt, params or {}).first()

    def ping(self) -> str | None:
        """None when the database answers a query; else its error's class name (the
        message may quote the URL, and with it a password)."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.autocommit_engine.connect() as conn:
                conn.execute(text("SELECT 1")).scalar()
        except (SQLAlchemyError, OSError) as exc:
            return type(exc).__name__
        return None

    def write_one(self, stmt: TextClause, params: dict[str, Any]) -> None:
        """One statement in its own write transaction."""
        self.write_all([(stmt, params)])

    def write_all(self, statements: Sequence[tuple[TextClause, dict[str, Any]]]) -> None:
        """A few statements in one write transaction, without the ORM (the hot insert of
        uploads: the image's row and its event)."""
        if not self.is_sqlite:
            with self.write_conn() as conn:
                for stmt, params in statements:
                    conn.execute(stmt, params)
            return
        raw = self._thread_connection()
        with self._write_lock:
            raw.execute("BEGIN IMMEDIATE")
            _finish(raw, statements)

    def try_write_all(self, statements: Sequence[tuple[TextClause, dict[str, Any]]]) -> bool:
        """``write_all`` only if it need not wait (SQLite): False, with nothing done, when
        this process or another holds the write lock. For the event loop, which must not
        block on a busy database; the caller then uses ``write_all`` in a thread."""
        if (
            not self.is_sqlite or self.commit_syncs or not self._write_lock.acquire(blocking=False)  # type: ignore[union-attr]
        ):
            return False
        try:
            raw = self._thread_connection(nowait=True)
            try:
                raw.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    return False  # another process writes
                raise
            _finish(raw, statements)
            return True
        finally:
            self._write_lock.release()  # type: ignore[union-attr]

    @contextmanager
    def sqlite_read(self) -> Iterator[sqlite3.Connection]:
        """SQLite: a read transaction (one snapshot) on this thread's reading connection,
        which never writes (see ``count``); no pool checkout, no ORM session."""
        conn = self._thread_connection(reader=True)
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("ROLLBACK")

    def count(self, conn: sqlite3.Connection, sql: str, params: dict[str, Any]) -> int:
        """``sql``'s count in a ``sqlite_read`` transaction, remembered until anything
        else is committed to the database.

        ``PRAGMA data_version`` changes, for a connection, when another connection (of
        any process) has committed since its last snapshot; the reading connection never
        writes, so an unchanged value means the database is as it was when the count was
        taken. The first statement of the transaction, it also takes the snapshot that
        the count is checked against.
        """
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        cache: dict[Any, int] | None = getattr(self._local, "counts", None)
        if cache is None or cache.get("version") != version or len(cache) > 256:
            cache = self._local.counts = {"version": version}
        key = (sql, tuple(sorted(params.items())))
        found = cache.get(key)
        if found is None:
            found = cache[key] = conn.execute(sql, params).fetchone()[0]
        return found

    def _thread_connection(
        self, *, nowait: bool = False, reader: bool = False
    ) -> sqlite3.Connection:
        """This thread's own autocommit sqlite3 connection (for the fast paths: no pool
        checkout, no SQLAlchemy layers); ``reader``: the one for ``sqlite_read`` only."""
        attr = "reader_conn" if reader else "nowait_conn" if nowait else "conn"
        conn: sqlite3.Connection | None = getattr(self._local, attr, None)
        if conn is None:
            database = self.engine.url.database
            conn = sqlite3.connect(
                database or "", isolation_level=None, check_same_thread=False, timeout=30
            )
            for pragma in self._sqlite_pragmas:
                conn.execute(pragma)
            if nowait:  # SQLITE_BUSY at once instead of the busy handler's sleeps
                conn.execute("PRAGMA busy_timeout=0")
            setattr(self._local, attr, conn)
            self._raw_connections.append(conn)
        return conn

    def dispose(self) -> None:
        self.engine.dispose()
        self.autocommit_engine.dispose()
        for conn in self._raw_connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._raw_connections.clear()


def _finish(
    raw: sqlite3.Connection, statements: Sequence[tuple[TextClause, dict[str, Any]]]
) -> None:
    """The statements, then COMMIT, in the transaction just begun (rolled back on error)."""
    try:
        for stmt, params in statements:
            raw.execute(stmt.text, params)
        raw.execute("COMMIT")
    except BaseException:
        raw.execute("ROLLBACK")
        raise


def fetch_all(conn: Connection, sql: str, params: dict[str, Any]) -> list[Sequence[Any]]:
    """All rows of ``sql`` (named ``:params``) in ``conn``'s transaction.

    On SQLite the rows come straight from the sqlite3 cursor (plain tuples): building
    SQLAlchemy rows costs more than reading them when a page has a thousand.
    """
    if conn.dialect.name == "sqlite":
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(sql, params)
            return cur.fetchall()  # type: ignore[no-any-return]
        finally:
            cur.close()
    return list(conn.execute(text(sql), params).all())


def _add_column(session: Session, table: str, definition: str) -> None:
    """``ALTER TABLE table ADD COLUMN definition`` unless the column is there already
    (a database an older server half-upgraded, or a test's downgrade)."""
    from sqlalchemy import inspect

    name = definition.split()[0]
    if name not in {c["name"] for c in inspect(session.connection()).get_columns(table)}:
        session.execute(text(f"ALTER TABLE {table} ADD COLUMN {definition}"))
