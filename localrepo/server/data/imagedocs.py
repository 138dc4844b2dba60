"""Each image's answer JSON kept ready in the database (SQLite only).

Rendering a listing page in SQL (JSON functions, and a sub-select of the labels for
every image) costs about 10 µs an image: most of a full listing's time. On SQLite the
server keeps each image's answer in the table ``image_docs`` instead, filed by
(workspace, created, image id), i.e. in listing order, and triggers render it again
whenever anything it shows changes, whoever writes (this server, a cascade, another
process): the image's row, its label links, the name or type of one of its labels. A
page then reads ready text. (A table of its own, not a column of ``images``: the rows
of ``images`` stay as small as they were for every other query.)

The media URLs depend on the request (its scheme and Host), so a doc holds the control
character ``\\x01`` where the media base goes. JSON text never contains a raw control
character (they are escaped inside strings), so a page replaces every ``\\x01`` with the
request's base, JSON-escaped (``fill_media``).

The table and triggers are checked on every start; when their definition changed (a
hash kept in ``schema_info``) or they are missing, every doc is rendered again. Other
databases do not have the table: they render in Python (``queries.image_dicts``).
"""

from __future__ import annotations

import hashlib

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection

MEDIA_MARK = b"\x01"

# One image's answer, the same object as ``queries.image_dicts`` gives (a test compares
# them), with MEDIA_MARK for the media base. ``i`` is the image row.
DOC_SQL = """'{"id":' || json_quote(i.id) || ',"created":' || json_quote(i.created)
  || ',"img_path":"' || char(1)
  || substr(json_quote(i.blob_sha256 || '/' || i.media_key || i.extension), 2)
  || ',"thumb_img_path":"' || char(1)
  || substr(json_quote(i.blob_sha256 || '/' || i.media_key || '_thumb.jpg'), 2)
  || ',' || substr(json_object(
  'img_width', i.img_width, 'img_height', i.img_height,
  'meta_data', json(i.meta_data),
  'test_image', json(CASE WHEN i.test_image THEN 'true' ELSE 'false' END),
  'real', json(CASE WHEN i.real THEN 'true' ELSE 'false' END),
  'verifyCount', i.verify_count, 'workspace', i.workspace_id,
  'labels', (SELECT json_group_array(json(x.j)) FROM (
      SELECT CASE WHEN l.type = 'value'
        THEN json_object('id', l.id, 'name', l.name, 'type', l.type, 'value', il.value)
        ELSE json_object('id', l.id, 'name', l.name, 'type', l.type) END AS j
      FROM image_labels il JOIN labels l ON l.id = il.label_id
      WHERE il.image_id = i.id ORDER BY il.created, il.label_id) x)
), 2)"""


TABLE = """CREATE TABLE image_docs (
  workspace_id VARCHAR(36) NOT NULL, created VARCHAR(32) NOT NULL, image_id VARCHAR(36) NOT NULL,
  doc TEXT NOT NULL, PRIMARY KEY (workspace_id, created, image_id)) WITHOUT ROWID"""


def _render(where: str) -> str:
    """(Re-)render the docs of the images ``i`` matching ``where``."""
    return (
        "INSERT OR REPLACE INTO image_docs (workspace_id, created, image_id, doc) "
        f"SELECT i.workspace_id, i.created, i.id, {DOC_SQL} FROM images i WHERE {where}"
    )


def _drop(row: str) -> str:
    return (
        f"DELETE FROM image_docs WHERE workspace_id = {row}.workspace_id "
        f"AND created = {row}.created AND image_id = {row}.id"
    )


# Every column a doc shows or is filed under.
_SHOWN = (
    "id, created, blob_sha256, media_key, extension, img_width, img_height, meta_data, "
    "test_image, real, verify_count, workspace_id"
)
_WITH_LABEL = "i.id IN (SELECT image_id FROM image_labels WHERE label_id = {}.id)"
TRIGGERS = {
    "image_doc_insert": f"AFTER INSERT ON images BEGIN {_render('i.id = NEW.id')}; END",
    "image_doc_update": (
        f"AFTER UPDATE OF {_SHOWN} ON images BEGIN {_drop('OLD')}; {_render('i.id = NEW.id')}; END"
    ),
    "image_doc_delete": f"AFTER DELETE ON images BEGIN {_drop('OLD')}; END",
    "image_doc_link_insert": (
        f"AFTER INSERT ON image_labels BEGIN {_render('i.id = NEW.image_id')}; END"
    ),
    "image_doc_link_delete": (
        f"AFTER DELETE ON image_labels BEGIN {_render('i.id = OLD.image_id')}; END"
    ),
    "image_doc_link_update": (
        f"AFTER UPDATE ON image_labels BEGIN {_render('i.id IN (OLD.image_id, NEW.image_id)')}; END"
    ),
    "image_doc_label_update": (
        "AFTER UPDATE OF id, name, type ON labels BEGIN "
        f"{_render(_WITH_LABEL.format('OLD'))}; {_render(_WITH_LABEL.format('NEW'))}; END"
    ),
    "image_doc_label_delete": (
        f"AFTER DELETE ON labels BEGIN {_render(_WITH_LABEL.format('OLD'))}; END"
    ),
}
VERSION = hashlib.sha256(repr((TABLE, sorted(TRIGGERS.items()))).encode()).hexdigest()[:16]
_VERSION_KEY = "image_docs"


def install(conn: Connection) -> None:
    """Create ``image_docs`` and its triggers if missing or different, and render every
    doc when they were (in the caller's write transaction)."""
    stored = conn.execute(
        text("SELECT value FROM schema_info WHERE key = :k"), {"k": _VERSION_KEY}
    ).scalar()
    present = conn.exec_driver_sql(
        "SELECT count(*) FROM sqlite_master WHERE (type = 'trigger' AND name IN ("
        + ", ".join(f"'{name}'" for name in TRIGGERS)
        + ")) OR (type = 'table' AND name = 'image_docs')"
    ).scalar()
    if stored == VERSION and present == len(TRIGGERS) + 1:
        return
    for name in TRIGGERS:
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    conn.exec_driver_sql("DROP TABLE IF EXISTS image_docs")
    conn.exec_driver_sql(TABLE)
    for name, body in TRIGGERS.items():
        conn.exec_driver_sql(f"CREATE TRIGGER {name} {body}")
    conn.exec_driver_sql(_render("1"))
    conn.execute(text("DELETE FROM schema_info WHERE key = :k"), {"k": _VERSION_KEY})
    conn.execute(
        text("INSERT INTO schema_info (key, value) VALUES (:k, :v)"),
        {"k": _VERSION_KEY, "v": VERSION},
    )


UNFILTERED = "i.workspace_id = :ws"
# How many docs, and the page's JSON array as bytes (no decoding to a str and back).
_PAGE = "SELECT count(*), CAST('[' || coalesce(group_concat(d, ','), '') || ']' AS BLOB) FROM ({})"


def _nth_image(param: str) -> str:
    return (
        "(SELECT i.created, i.id FROM images i WHERE i.workspace_id = :ws "
        f"ORDER BY i.created, i.id LIMIT 1 OFFSET :{param})"
    )


def page_sql() -> str:
    """One page of the whole workspace: how many docs, and the JSON array of the docs
    in listing order (media base not filled in). Bound: ``:ws``, ``:off``, and
    ``:last``, the offset of the page's last image (from the count).

    Read from ``image_docs``, filed in listing order, between the page's first and last
    images, found in the (much smaller) index of ``images``. A doc missing there shows
    in the count (the caller then renders the page itself).
    """
    return _PAGE.format(
        "SELECT doc AS d FROM image_docs WHERE workspace_id = :ws "
        f"AND (created, image_id) >= {_nth_image('off')} "
        f"AND (created, image_id) <= {_nth_image('last')} "
        "ORDER BY created, image_id"
    )


def page_rows_sql(cond: str) -> str:
    """The images ``i`` matching ``cond`` in listing order, a row each: created, id,
    and the doc as bytes (media base not filled in), looked up, or rendered if it has
    none. Bound: ``:lim``, ``:off``, and the parameters of ``cond``."""
    return (
        "SELECT i.created, i.id, CAST(coalesce((SELECT doc FROM image_docs x "
        "WHERE x.workspace_id = i.workspace_id AND x.created = i.created "
        f"AND x.image_id = i.id), {DOC_SQL}) AS BLOB) "
        f"FROM images i WHERE {cond} ORDER BY i.created, i.id LIMIT :lim OFFSET :off"
    )


def rendered_page_sql(cond: str) -> str:
    """``page_sql`` rendering every doc on the spot (when ``image_docs`` disagrees)."""
    return _PAGE.format(
        f"SELECT {DOC_SQL} AS d FROM images i WHERE {cond} "
        "ORDER BY i.created, i.id LIMIT :lim OFFSET :off"
    )


def fill_media(page: bytes, media_base: str) -> orjson.Fragment:
    """A page's JSON array (``page_sql``) with this request's media base."""
    return orjson.Fragment(page.replace(MEDIA_MARK, orjson.dumps(media_base)[1:-1]))
