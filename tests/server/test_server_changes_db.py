"""The change feed's numbering in the database (localrepo/server/data/changes.py), on
SQLite and on a real PostgreSQL: every kind of change is noted, a schema-6 database is
upgraded, and on PostgreSQL a change committed late is never skipped by a cursor handed
out meanwhile (concurrent writers)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest
from sqlalchemy import text

from localrepo.server.data import accounts, changes, images, tables
from localrepo.server.data.db import Database

from .test_server_annotate import _image_row

BASE = "http://x/"


class _Blobs:
    """No bytes in these tests: images are rows only."""

    def locked(self, _sha: str) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def remove(self, _sha: str) -> None:
        pass


def _workspace(db: Database, name: str = "u") -> tuple[str, str]:
    user = accounts.create_user(db, name)
    return user.id, accounts.list_workspaces(db, name)[0].id


def _drain(db: Database, ws: str, cursor: str, size: int = 1000) -> tuple[str, dict, set]:
    """Follow the feed to its end: (cursor, {id: doc}, removed ids), later pages winning."""
    seen: dict[str, Any] = {}
    gone: set[str] = set()
    while True:
        page = changes.change_page(db, ws, cursor, [], size, BASE)
        for doc in page.results:
            seen[doc["id"]] = doc
            gone.discard(doc["id"])
        for image_id in page.removed:
            seen.pop(image_id, None)
            gone.add(image_id)
        cursor = page.cursor
        if not page.more:
            return cursor, seen, gone


def test_every_kind_of_change_is_in_the_feed(db: Database) -> None:
    user, ws = _workspace(db)
    start = changes.change_page(db, ws, None, [], 10, BASE).cursor
    rows = [_image_row(ws, n) for n in (1, 2, 3)]
    for row in rows:
        images.insert_image(db, row, user_id=user)
    cursor, seen, gone = _drain(db, ws, start, size=2)
    assert set(seen) == {r["id"] for r in rows} and not gone
    assert changes.change_page(db, ws, cursor, [], 10, BASE).results == []

    from localrepo.server.data import labels as label_data

    label = label_data.create_label(db, ws, "cat", "category", "", None)
    images.set_label(db, ws, rows[0]["id"], label["id"], None, False, BASE, user_id=user)
    cursor, seen, _ = _drain(db, ws, cursor)
    assert [lab["name"] for lab in seen[rows[0]["id"]]["labels"]] == ["cat"]
    label_data.update_label(db, ws, label["id"], {"name": "kitten"})
    cursor, seen, _ = _drain(db, ws, cursor)
    assert [lab["name"] for lab in seen[rows[0]["id"]]["labels"]] == ["kitten"]
    images.update_image(db, ws, rows[1]["id"], {"test_image": True}, BASE, user_id=user)
    cursor, seen, _ = _drain(db, ws, cursor)
    assert set(seen) == {rows[1]["id"]} and seen[rows[1]["id"]]["test_image"] is True
    label_data.delete_label(db, ws, label["id"])
    images.delete_image(db, _Blobs(), ws, rows[2]["id"])
    cursor, seen, gone = _drain(db, ws, cursor)
    assert seen[rows[0]["id"]]["labels"] == [] and gone == {rows[2]["id"]}
    # The feed agrees with the rows: a filtered page drops what no longer matches.
    other = label_data.create_label(db, ws, "dog", "category", "", None)
    images.set_label(db, ws, rows[1]["id"], other["id"], None, False, BASE, user_id=user)
    images.update_image(db, ws, rows[0]["id"], {"test_image": True}, BASE, user_id=user)
    page = changes.change_page(db, ws, cursor, [other["id"]], 10, BASE)
    assert [d["id"] for d in page.results] == [rows[1]["id"]]
    assert page.removed == [rows[0]["id"]]


def test_a_cursor_of_another_workspace_or_past_the_counter_is_refused(db: Database) -> None:
    from localrepo.server.errors import APIError

    _, ws = _workspace(db, "a")
    _, other = _workspace(db, "b")
    mine = changes.change_page(db, ws, None, [], 10, BASE).cursor
    for cursor, status in (
        (mine, 410),  # another workspace's
        (mine.split(".")[0] + ".99", 410),
        ("nonsense", 400),
        (mine + ".x.y", 400),
    ):
        with pytest.raises(APIError) as caught:
            changes.change_page(
                db, other if status == 410 and cursor == mine else ws, cursor, [], 10, BASE
            )
        assert caught.value.status == status, cursor


def _downgrade_to_version_6(db: Database) -> None:
    with db.write() as session:
        if db.is_sqlite:
            for name in changes._SQLITE_TRIGGERS:
                session.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
        else:
            for name, table in changes._TABLE_OF.items():
                session.execute(text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
        for table in ("image_changes", "change_counters"):
            session.execute(text(f"DROP TABLE {table}"))
        session.execute(text("DELETE FROM schema_info WHERE key IN ('feed_id', 'change_feed')"))
        session.execute(text("UPDATE schema_info SET value = '6' WHERE key = 'schema_version'"))


def test_a_version_6_database_is_upgraded_and_feeds_from_then_on(db: Database) -> None:
    user, ws = _workspace(db)
    images.insert_image(db, _image_row(ws, 1), user_id=user)
    _downgrade_to_version_6(db)
    images.insert_image(db, _image_row(ws, 2), user_id=user)  # a version-6 server's write
    url = db.url
    db.dispose()
    upgraded = Database(url)
    try:
        upgraded.create_all()
        with upgraded.read() as session:
            version = session.execute(
                text("SELECT value FROM schema_info WHERE key = 'schema_version'")
            ).scalar_one()
        assert version == str(tables.SCHEMA_VERSION) == "7"
        start = changes.change_page(upgraded, ws, None, [], 10, BASE).cursor
        images.insert_image(upgraded, _image_row(ws, 3), user_id=user)
        _, seen, _ = _drain(upgraded, ws, start)
        assert set(seen) == {_image_row(ws, 3)["id"]}
    finally:
        upgraded.dispose()


def test_postgresql_a_late_commit_is_not_skipped(postgres: Any) -> None:
    """Transaction A notes a change first but commits after B: the cursor handed out
    between the two commits must still lead to A's change."""
    db = Database(str(postgres.new_database()))
    db.create_all()
    try:
        user, ws = _workspace(db)
        start = changes.change_page(db, ws, None, [], 10, BASE).cursor
        a_noted, b_done = threading.Event(), threading.Event()

        def slow_writer() -> None:
            with db.write_conn() as conn:
                row = _image_row(ws, 1)
                conn.execute(
                    text(
                        f"INSERT INTO images ({', '.join(row)}) "
                        f"VALUES ({', '.join(':' + k for k in row)})"
                    ),
                    row,
                )
                a_noted.set()
                assert b_done.wait(30)

        writer = threading.Thread(target=slow_writer)
        writer.start()
        assert a_noted.wait(30)
        images.insert_image(db, _image_row(ws, 2), user_id=user)
        between, seen, _ = _drain(db, ws, start)
        assert set(seen) == {_image_row(ws, 2)["id"]}
        b_done.set()
        writer.join(30)
        _, seen, _ = _drain(db, ws, between)
        assert set(seen) == {_image_row(ws, 1)["id"]}
    finally:
        db.dispose()


def test_postgresql_concurrent_writers_and_a_reader_miss_nothing(postgres: Any) -> None:
    db = Database(str(postgres.new_database()))
    db.create_all()
    try:
        user, ws = _workspace(db)
        cursor = changes.change_page(db, ws, None, [], 10, BASE).cursor
        known: dict[str, Any] = {}
        stop = threading.Event()

        def write(k: int) -> None:
            for n in range(k * 100, k * 100 + 25):
                images.insert_image(db, _image_row(ws, n), user_id=user)
                if n % 3 == 0:
                    images.update_image(
                        db, ws, _image_row(ws, n)["id"], {"test_image": True}, BASE, user_id=user
                    )

        writers = [threading.Thread(target=write, args=(k,)) for k in range(1, 7)]
        for w in writers:
            w.start()
        while not stop.is_set():
            if not any(w.is_alive() for w in writers):
                stop.set()  # one more read after the last commit
            cursor, seen, _ = _drain(db, ws, cursor, size=7)
            known.update(seen)
        expected = {
            _image_row(ws, n)["id"]: n % 3 == 0
            for k in range(1, 7)
            for n in range(k * 100, k * 100 + 25)
        }
        assert {i: d["test_image"] for i, d in known.items()} == expected
    finally:
        db.dispose()
