"""A filtered image listing read by keyset (issue 22): its ``next`` links carry a cursor
(``after``) so that a deep page costs what the first one does. Read to the end, it
answers what the numbered pages answer; an image added meanwhile is not missed; a
cursor tampered with, or moved to another listing or workspace, is a 400 naming
``after`` and never shows another workspace's images.

The HTTP tests run again on PostgreSQL (tests/server/test_server_postgres.py); the
data-layer test runs on both (the ``db`` fixture).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
from sqlalchemy import text

from localrepo.server.data import accounts, imagedocs, imagelist, images, labels
from localrepo.server.data.db import Database
from localrepo.server.data.imagelist import ImageQuery
from localrepo.server.pagination import After, PageRequest, encode_after

from .helpers import all_pages, attach, error_fields, image_bytes, make_label, upload
from .test_server_annotate import _image_row


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_a_filtered_listing_through_next_equals_the_numbered_pages(api: httpx.Client) -> None:
    a, b = make_label(api, "a"), make_label(api, "b")
    ids = [upload(api, image_bytes(22_000 + k))["id"] for k in range(9)]
    for k in (0, 1, 2, 4, 5, 7, 8):
        attach(api, ids[k], a["id"])
    attach(api, ids[3], b["id"])
    matching = [ids[k] for k in (0, 1, 2, 3, 4, 5, 7, 8)]
    params = {"labels": f"{a['id']},{b['id']}", "page_size": 3}
    # The numbered pages, as before (no cursor).
    numbered = []
    for page in (1, 2, 3):
        body = api.get("training-image/", params={**params, "page": page}).json()
        assert body["count"] == 8
        numbered += [row["id"] for row in body["results"]]
    assert numbered == matching
    # The same listing read through next: each next carries a cursor; every page the count.
    first = api.get("training-image/", params=params).json()
    second = api.get(first["next"]).json()
    assert set(_query(first["next"])) == {"labels", "page_size", "page", "after"}
    assert _query(first["next"])["page"] == ["2"]
    assert _query(second["previous"]) == {
        "labels": [params["labels"]],
        "page_size": ["3"],
        "page": ["1"],
    }
    assert second["count"] == 8
    rows = all_pages(api, "training-image/", params)
    assert [row["id"] for row in rows] == matching
    assert rows == [api.get(f"training-image/{i}/").json() for i in matching]
    # The FastAPI route (a parameter the fast path leaves to it) answers the same.
    slow = all_pages(api, "training-image/", {**params, "test": "no"})
    assert [row["id"] for row in slow] == matching
    # A numbered page's next carries a cursor too (a client that starts at page 2).
    page2 = api.get("training-image/", params={**params, "page": 2}).json()
    third = api.get(page2["next"]).json()
    assert [r["id"] for r in third["results"]] == matching[6:] and third["next"] is None


def test_an_image_added_while_a_listing_is_read_is_not_missed(api: httpx.Client) -> None:
    a = make_label(api, "a")
    ids = [upload(api, image_bytes(22_100 + k))["id"] for k in range(4)]
    for image_id in ids:
        attach(api, image_id, a["id"])
    params = {"labels": a["id"], "page_size": 2}
    first = api.get("training-image/", params=params).json()
    second = api.get(first["next"]).json()
    assert [r["id"] for r in second["results"]] == ids[2:]
    # The count said two pages; the rows say a third exists now, and next leads to it.
    late = upload(api, image_bytes(22_110))["id"]
    attach(api, late, a["id"])
    again = api.get(first["next"]).json()
    assert [r["id"] for r in again["results"]] == ids[2:] and again["next"]
    assert [r["id"] for r in api.get(again["next"]).json()["results"]] == [late]
    # An image deleted behind the cursor: the next page still starts where it should.
    assert api.delete(f"training-image/{ids[1]}/").status_code == 204
    assert [r["id"] for r in api.get(first["next"]).json()["results"]] == [ids[2], ids[3]]


def _cursor(data: Any) -> str:
    raw = data if isinstance(data, bytes) else orjson.dumps(data)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def test_a_tampered_cursor_is_a_400_naming_after(api: httpx.Client) -> None:
    a = make_label(api, "a")
    for k in range(3):
        attach(api, upload(api, image_bytes(22_200 + k))["id"], a["id"])
    params = {"labels": a["id"], "page_size": 1}
    nxt = api.get("training-image/", params=params).json()["next"]
    (after,) = _query(nxt)["after"]
    real = orjson.loads(base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)))
    assert set(real) == {"c", "i", "n", "f"}
    bad = [
        "",
        "not base64!",
        after[:-3],
        after + "A" * 600,
        "é" + after,
        _cursor(b"\xff\xfe"),
        _cursor([real["c"], real["i"]]),
        _cursor({**real, "n": -1}),
        _cursor({**real, "n": "5"}),
        _cursor({**real, "n": True}),
        _cursor({**real, "c": 7}),
        _cursor({**real, "i": ""}),
        _cursor({**real, "i": "\x00"}),
        _cursor({**real, "f": "0" * 16}),
        _cursor({**real, "extra": 1}),
    ]
    for raw in bad:
        for extra in ({}, {"test": "no"}):  # the fast path and FastAPI's route
            r = api.get("training-image/", params={**params, **extra, "after": raw})
            assert r.status_code == 400, (raw, r.text)
            assert error_fields(r.json()) == ["after"]
    # A cursor moved to another listing (other filters) is refused too.
    b = make_label(api, "b")
    r = api.get("training-image/", params={"labels": b["id"], "after": after})
    assert r.status_code == 400 and error_fields(r.json()) == ["after"]
    assert api.get(nxt).status_code == 200


def test_a_cursor_never_shows_another_workspace(live_server: Any, account: Any) -> None:
    second = live_server.create_workspace(account.username, "second")
    with account.client() as api:
        mine = [upload(api, image_bytes(22_300 + k))["id"] for k in range(3)]
        other = [upload(api, image_bytes(22_310 + k), workspace=second)["id"] for k in range(2)]
        params = {"test": "false", "page_size": 1}
        nxt = api.get("training-image/", params=params).json()["next"]
        # The default workspace's cursor asked of the second workspace: refused.
        assert "workspace" not in _query(nxt)
        r = api.get(f"{nxt}&workspace={second}")
        assert r.status_code == 400 and error_fields(r.json()) == ["after"]
        # A cursor forged for the second workspace from a position of the first: the
        # second workspace's images only.
        default_ws = api.get(f"training-image/{mine[0]}/").json()["workspace"]
        assert default_ws != second
        forged = encode_after(
            After("0", mine[0], 99, imagelist.filters_key(second, ImageQuery(test=False)))
        )
        got = all_pages(api, "training-image/", {**params, "workspace": second, "after": forged})
        assert [row["id"] for row in got] == other
        assert {row["workspace"] for row in got} == {second}


# ---- the data layer, on SQLite and PostgreSQL ----------------------------------------------


def _read_by_keyset(
    db: Database, ws: str, query: ImageQuery, size: int
) -> tuple[list[str], list[int]]:
    """Every image id of the listing, following each page's cursor; and each page's count."""
    ids: list[str] = []
    counts: list[int] = []
    after: After | None = None
    number = 1
    while True:
        page = imagelist.image_page(db, ws, query, PageRequest(number, size), "http://x/", after)
        ids += [row["id"] for row in orjson.loads(orjson.dumps(page.results))]
        counts.append(page.count)
        if page.next_key is None:
            return ids, counts
        after = After(*page.next_key, count=page.count, filters="f")
        number += 1


def test_keyset_pages_break_ties_of_created_by_id(db: Database) -> None:
    user = accounts.create_user(db, "u")
    ws = accounts.list_workspaces(db, "u")[0].id
    label = labels.create_label(db, ws, "a", "category", "", None)["id"]
    rows = [_image_row(ws, n) for n in range(1, 12)]
    for n, row in enumerate(rows):
        # Three moments for eleven images: most pages end inside a run of equal times.
        row["created"] = f"2026-01-0{1 + n % 3}T00:00:00.000000Z"
        images.insert_image(db, row, user_id=user.id)
        if n != 5:
            images.link_labels(db, ws, row["id"], [(label, None)], user_id=user.id)
    query = ImageQuery(labels=[label])
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r["created"], r["id"]))]
    expected.remove(rows[5]["id"])
    for size in (1, 2, 3, 10, 11):
        ids, counts = _read_by_keyset(db, ws, query, size)
        assert ids == expected, size
        assert counts == [10] * len(counts)
        if size < len(expected):  # the second page by number (OFFSET) agrees
            offset = imagelist.image_page(db, ws, query, PageRequest(2, size), "http://x/")
            second = orjson.loads(orjson.dumps(offset.results))
            assert [row["id"] for row in second] == expected[size : 2 * size]
    if db.is_sqlite:
        # The page is found in the index of (workspace, created, id), in order: no
        # sort, no scan of the table.
        cond, params = imagelist._image_filters(ws, query)
        with db.write_conn() as conn:
            plan = conn.execute(
                text(
                    "EXPLAIN QUERY PLAN " + imagedocs.page_rows_sql(cond + imagelist.AFTER_CURSOR)
                ),
                {**params, "lim": 2, "off": 0, "after_created": "", "after_id": ""},
            ).fetchall()
        details = " | ".join(str(row[-1]) for row in plan)
        assert "ix_images_ws_created (workspace_id=? AND (created,id)>(?,?))" in details, details
        assert "TEMP B-TREE" not in details, details
