"""The change feed: which images of a workspace changed or went since a cursor
(``training-image/changes/``, docs/api.md, "Change feed"; docs/sync.md).

**What counts as a change.** Anything the listing shows of an image: its row (metadata,
flags, verifications), its label links and values, the name or type of a label it
carries; and its deletion (a tombstone). Triggers record them, in the transaction of
the change itself, whoever writes (this server, a foreign-key cascade, another
process), the way ``imagedocs`` keeps the listing's docs: ``image_changes`` holds one
row per image (the number of its last change, or its tombstone), so the table grows
with the images, not with the edits. A workspace's deletion takes its rows with it.
(``image_events`` is not reused: it misses deletions and label renames, and its
autoincrement ids become visible out of order on PostgreSQL.)

**The numbers.** Each workspace counts its changes in ``change_counters``. A reader
asks for ``seq > since``; it must never see number n+1 committed while n is still to
come, or a cursor handed out past n would skip n for good. On SQLite one transaction
writes at a time, so the trigger takes the next number on the spot and commits come in
number order. On PostgreSQL writers run concurrently: a number taken early could commit
after a later one. There a change is first written unnumbered (``seq`` NULL) and a
DEFERRED constraint trigger numbers the transaction's changes at commit, taking the
next number by updating the workspace's counter row. That row's lock is held to the
end of the commit, so the next writer gets its number only once this one is visible:
numbers become visible in order. The lock is the last one a transaction takes (at
commit, nothing after it waits on another row), so it cannot close a deadlock cycle
with the locks of the transaction's own statements; its cost is that commits of image
changes in one workspace are serialised (each holds it for its commit only). A
reader reads the counter first, then the changes up to it (PostgreSQL's READ COMMITTED
takes a snapshot per statement: the second sees all that the first's number covers).

**Cursors** are ``<tag>.<number>``: the tag is a hash of this database's feed id (made
once, kept in ``schema_info``) and the workspace, so a cursor of another workspace or
server is refused (410) instead of read against the wrong numbers, as is one past the
workspace's counter; ``restore`` gives the database a new feed id (renew_feed_id), so
no cursor of before a restore is read against the restored numbers. The caller then lists
in full. Tombstones are kept (one small row per deleted image), so no cursor of this
database expires.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..errors import APIError, field_error
from . import queries
from .db import Database, fetch_all

_ID_KEY = "feed_id"
_VERSION_KEY = "change_feed"

# -- SQLite: number at once (one writer at a time) ------------------------------------------


def _sqlite_mark(images: str, ws: str, deleted: int) -> str:
    """Bump ``ws``'s counter, then note each of ``images`` (a SELECT of ``image_id,
    workspace_id``) as changed with the new number. Nothing when ``images`` is empty
    (an image already gone: a cascade)."""
    return (
        "INSERT INTO change_counters (workspace_id, seq) "
        f"SELECT ws, 1 FROM (SELECT {ws} AS ws) WHERE ws IS NOT NULL "
        "ON CONFLICT (workspace_id) DO UPDATE SET seq = change_counters.seq + 1; "
        "INSERT INTO image_changes (image_id, workspace_id, seq, deleted) "
        "SELECT c.image_id, c.workspace_id, (SELECT seq FROM change_counters k "
        f"WHERE k.workspace_id = c.workspace_id), {deleted} FROM ({images}) c WHERE true "
        "ON CONFLICT (image_id) DO UPDATE SET seq = excluded.seq, deleted = excluded.deleted, "
        "workspace_id = excluded.workspace_id;"
    )


_OF_IMAGE = "SELECT id AS image_id, workspace_id FROM images WHERE id = {}"
_WS_OF_IMAGE = "(SELECT workspace_id FROM images WHERE id = {})"
_WITH_LABEL = (
    "SELECT il.image_id, NEW.workspace_id AS workspace_id FROM image_labels il "
    "WHERE il.label_id = NEW.id"
)
# Every column the listing shows (imagedocs._SHOWN, less the never-changed ones).
_SHOWN = "meta_data, test_image, real, verify_count, blob_sha256, media_key, extension"
_ROW = "SELECT {0}.id AS image_id, {0}.workspace_id AS workspace_id"
_SQLITE_TRIGGERS = {
    "change_image_insert": (
        f"AFTER INSERT ON images BEGIN {_sqlite_mark(_ROW.format('NEW'), 'NEW.workspace_id', 0)} END"
    ),
    "change_image_update": (
        f"AFTER UPDATE OF {_SHOWN} ON images BEGIN "
        f"{_sqlite_mark(_ROW.format('NEW'), 'NEW.workspace_id', 0)} END"
    ),
    "change_image_delete": (
        f"AFTER DELETE ON images BEGIN {_sqlite_mark(_ROW.format('OLD'), 'OLD.workspace_id', 1)} END"
    ),
    **{
        f"change_link_{op.lower()}": (
            f"AFTER {op} ON image_labels BEGIN "
            + "".join(
                _sqlite_mark(
                    _OF_IMAGE.format(f"{row}.image_id"),
                    _WS_OF_IMAGE.format(f"{row}.image_id"),
                    0,
                )
                for row in rows
            )
            + " END"
        )
        for op, rows in (("INSERT", ["NEW"]), ("DELETE", ["OLD"]), ("UPDATE", ["OLD", "NEW"]))
    },
    "change_label_update": (
        f"AFTER UPDATE OF name, type ON labels BEGIN "
        f"{_sqlite_mark(_WITH_LABEL, 'NEW.workspace_id', 0)} END"
    ),
    "change_workspace_delete": (
        "AFTER DELETE ON workspaces BEGIN "
        "DELETE FROM image_changes WHERE workspace_id = OLD.id; "
        "DELETE FROM change_counters WHERE workspace_id = OLD.id; END"
    ),
}

# -- PostgreSQL: noted unnumbered, numbered at commit (see the module's docstring) -----------

_PG_FUNCTIONS = {
    "lr_note_change": """(img VARCHAR, gone BOOLEAN) RETURNS void AS $$
BEGIN
  INSERT INTO image_changes (image_id, workspace_id, seq, deleted)
    SELECT i.id, i.workspace_id, NULL, gone FROM images i WHERE i.id = img
  ON CONFLICT (image_id) DO UPDATE SET seq = NULL, deleted = EXCLUDED.deleted,
    workspace_id = EXCLUDED.workspace_id;
END $$ LANGUAGE plpgsql""",
    "lr_image_changed": """() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO image_changes (image_id, workspace_id, seq, deleted)
      VALUES (OLD.id, OLD.workspace_id, NULL, TRUE)
    ON CONFLICT (image_id) DO UPDATE SET seq = NULL, deleted = TRUE,
      workspace_id = EXCLUDED.workspace_id;
  ELSE
    PERFORM lr_note_change(NEW.id, FALSE);
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
    "lr_link_changed": """() RETURNS trigger AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN PERFORM lr_note_change(OLD.image_id, FALSE); END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN PERFORM lr_note_change(NEW.image_id, FALSE); END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
    "lr_label_changed": """() RETURNS trigger AS $$
BEGIN
  PERFORM lr_note_change(il.image_id, FALSE) FROM image_labels il WHERE il.label_id = NEW.id;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
    "lr_workspace_gone": """() RETURNS trigger AS $$
BEGIN
  DELETE FROM image_changes WHERE workspace_id = OLD.id;
  DELETE FROM change_counters WHERE workspace_id = OLD.id;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
    # Deferred: at commit. The first of the transaction's rows numbers them all (one
    # number per workspace and transaction); the others find theirs numbered.
    "lr_number_changes": """() RETURNS trigger AS $$
DECLARE n BIGINT;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM image_changes WHERE image_id = NEW.image_id AND seq IS NULL)
  THEN RETURN NULL; END IF;
  INSERT INTO change_counters (workspace_id, seq) VALUES (NEW.workspace_id, 1)
  ON CONFLICT (workspace_id) DO UPDATE SET seq = change_counters.seq + 1 RETURNING seq INTO n;
  UPDATE image_changes SET seq = n WHERE workspace_id = NEW.workspace_id AND seq IS NULL;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
}
_PG_TRIGGERS = {
    "change_image": f"AFTER INSERT OR DELETE OR UPDATE OF {_SHOWN} ON images "
    "FOR EACH ROW EXECUTE FUNCTION lr_image_changed()",
    "change_link": "AFTER INSERT OR DELETE OR UPDATE ON image_labels "
    "FOR EACH ROW EXECUTE FUNCTION lr_link_changed()",
    "change_label": "AFTER UPDATE OF name, type ON labels "
    "FOR EACH ROW EXECUTE FUNCTION lr_label_changed()",
    "change_workspace": "AFTER DELETE ON workspaces "
    "FOR EACH ROW EXECUTE FUNCTION lr_workspace_gone()",
}
_PG_NUMBERING = (
    "CREATE CONSTRAINT TRIGGER change_numbering AFTER INSERT OR UPDATE ON image_changes "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.seq IS NULL) "
    "EXECUTE FUNCTION lr_number_changes()"
)
_TABLE_OF = {
    "change_image": "images",
    "change_link": "image_labels",
    "change_label": "labels",
    "change_workspace": "workspaces",
    "change_numbering": "image_changes",
}
VERSION = hashlib.sha256(
    repr(
        (
            sorted(_SQLITE_TRIGGERS.items()),
            sorted(_PG_FUNCTIONS.items()),
            _PG_TRIGGERS,
            _PG_NUMBERING,
        )
    ).encode()
).hexdigest()[:16]


def install(conn: Connection) -> None:
    """The triggers (again when their definition changed), and this database's feed id
    when it has none; in the caller's write transaction (on every start)."""
    if _meta(conn, _ID_KEY) is None:
        _set_meta(conn, _ID_KEY, uuid.uuid4().hex)
    if _meta(conn, _VERSION_KEY) == VERSION and _present(conn):
        return
    if conn.dialect.name == "sqlite":
        for name, body in _SQLITE_TRIGGERS.items():
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE TRIGGER {name} {body}")
    else:
        for name, table in _TABLE_OF.items():
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        for name, body in _PG_FUNCTIONS.items():
            conn.exec_driver_sql(f"CREATE OR REPLACE FUNCTION {name}{body}")
        for name, body in _PG_TRIGGERS.items():
            conn.exec_driver_sql(f"CREATE TRIGGER {name} {body}")
        conn.exec_driver_sql(_PG_NUMBERING)
    _set_meta(conn, _VERSION_KEY, VERSION)


def renew_feed_id(db: Database) -> None:
    """A new feed id: every cursor handed out before is refused (410), and its client
    lists in full. For a restored database: its counters went back to the backup's, and
    a client's newer cursor would soon be "valid" again and skip what changed in
    between."""
    with db.write() as session:
        _set_meta(session.connection(), _ID_KEY, uuid.uuid4().hex)


def _present(conn: Connection) -> bool:
    """Whether every trigger is there (one dropped by hand is made again)."""
    if conn.dialect.name == "sqlite":
        names = list(_SQLITE_TRIGGERS)
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN "
    else:
        names = list(_TABLE_OF)
        sql = "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgname IN "
    found = conn.exec_driver_sql(sql + "(" + ", ".join(f"'{n}'" for n in names) + ")").scalar()
    return found == len(names)


def _meta(conn: Connection, key: str) -> str | None:
    found = conn.execute(text("SELECT value FROM schema_info WHERE key = :k"), {"k": key}).scalar()
    return None if found is None else str(found)


def _set_meta(conn: Connection, key: str, value: str) -> None:
    conn.execute(text("DELETE FROM schema_info WHERE key = :k"), {"k": key})
    conn.execute(
        text("INSERT INTO schema_info (key, value) VALUES (:k, :v)"), {"k": key, "v": value}
    )


# -- reading -------------------------------------------------------------------------------

# <tag>.<number>, or mid-number (a page ended inside one transaction's changes)
# <tag>.<number>.<the last image id answered>.
_CURSOR = re.compile(r"^([0-9a-f]{16})\.([0-9]{1,18})(?:\.([0-9a-f-]{1,36}))?$")
STALE = (
    "This cursor is not one of this workspace on this server (another workspace, another "
    "server, or a database restored from a backup). List the images in full "
    "(training-image/) and start again from the cursor this endpoint answers without since."
)


@dataclass(frozen=True)
class ChangePage:
    """One page of the feed: the images that changed and match the filter (as the
    listing shows them), the ids of those that went or no longer match, the cursor to
    ask from next, and whether more changes wait past it."""

    cursor: str
    more: bool
    results: list[dict[str, Any]]
    removed: list[str]


def _tag(feed_id: str, ws: str) -> str:
    return hashlib.sha256(f"{feed_id}:{ws}".encode()).hexdigest()[:16]


def _since(since: str | None, tag: str, counter: int) -> tuple[int, str] | None:
    """The position a cursor stands for: (number, last image id answered of it, "" for
    all); None when no cursor is given. 400 for a malformed one, 410 for one not of
    this workspace and database."""
    if since is None:
        return None
    match = _CURSOR.match(since)
    if match is None:
        raise field_error("since", "Not a cursor of this endpoint; omit it to get one.")
    number = int(match.group(2))
    if match.group(1) != tag or number > counter:
        raise APIError(410, {"detail": STALE})
    return number, match.group(3) or ""


def change_page(
    db: Database,
    ws: str,
    since: str | None,
    labels: Sequence[str],
    size: int,
    media_base: str,
) -> ChangePage:
    """The workspace's changes after ``since`` (at most ``size`` of them), keeping the
    images that carry any of ``labels`` (all images when empty). Without ``since``:
    no changes, only the cursor of now (to take before a full listing)."""
    with db.read() as session:
        conn = session.connection()
        tag = _tag(_meta(conn, _ID_KEY) or "", ws)
        counter = conn.execute(
            text("SELECT seq FROM change_counters WHERE workspace_id = :ws"), {"ws": ws}
        ).scalar()
        counter = int(counter or 0)
        start = _since(since, tag, counter)
        if start is None or start == (counter, ""):
            return ChangePage(f"{tag}.{counter}", False, [], [])
        after = (
            "(seq > :since OR (seq = :since AND image_id > :after))" if start[1] else "seq > :since"
        )
        rows = fetch_all(
            conn,
            f"SELECT image_id, seq, deleted FROM image_changes WHERE workspace_id = :ws AND {after} "
            "AND seq <= :upto ORDER BY seq, image_id LIMIT :lim",
            {"ws": ws, "since": start[0], "after": start[1], "upto": counter, "lim": size + 1},
        )
        more = len(rows) > size
        rows = rows[:size]
        # Past the page's last change when more wait; else all up to the counter read.
        cursor = f"{tag}.{rows[-1][1]}.{rows[-1][0]}" if more else f"{tag}.{counter}"
        alive = [str(r[0]) for r in rows if not r[2]]
        found = _images(conn, ws, alive, media_base)
    wanted = set(labels)
    results, removed = [], [str(r[0]) for r in rows if r[2]]
    for image_id in alive:
        doc = found.get(image_id)
        if doc is not None and (not wanted or any(lab["id"] in wanted for lab in doc["labels"])):
            results.append(doc)
        else:
            removed.append(image_id)
    return ChangePage(cursor, more, results, removed)


def _images(conn: Connection, ws: str, ids: list[str], media_base: str) -> dict[str, Any]:
    """The listing's answer for each of ``ids`` still in the workspace, by id."""
    out: dict[str, Any] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        params = {f"i{n}": image_id for n, image_id in enumerate(chunk)}
        rows = fetch_all(
            conn,
            f"SELECT {queries.IMAGE_COLUMNS} FROM images i WHERE i.workspace_id = :ws "
            f"AND i.id IN ({', '.join(':' + k for k in params)})",
            {"ws": ws, **params},
        )
        for doc in queries.image_dicts(conn, rows, media_base):
            out[doc["id"]] = doc
    return out
