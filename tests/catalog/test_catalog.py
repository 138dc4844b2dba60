"""Acceptance tests for the catalog: schema = models, revision checks, pragmas, concurrency."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.treebuilder import new_repo, run_repo, write_image

from localrepo.catalog import db as catalog_db
from localrepo.catalog import migrate, schema
from localrepo.catalog.db import catalog_path, connect, transaction
from localrepo.errors import CatalogVersionError


def _catalog_metadata():
    """The catalog's tables only: SQLModel.metadata is process-wide, and the server's
    models register their tables on it too when a test imported them."""
    from sqlalchemy import MetaData
    from sqlmodel import SQLModel

    from localrepo.catalog import models

    md = MetaData()
    for obj in vars(models).values():
        if (
            isinstance(obj, type)
            and issubclass(obj, SQLModel)
            and obj.__module__ == models.__name__
            and hasattr(obj, "__table__")
        ):
            obj.__table__.to_metadata(md)
    return md


def test_upgrade_head_on_an_empty_file_gives_exactly_the_models_schema(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine, inspect

    metadata = _catalog_metadata()
    assert {"task", "label", "image", "file", "image_label", "journal"} <= set(metadata.tables)

    path = tmp_path / "catalog.db"
    path.touch()  # an empty file, as a fresh `repo init` would see
    catalog_db.upgrade(path)

    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            mc = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(mc, metadata)
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert diff == [], f"schema drift between the models and the migrations: {diff}"
    assert tables == set(metadata.tables) | {"alembic_version"}
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (schema.HEAD_REVISION,)
        ]
        # compare_metadata does not see table options: WITHOUT ROWID, checked here.
        for name, table in metadata.tables.items():
            sql = raw.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()
            without_rowid = table.dialect_options["sqlite"].get("with_rowid") is False
            assert ("WITHOUT ROWID" in sql[0].upper()) == without_rowid, name
    finally:
        raw.close()


def test_a_revision_3_catalog_keeps_its_labels_when_image_label_is_rebuilt(
    tmp_path: Path,
) -> None:
    from alembic import command

    from localrepo.catalog.migrate import alembic_config

    db_path = tmp_path / "catalog.db"
    command.upgrade(alembic_config(db_path), "0003_fewer_indexes")
    raw = sqlite3.connect(db_path)
    raw.execute("PRAGMA foreign_keys = ON")
    raw.execute(
        "INSERT INTO task(id, name, type, root, created_ns) VALUES (1, 't', 'regression', '', 0)"
    )
    raw.execute("INSERT INTO label(id, name, type) VALUES (1, 'size', 'value'), (2, 'b', 'value')")
    raw.executemany(
        "INSERT INTO image(id, hash, size, created_here) VALUES (?, ?, 10, 0)",
        [(i, f"h{i}") for i in (1, 2)],
    )
    rows = [("local", 1, 1, 1, 2.5), ("remote", 1, 1, 1, 3.0), ("local", 1, 2, 2, None)]
    raw.executemany("INSERT INTO image_label VALUES (?,?,?,?,?)", rows)
    raw.commit()
    raw.close()
    conn = connect(db_path)  # upgrades to head
    try:
        assert catalog_db.current_revision(conn) == schema.HEAD_REVISION
        assert sorted(conn.execute("SELECT * FROM image_label")) == sorted(rows)
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'image_label'").fetchone()
        assert "WITHOUT ROWID" in sql[0].upper()
        conn.execute("DELETE FROM image WHERE id = 1")  # the cascade still works
        assert list(conn.execute("SELECT image_id FROM image_label")) == [(2,)]
    finally:
        conn.close()


def test_known_revisions_equal_the_shipped_scripts() -> None:
    scripts = migrate.script_revisions()
    assert scripts, "no migration scripts found"
    assert list(schema.KNOWN_REVISIONS) == scripts
    assert scripts[-1] == schema.HEAD_REVISION


def _set_revision(root: Path, rev: str) -> None:
    raw = sqlite3.connect(catalog_path(root))
    try:
        raw.execute("UPDATE alembic_version SET version_num = ?", (rev,))
        raw.commit()
    finally:
        raw.close()


def test_a_catalog_from_a_newer_schema_is_refused_by_connect(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "r")
    _set_revision(root, "0999_from_the_future")
    with pytest.raises(CatalogVersionError) as info:
        connect(catalog_path(root))
    msg = str(info.value)
    assert "0999_from_the_future" in msg
    assert "Upgrade localrepo" in msg
    # Refused, not "upgraded" or rewritten.
    raw = sqlite3.connect(catalog_path(root))
    assert raw.execute("SELECT version_num FROM alembic_version").fetchone() == (
        "0999_from_the_future",
    )
    raw.close()


@pytest.mark.parametrize("command", [["status"], ["scan"], ["log"]])
def test_a_catalog_from_a_newer_schema_is_refused_by_the_cli(
    tmp_path: Path, command: list[str]
) -> None:
    root = new_repo(tmp_path / "r")
    write_image(root, "dog/a.jpg", 1)
    _set_revision(root, "0999_from_the_future")
    proc = run_repo("-C", str(root), *command)
    assert proc.returncode == 1
    assert "0999_from_the_future" in proc.stderr
    assert "upgrade localrepo" in proc.stderr.lower()
    assert proc.stdout == ""


def test_an_uninitialised_or_foreign_file_is_refused_clearly(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(Exception, match="no schema version"):
        connect(empty)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all, just text" * 100)
    with pytest.raises(Exception, match="not a localrepo catalog"):
        connect(junk)


def test_every_connection_has_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "r")
    conn = connect(catalog_path(root))
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
        # foreign keys are really enforced
        with pytest.raises(sqlite3.IntegrityError), transaction(conn):
            conn.execute(
                "INSERT INTO task_label(state, task_id, label_id) VALUES ('local', 999, 999)"
            )
    finally:
        conn.close()

    engine = catalog_db.make_engine(catalog_path(root))
    try:
        with engine.connect() as sa_conn:
            assert sa_conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert sa_conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert sa_conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    finally:
        engine.dispose()


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "r")
    conn = connect(catalog_path(root))
    try:
        with pytest.raises(RuntimeError), transaction(conn):
            conn.execute("INSERT INTO repo_meta(key, value) VALUES ('x', 'y')")
            raise RuntimeError("boom")
        assert conn.execute("SELECT COUNT(*) FROM repo_meta WHERE key = 'x'").fetchone()[0] == 0
        assert not conn.in_transaction
    finally:
        conn.close()


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from localrepo.catalog.db import connect, transaction
    path, tag, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    # Start together so that the writers really overlap.
    while not Path(sys.argv[4]).exists():
        time.sleep(0.001)
    conn = connect(path)
    for i in range(n):
        with transaction(conn):
            conn.execute(
                "INSERT INTO repo_meta(key, value) VALUES (?, ?)", (f"{tag}-{i}", "x")
            )
            # Read-modify-write inside the transaction: lost updates would show.
            row = conn.execute("SELECT value FROM repo_meta WHERE key = 'counter'").fetchone()
            value = int(row[0]) if row else 0
            conn.execute(
                "INSERT INTO repo_meta(key, value) VALUES ('counter', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(value + 1),),
            )
            if i % 10 == 0:
                time.sleep(0.002)  # hold the write lock a little
    conn.close()
    print("done", tag)
    """
)


def test_two_processes_writing_at_once_never_see_database_is_locked(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "r")
    go = tmp_path / "go"
    n = 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(catalog_path(root)), tag, str(n), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b", "c")
    ]
    go.touch()
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert "database is locked" not in err
        assert code == 0, err
        assert out.startswith("done")
    conn = connect(catalog_path(root))
    try:
        keys = {r[0] for r in conn.execute("SELECT key FROM repo_meta")}
        counter = conn.execute("SELECT value FROM repo_meta WHERE key = 'counter'").fetchone()[0]
    finally:
        conn.close()
    for tag in ("a", "b", "c"):
        assert {f"{tag}-{i}" for i in range(n)} <= keys
    assert int(counter) == 3 * n  # no lost update: every write transaction was serialised


def test_two_concurrent_repo_scans_on_one_repo_both_succeed_and_journal_once(
    tmp_path: Path,
) -> None:
    from collections import Counter

    from support.treebuilder import files, image_labels, journal

    root = new_repo(tmp_path / "r")
    hashes = {}
    for i in range(60):
        hashes[f"l{i % 4}/img{i}.jpg"] = write_image(root, f"l{i % 4}/img{i}.jpg", i)
    cmd = [sys.executable, "-m", "localrepo", "-C", str(root), "scan"]
    for _round in range(2):
        procs = [
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        for p in procs:
            _out, err = p.communicate(timeout=120)
            assert "database is locked" not in err
            assert "Traceback" not in err, err
            assert p.returncode == 0, err
        # the catalog is whole after both...
        catalogued = files(root)
        assert {p: h for p, (h, _r) in catalogued.items()} == hashes
        labels = image_labels(root)
        assert {h: set(v) for (_t, h), v in labels.items()} == {
            h: {p.split("/")[0]} for p, h in hashes.items()
        }
        # ...and each change is journalled once, not once per scan
        added = Counter(p for kind, p, _old in journal(root) if kind == "added")
        assert added == Counter(set(hashes))
        hashes["l9/extra.jpg"] = write_image(root, "l9/extra.jpg", 999)


def test_a_catalog_of_the_first_schema_is_upgraded_and_rehashed_once(tmp_path: Path) -> None:
    """An older catalog is upgraded in place when opened (Alembic, batch mode); the new
    stat signature starts at 0, so each file is hashed once more and then never again."""
    import os

    from alembic import command
    from support.imagegen import image_bytes

    from localrepo.catalog.migrate import alembic_config
    from localrepo.scan.hashing import hash_bytes
    from localrepo.scan.scanner import Scanner

    root = tmp_path / "r"
    (root / ".localrepo").mkdir(parents=True)
    (root / "dog").mkdir()
    img = root / "dog" / "a.jpg"
    img.write_bytes(image_bytes(1))
    os.utime(img, (1_000_000_000, 1_000_000_000))
    db_path = root / ".localrepo" / "catalog.db"
    command.upgrade(alembic_config(db_path), "0001_initial")
    st = img.stat()
    raw = sqlite3.connect(db_path)
    raw.execute("INSERT INTO task(name, type, root, created_ns) VALUES ('t', 'multi_class', '', 0)")
    raw.execute(  # the file as a scan of the first schema left it
        "INSERT INTO image(id, hash, size, created_here) VALUES (1, ?, ?, 0)",
        (hash_bytes(img.read_bytes()), st.st_size),
    )
    raw.execute(
        "INSERT INTO file(path, image_id, dev, inode, size, mtime_ns, ctime_ns, cached_ns)"
        " VALUES ('dog/a.jpg', 1, ?, ?, ?, ?, ?, ?)",
        (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, 2 * 10**18),
    )
    raw.commit()
    raw.close()
    conn = connect(db_path)  # upgrades to head
    assert catalog_db.current_revision(conn) == schema.HEAD_REVISION
    assert conn.execute("SELECT stat_sig FROM file").fetchone() == (0,)
    first = Scanner(root, conn).scan()
    # Re-hashed, and the same bytes: no file change (the labels are derived afresh, as
    # this hand-made catalog had none).
    assert first.hashed == 1
    assert not [c for c in first.changes if c.kind in ("added", "modified", "moved", "deleted")]
    assert Scanner(root, conn).scan().hashed == 0
    conn.close()


def test_differing_image_labels_reads_only_the_images_whose_states_differ(tmp_path: Path) -> None:
    """`repo status` reads the synced and local labels of changed images only."""
    from localrepo.catalog.labels import (
        differ_args,
        differing_image_ids,
        image_labels_in,
        set_image_labels,
    )
    from localrepo.catalog.sides import LOCAL, SYNCED

    root = new_repo(tmp_path / "r")
    conn = connect(catalog_path(root))
    with transaction(conn):
        ids = {}
        for n, digest in enumerate(("a" * 32, "b" * 32, "c" * 32, "d" * 32, "e" * 32), 1):
            conn.execute(
                "INSERT INTO image(id, hash, size, width, height, format, created_here)"
                " VALUES (?, ?, 1, 1, 1, 'PNG', 0)",
                (n, digest),
            )
            ids[digest[0]] = n
        states = {  # image: (synced, local)
            "a": ({"cat": None}, {"cat": None}),  # unchanged
            "b": ({"cat": None}, {"dog": None}),  # relabelled
            "c": ({"age": 3.0}, {"age": 4.0}),  # value changed
            "d": ({}, {"cat": None}),  # new
            "e": ({"age": None, "cat": None}, {"cat": None}),  # a tag dropped (NULL values)
        }
        for name, (synced, local) in states.items():
            for state, labels in ((SYNCED, synced), (LOCAL, local)):
                set_image_labels(conn, state, 1, ids[name], labels, "category", {})
    ids = [
        r[0] for r in conn.execute(differing_image_ids(False), differ_args(1, SYNCED, LOCAL, False))
    ]
    base, local = image_labels_in(conn, 1, SYNCED, LOCAL, ids)
    conn.close()
    assert base == {
        "b" * 32: {"cat": None},
        "c" * 32: {"age": 3.0},
        "e" * 32: {"age": None, "cat": None},
    }
    assert local == {
        "b" * 32: {"dog": None},
        "c" * 32: {"age": 4.0},
        "d" * 32: {"cat": None},
        "e" * 32: {"cat": None},
    }
