"""The training-image listing: its filters as SQL, its pages for the API (by page
number, or by keyset through the cursor of a ``next`` link: see ``image_page``) and
the web gallery's pages."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import log
from ..pagination import After, PageRequest, check_page
from . import imagedocs, queries
from .db import Database, fetch_all

# ---- filters -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageQuery:
    """The filters of a listing, checked (ids are canonical UUIDs)."""

    labels: list[str] = field(default_factory=list)  # with any of them
    not_labels: list[str] = field(default_factory=list)  # with none of them
    # (label id, ">=" or "<=", bound): the image's value for the label within the bound
    values: list[tuple[str, str, float]] = field(default_factory=list)
    test: bool | None = None
    real: bool | None = None
    # Case-insensitive text in the image's metadata (its file name included); the web
    # gallery's search.
    text: str = ""
    # With exactly this many verifications (the API's ``verified``).
    verified: int | None = None


def _in_list(name: str, values: list[str], params: dict[str, Any]) -> str:
    """``(:name0, :name1, ...)`` with the values bound (plain named parameters work with
    every driver and need no statement rewriting)."""
    keys = [f"{name}{k}" for k in range(len(values))]
    params.update(zip(keys, values, strict=True))
    return "(" + ", ".join(":" + k for k in keys) + ")"


def _with_labels(ids: str, *, counting: bool, negated: bool) -> str:
    """The images with (``negated``: without) any of the labels ``ids`` (an SQL list).

    A page reads images in listing order and stops when it is full: each image is
    checked on its own (EXISTS). A count reads them all: the set of images with the
    labels is read once from the index of image_labels (label_id, image_id) instead,
    about 5 times faster on SQLite (docs/benchmarks.md)."""
    if counting:
        among = "NOT IN" if negated else "IN"
        return f"i.id {among} (SELECT f.image_id FROM image_labels f WHERE f.label_id IN {ids})"
    exists = "NOT EXISTS" if negated else "EXISTS"
    return (
        f"{exists} (SELECT 1 FROM image_labels f WHERE f.image_id = i.id AND f.label_id IN {ids})"
    )


def _image_filters(
    ws: str, query: ImageQuery, *, counting: bool = False
) -> tuple[str, dict[str, Any]]:
    """The SQL condition on the images ``i`` matching ``query`` and its parameters;
    ``counting``: in the form that counts them fastest (not for a page)."""
    where = ["i.workspace_id = :ws"]
    params: dict[str, Any] = {"ws": ws}
    if query.labels:
        ids = _in_list("fl", list(dict.fromkeys(query.labels))[:1000], params)
        where.append(_with_labels(ids, counting=counting, negated=False))
    if query.not_labels:
        ids = _in_list("nl", list(dict.fromkeys(query.not_labels))[:1000], params)
        where.append(_with_labels(ids, counting=counting, negated=True))
    for n, (label_id, op, number) in enumerate(query.values):
        where.append(
            f"EXISTS (SELECT 1 FROM image_labels f WHERE f.image_id = i.id "
            f"AND f.label_id = :vl{n} AND f.value {op} :vv{n})"
        )
        params[f"vl{n}"] = label_id
        params[f"vv{n}"] = number
    if query.text:
        where.append("lower(i.meta_data) LIKE :q ESCAPE '!'")
        escaped = query.text.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
        params["q"] = f"%{escaped}%"
    cond = " AND ".join(where)
    if query.test is not None:
        cond += " AND i.test_image = :test"
        params["test"] = query.test
    if query.real is not None:
        cond += " AND i.real = :real"
        params["real"] = query.real
    if query.verified is not None:
        cond += " AND i.verify_count = :verified"
        params["verified"] = query.verified
    return cond, params


def _count_sql(ws: str, query: ImageQuery) -> str:
    """How many images match ``query`` (bound: the parameters of ``_image_filters``)."""
    return f"SELECT count(*) FROM images i WHERE {_image_filters(ws, query, counting=True)[0]}"


def filters_key(ws: str, query: ImageQuery) -> str:
    """A short name of the workspace and filters of a listing (its cursors carry it)."""
    return hashlib.sha256(repr((ws, query)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ImagePage:
    """A page of a listing: the count, the results as answered, and for a page read
    by keyset (``keyset``) the (created, id) of its last image when more follow it."""

    count: int
    results: Any
    keyset: bool = False
    next_key: tuple[str, str] | None = None


# The rows after the cursor's, in listing order: the index of images (workspace, created,
# id) finds them by range (tests/server/test_server_keyset.py checks SQLite's plan).
AFTER_CURSOR = " AND (i.created, i.id) > (:after_created, :after_id)"


def image_page(
    db: Database,
    ws: str,
    query: ImageQuery,
    pr: PageRequest,
    media_base: str,
    after: After | None = None,
) -> ImagePage:
    """The page ``pr`` of the workspace's images matching ``query`` (404 past the last),
    with their count: on SQLite the ready docs of ``imagedocs`` (JSON text), elsewhere
    dicts built in Python.

    A filtered listing, or any page given a cursor ``after``, is read by keyset: the
    page fetches one image more than it answers, so whether a next page exists is known
    from the rows, not from a count. With ``after`` the page starts just after that
    image (no OFFSET: a deep page costs what the first one does) and the count is the
    cursor's, not counted again. The whole workspace without a cursor is read as before
    (cheap at any depth: ``imagedocs.page_sql``).
    """
    cond, params = _image_filters(ws, query)
    if after is None and cond == imagedocs.UNFILTERED:
        return _whole_workspace_page(db, cond, params, pr, media_base)
    count_sql = _count_sql(ws, query)
    window = {**params, "lim": pr.size + 1, "off": pr.offset}
    if after is not None:
        cond += AFTER_CURSOR
        window.update(off=0, after_created=after.created, after_id=after.id)
    if db.is_sqlite:
        with db.sqlite_read() as raw:
            count = after.count if after else db.count(raw, count_sql, params)
            if after is None:
                check_page(pr, count)
            rows = raw.execute(imagedocs.page_rows_sql(cond), window).fetchall()
        kept = rows[: pr.size]
        results = imagedocs.fill_media(b"[" + b",".join(r[2] for r in kept) + b"]", media_base)
        keys = [(r[0], r[1]) for r in kept]
    else:
        with db.read() as session:
            conn = session.connection()
            count = after.count if after else fetch_all(conn, count_sql, params)[0][0]
            if after is None:
                check_page(pr, count)
            rows = fetch_all(conn, _pg_page_sql(cond), window)
            kept = rows[: pr.size]
            # (The labels of the one image more are read too, and left out.)
            label_rows = fetch_all(conn, _pg_labels_sql(cond), window) if kept else []
            results = queries.image_dicts(conn, kept, media_base, label_rows)
        keys = [(r[1], r[0]) for r in kept]
    more = len(rows) > pr.size
    return ImagePage(count, results, keyset=True, next_key=keys[-1] if more and keys else None)


def _pg_page_sql(cond: str) -> str:
    return (
        f"SELECT {queries.IMAGE_COLUMNS} FROM images i WHERE {cond} "
        "ORDER BY i.created, i.id LIMIT :lim OFFSET :off"
    )


def _pg_labels_sql(cond: str) -> str:
    """The labels of the page's images, from the same page window (no list of ids to
    bind)."""
    return (
        "SELECT il.image_id, l.id, l.name, l.type, il.value FROM "
        f"(SELECT i.id FROM images i WHERE {cond} ORDER BY i.created, i.id "
        "LIMIT :lim OFFSET :off) p "
        "JOIN image_labels il ON il.image_id = p.id JOIN labels l ON l.id = il.label_id "
        "ORDER BY il.created, il.label_id"
    )


def _whole_workspace_page(
    db: Database, cond: str, params: dict[str, Any], pr: PageRequest, media_base: str
) -> ImagePage:
    """A page of every image of the workspace, by page number (as DRF reads it)."""
    count_sql = f"SELECT count(*) FROM images i WHERE {cond}"
    window = {**params, "lim": pr.size, "off": pr.offset}
    results: Any
    if db.is_sqlite:
        with db.sqlite_read() as raw:
            count = db.count(raw, count_sql, params)
            check_page(pr, count)
            expected = max(0, min(pr.size, count - pr.offset))
            window["last"] = pr.offset + expected - 1
            found, items = raw.execute(imagedocs.page_sql(), window).fetchone()
            if found != expected:
                # (The triggers keep image_docs complete: only a damaged database lands here.)
                log.warning("image_docs disagrees with images; rendering the page instead")
                items = raw.execute(imagedocs.rendered_page_sql(cond), window).fetchone()[1]
        results = imagedocs.fill_media(items, media_base)
    else:
        with db.read() as session:
            conn = session.connection()
            count = fetch_all(conn, count_sql, params)[0][0]
            check_page(pr, count)
            rows = fetch_all(conn, _pg_page_sql(cond), window)
            label_rows = fetch_all(conn, _pg_labels_sql(cond), window) if rows else []
            results = queries.image_dicts(conn, rows, media_base, label_rows)
    return ImagePage(count, results)


def gallery_page(
    db: Database, ws: str, query: ImageQuery, pr: PageRequest, media_base: str
) -> tuple[int, list[dict[str, Any]]]:
    """``image_page`` as dicts (the web gallery renders them): the count and the page
    ``pr`` of the workspace's images matching ``query``, newest first; an empty page
    past the last."""
    cond, params = _image_filters(ws, query)
    window = {**params, "lim": pr.size, "off": pr.offset}
    page_ids = (
        f"SELECT i.id FROM images i WHERE {cond} ORDER BY i.created DESC, i.id DESC "
        "LIMIT :lim OFFSET :off"
    )
    with db.read() as session:
        conn = session.connection()
        count = fetch_all(conn, _count_sql(ws, query), params)[0][0]
        rows = fetch_all(
            conn,
            f"SELECT {queries.IMAGE_COLUMNS} FROM ({page_ids}) p JOIN images i ON i.id = p.id "
            "ORDER BY i.created DESC, i.id DESC",
            window,
        )
        label_rows = (
            fetch_all(
                conn,
                f"SELECT il.image_id, l.id, l.name, l.type, il.value FROM ({page_ids}) p "
                "JOIN image_labels il ON il.image_id = p.id JOIN labels l ON l.id = il.label_id "
                "ORDER BY il.created, il.label_id",
                window,
            )
            if rows
            else []
        )
        return count, queries.image_dicts(conn, rows, media_base, label_rows)
