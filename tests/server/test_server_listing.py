"""The image listing's fast paths: answers kept ready by SQLite triggers (image_docs)
and the middleware's fast route, checked against what the route answered before.

Details (``GET training-image/<id>/``) are rendered in Python from the tables, so a
listing row equal to its detail answer is a row the triggers kept up to date.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.datastructures import QueryParams

from localrepo.server.api.images import _plain_listing_flags

from .helpers import all_pages, attach, error_fields, image_bytes, make_label, make_task, upload

NO_SUCH_LABEL = "00000000-0000-4000-8000-000000000000"


def _listed(api: httpx.Client) -> list[str]:
    """Every image id, after checking that both the whole-workspace listing and a
    filtered one (another SQL path) answer exactly the detail objects, and the count."""
    ids: list[str] = []
    for params in ({"page_size": 2}, {"page_size": 2, "not_labels": NO_SUCH_LABEL}):
        rows = all_pages(api, "training-image/", params)
        assert rows == [api.get(f"training-image/{row['id']}/").json() for row in rows]
        assert api.get("training-image/", params=params).json()["count"] == len(rows)
        ids = ids or [row["id"] for row in rows]
        assert [row["id"] for row in rows] == ids
    return ids


def _post(api: httpx.Client, path: str, body: dict[str, Any]) -> None:
    r = api.post(path, json=body)
    assert r.status_code == 200, r.text


def test_every_kind_of_write_shows_in_the_next_listing(api: httpx.Client) -> None:
    assert _listed(api) == []
    cat = make_label(api, 'cat "quoted" ü')
    val = make_label(api, "score", "value")
    ids = [upload(api, image_bytes(9100 + k), meta_data={"k": k})["id"] for k in range(3)]
    assert _listed(api) == ids
    attach(api, ids[0], cat["id"])
    attach(api, ids[1], val["id"], value=1.5)
    attach(api, ids[1], cat["id"])
    assert _listed(api) == ids
    _post(api, f"training-image/{ids[1]}/update-value/", {"label_id": val["id"], "value": 2.5})
    _post(api, f"training-image/{ids[2]}/update-label/", {"label_id": val["id"], "value": -3})
    _listed(api)
    _post(api, f"training-image/{ids[0]}/remove-label/", {"label_id": cat["id"]})
    _listed(api)
    r = api.put(
        f"training-image/{ids[2]}/", json={"meta_data": {"new": [1, 2]}, "test_image": True}
    )
    assert r.status_code == 200
    assert api.patch(f"training-image/{ids[2]}/", json={"real": True}).status_code == 200
    _listed(api)
    _post(
        api,
        "training-image/update/",
        {"images": [ids[0], ids[2]], "labels-add": [cat["id"]], "mark-real": True},
    )
    _listed(api)
    _post(
        api,
        "training-image/update/",
        {"labels": [cat["id"]], "labels-remove": [val["id"]], "unmark-real": True},
    )
    _listed(api)
    # A label's new name shows on every image that has it.
    assert api.put(f"label/{cat['id']}/", json={"name": "renamed"}).status_code == 200
    assert api.patch(f"label/{val['id']}/", json={"name": "score 2"}).status_code == 200
    rows = {row["id"]: row for row in all_pages(api, "training-image/", {"page_size": 2})}
    assert [lab["name"] for lab in rows[ids[0]]["labels"]] == ["renamed"]
    _listed(api)
    # A task's negative label goes with the task, from every image too.
    task = make_task(api, "tags", "multi_label")
    negative = api.get("label/", params={"search": "tags (negative)"}).json()["results"][0]
    attach(api, ids[0], negative["id"])
    assert _listed(api) == ids
    assert api.delete(f"task/{task['id']}/").status_code == 204
    rows = {row["id"]: row for row in all_pages(api, "training-image/")}
    assert negative["id"] not in [lab["id"] for lab in rows[ids[0]]["labels"]]
    _listed(api)
    assert api.delete(f"label/{cat['id']}/").status_code == 204
    _listed(api)
    # Counts follow deletes and uploads at once.
    assert api.delete(f"training-image/{ids[1]}/").status_code == 204
    assert _listed(api) == [ids[0], ids[2]]
    new = upload(api, image_bytes(9199))["id"]
    assert _listed(api) == [ids[0], ids[2], new]


@pytest.mark.parametrize(
    ("query", "flags"),
    [
        ("", (None, None)),
        ("page=2&page_size=1000&labels=x&workspace=Default", (None, None)),
        ("test=TRUE&real=0", (True, False)),
        ("test=false&test=1", (True, None)),  # the last one counts, as in FastAPI
        ("page=0", "defer"),
        ("page=%2B2", "defer"),
        ("page_size=", "defer"),
        ("page_size=1234567890", "defer"),
        ("test=yes", "defer"),
        ("real=", "defer"),
        ("test=true&test=maybe", "defer"),
    ],
)
def test_the_fast_path_reads_only_plain_queries(query: str, flags: object) -> None:
    expected = None if flags == "defer" else flags
    assert _plain_listing_flags(QueryParams(query)) == expected


def _page(api: httpx.Client, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
    r = api.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_fast_and_fastapi_routes_answer_the_same(api: httpx.Client) -> None:
    label = make_label(api, "a")
    ids = [
        upload(api, image_bytes(9300 + k), test_image=k % 2 == 0, real=k == 4)["id"]
        for k in range(5)
    ]
    for image_id in ids[:3]:
        attach(api, image_id, label["id"])
    # Same question, one in the fast path's forms, one that only FastAPI reads.
    for fast, slow in (
        ([("test", "true")], [("test", "yes")]),
        ([("real", "false"), ("labels", label["id"])], [("real", "off"), ("labels", label["id"])]),
        ([("page", "2"), ("page_size", "2")], [("page", "+2"), ("page_size", "2")]),
    ):
        for path in ("training-image/", "training-image"):
            a, b = _page(api, path, fast), _page(api, path, slow)
            assert a["count"] == b["count"] and a["results"] == b["results"]
            assert a["results"], fast
    assert [r["id"] for r in _page(api, "training-image", [("test", "1")])["results"]] == ids[::2]
    # Pages as DRF reads them: a bad page is 404 "Invalid page.", a bad size ignored.
    for params in ({"page": "0"}, {"page": "abc"}, {"page": "-1"}, {"page": "9" * 30}):
        r = api.get("training-image/", params=params)
        assert (r.status_code, r.json()) == (404, {"detail": "Invalid page."}), params
    r = api.get("training-image/", params={"page_size": "x"})
    assert r.status_code == 200 and r.json()["count"] == len(ids)
    # Validation stays FastAPI's (the contract's shape, naming the parameter).
    for params, field in (
        ({"test": ""}, "test"),
        ({"real": "2"}, "real"),
    ):
        r = api.get("training-image/", params=params)
        assert r.status_code == 400 and error_fields(r.json()) == [field], (params, r.text)
    r = api.get("training-image/", params={"page": "4", "page_size": "2"})
    assert r.status_code == 404 and r.json() == {"detail": "Invalid page."}
    r = api.get("training-image/", params={"workspace": str(uuid.uuid4())})
    assert r.status_code == 404
    # next keeps every parameter, in both paths.
    for test in ("true", "yes"):
        body = _page(api, "training-image/", [("test", test), ("page_size", "1"), ("x", "y")])
        q = parse_qs(urlsplit(body["next"]).query)
        assert q.pop("after")  # (a filtered listing: the keyset cursor)
        assert q == {"test": [test], "page_size": ["1"], "x": ["y"], "page": ["2"]}


def test_media_urls_follow_each_request_host(api: httpx.Client) -> None:
    upload(api, image_bytes(9400))
    for host in ("example.test:8123", 'quo"te.test'):
        r = api.get("training-image/", headers={"Host": host})
        assert r.status_code == 200, r.text
        (row,) = r.json()["results"]
        assert row["img_path"].startswith(f"http://{host}/media/")
        assert row["thumb_img_path"].startswith(f"http://{host}/media/")
        assert row["img_path"].endswith(".jpg") and row["thumb_img_path"].endswith("_thumb.jpg")


def test_rate_limit_counts_a_listing_once_whichever_route_answers(server_factory) -> None:
    server = server_factory("--rate-limit", "2/s")
    with server.client() as api:
        # A burst of 2: one request FastAPI answers, one the fast path answers, then 429.
        assert api.get("training-image/", params={"test": "yes"}).status_code == 200
        assert api.get("training-image/", params={"test": "true"}).status_code == 200
        r = api.get("training-image/")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert "throttled" in r.json()["detail"]


def test_docs_are_rebuilt_when_missing_and_a_damaged_table_still_lists_right(
    server_factory, tmp_path: Path
) -> None:
    # SQLite even in the PostgreSQL run: image_docs is SQLite's.
    db_path = tmp_path / "docs.db"
    server = server_factory(database_url=f"sqlite:///{db_path}")
    with server.client() as api:
        label = make_label(api, "x")
        ids = [upload(api, image_bytes(9500 + k))["id"] for k in range(4)]
        attach(api, ids[1], label["id"])
        before = all_pages(api, "training-image/")
        # Damaged: a doc lost behind the server's back; the page is rendered instead.
        with sqlite3.connect(db_path) as db:
            db.execute("DELETE FROM image_docs WHERE image_id = ?", (ids[1],))
        assert all_pages(api, "training-image/") == before
        assert all_pages(api, "training-image/", {"page_size": 3}) == before
    # A database from before image_docs: the next start renders every doc again.
    server.stop()
    with sqlite3.connect(db_path) as db:
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            db.execute(f"DROP TRIGGER {name}")
        db.execute("DROP TABLE image_docs")
        db.execute("DELETE FROM schema_info WHERE key = 'image_docs'")
    server.start()
    with server.client() as api:
        assert all_pages(api, "training-image/") == before
        with sqlite3.connect(db_path) as db:
            assert db.execute("SELECT count(*) FROM image_docs").fetchone() == (4,)
        # ... and the triggers are back: a write shows at once.
        _post(api, f"training-image/{ids[0]}/add-label/", {"label_id": label["id"]})
        assert _listed(api) == ids
        # Another process deletes an image: the next page's count and rows show it at once
        # (a count is remembered only while nothing else is committed).
        assert api.get("training-image/").json()["count"] == 4
        with sqlite3.connect(db_path) as db:
            db.execute("DELETE FROM image_labels WHERE image_id = ?", (ids[3],))
            db.execute("DELETE FROM images WHERE id = ?", (ids[3],))
        assert api.get("training-image/").json()["count"] == 3
        assert _listed(api) == ids[:3]
