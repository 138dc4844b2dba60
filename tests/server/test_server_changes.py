"""``training-image/changes/`` over HTTP (docs/api.md, "Change feed"): the listing's
objects, tombstones, paging inside one bulk change, the label filter, errors, the
workspace wall, and its absence with ``--compat hosted``."""

from __future__ import annotations

from typing import Any

import httpx

from .helpers import attach, error_fields, image_bytes, make_label, upload


def _drain(api: httpx.Client, cursor: str, **params: Any) -> tuple[str, list[dict], list[str]]:
    results: list[dict[str, Any]] = []
    removed: list[str] = []
    while True:
        r = api.get("training-image/changes/", params={"since": cursor, **params})
        assert r.status_code == 200, r.text
        body = r.json()
        results += body["results"]
        removed += body["removed"]
        cursor = body["cursor"]
        if not body["more"]:
            return cursor, results, removed


def test_the_feed_answers_the_listings_objects_and_tombstones(api: httpx.Client) -> None:
    start = api.get("training-image/changes/").json()
    assert start["results"] == [] and start["removed"] == [] and start["more"] is False
    cat = make_label(api, "cat")
    shown = [upload(api, image_bytes(900 + n)) for n in range(5)]
    api.post(
        "training-image/update/",
        json={"images": [i["id"] for i in shown], "labels-add": [cat["id"]]},
    ).raise_for_status()
    cursor, results, removed = _drain(api, start["cursor"], page_size=2)
    assert {r["id"] for r in results} == {i["id"] for i in shown} and removed == []
    listed = {
        i["id"]: i
        for i in api.get("training-image/", params={"labels": cat["id"]}).json()["results"]
    }
    latest = {r["id"]: r for r in results}  # later pages win
    assert latest == listed
    api.delete(f"training-image/{shown[0]['id']}/").raise_for_status()
    api.post(
        f"training-image/{shown[1]['id']}/remove-label/", json={"label_id": cat["id"]}
    ).raise_for_status()
    attach(api, shown[2]["id"], make_label(api, "dog")["id"])
    cursor, results, removed = _drain(api, cursor, labels=cat["id"])
    assert [r["id"] for r in results] == [shown[2]["id"]]
    assert sorted(removed) == sorted([shown[0]["id"], shown[1]["id"]])
    quiet = api.get("training-image/changes/", params={"since": cursor}).json()
    assert quiet == {"cursor": cursor, "more": False, "results": [], "removed": []}


def test_bad_and_foreign_cursors_are_refused_clearly(live_server: Any, api: httpx.Client) -> None:
    bad = api.get("training-image/changes/", params={"since": "yesterday"})
    assert bad.status_code == 400 and error_fields(bad.json()) == ["since"]
    mine = api.get("training-image/changes/").json()["cursor"]
    upload(api, image_bytes(950))
    with live_server.new_account().client() as other:
        foreign = other.get("training-image/changes/", params={"since": mine})
        assert foreign.status_code == 410
        assert "List the images in full" in foreign.json()["detail"]
        theirs = other.get("training-image/changes/").json()
        # Nothing of this workspace shows through another's feed.
        assert _drain(other, theirs["cursor"])[1:] == ([], [])
    future = mine.split(".")[0] + ".999999"
    assert api.get("training-image/changes/", params={"since": future}).status_code == 410
    anonymous = httpx.get(live_server.api_url + "training-image/changes/")
    assert anonymous.status_code == 401


def test_compat_hosted_has_no_feed(server_factory: Any) -> None:
    server = server_factory("--compat", "hosted")
    with server.new_account().client() as api:
        assert api.get("training-image/changes/").status_code == 404
        assert api.get("training-image/").status_code == 200
