"""Contract tests over real HTTP: tasks, trailing slashes, task labels, training stubs."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from .helpers import account_url, all_pages, b64, image_bytes, make_label, make_task

TASK_KEYS = {
    "id",
    "name",
    "type",
    "description",
    "workspace",
    "production_version",
    "last_train_status",
    "created",
    "labels",
    "accuracy",
}
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_create_task_json_defaults_and_shape(api: httpx.Client) -> None:
    r = api.post("task/", json={"name": "Cats vs dogs"})
    assert r.status_code == 201
    task = r.json()
    assert set(task) == TASK_KEYS
    assert UUID4.match(task["id"])
    assert task["name"] == "Cats vs dogs"
    assert task["type"] == "multi_class"
    assert task["description"] == ""
    assert task["production_version"] is None
    assert task["last_train_status"] is None
    assert task["labels"] == []
    created = datetime.fromisoformat(task["created"].replace("Z", "+00:00"))
    assert created.tzinfo is not None
    ws = api.get(account_url(api)).json()
    assert task["workspace"] == next(w["id"] for w in ws if w["is_default"])


def test_create_task_form_body(api: httpx.Client) -> None:
    r = api.post("task/", data={"name": "from a form", "type": "regression", "description": "d"})
    assert r.status_code == 201, r.text
    assert (r.json()["name"], r.json()["type"], r.json()["description"]) == (
        "from a form",
        "regression",
        "d",
    )
    r = api.post("task/", files={"name": (None, "multipart form"), "type": (None, "multi_label")})
    assert r.status_code == 201, r.text
    assert r.json()["type"] == "multi_label"


def test_multi_label_task_gets_its_negative_tag_label(api: httpx.Client) -> None:
    task = make_task(api, "tags", "multi_label")
    assert len(task["labels"]) == 1
    negative = api.get(f"label/{task['labels'][0]}/").json()
    assert negative["type"] == "tag"
    assert negative["negative_for_task"] == task["id"]
    assert negative["tasks_count"] == 1
    for other in ("multi_class", "regression"):
        assert make_task(api, other, other)["labels"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "type": "detection"}, "type"),
        ({"name": 5}, "name"),
        ({"name": "x", "description": ["no"]}, "description"),
    ],
)
def test_create_task_validation_names_the_field(
    api: httpx.Client, body: dict[str, object], field: str
) -> None:
    r = api.post("task/", json=body)
    assert r.status_code == 400
    errors = r.json()
    assert list(errors) == [field]
    assert isinstance(errors[field], list) and all(isinstance(m, str) for m in errors[field])


def test_get_update_delete_task(api: httpx.Client) -> None:
    task = make_task(api, "before", description="old")
    tid = task["id"]
    assert api.get(f"task/{tid}/").json() == task
    r = api.patch(f"task/{tid}/", json={"description": "new"})
    assert r.status_code == 200
    assert (r.json()["name"], r.json()["description"]) == ("before", "new")
    r = api.put(f"task/{tid}/", json={"description": "no name"})
    assert r.status_code == 400
    assert "name" in r.json()
    # The type is fixed at creation: another one is refused, nothing changes.
    r = api.put(f"task/{tid}/", json={"name": "after", "type": "regression"})
    assert r.status_code == 400 and list(r.json()) == ["type"]
    r = api.put(f"task/{tid}/", json={"name": "after"})
    assert r.status_code == 200
    assert r.json()["name"] == "after"
    assert r.json()["type"] == "multi_class"
    r = api.delete(f"task/{tid}/")
    assert r.status_code == 204
    assert r.content == b""
    assert api.get(f"task/{tid}/").status_code == 404
    assert api.delete(f"task/{tid}/").status_code == 404


def test_deleting_a_multi_label_task_drops_its_negative_label_only(api: httpx.Client) -> None:
    task = make_task(api, "tags", "multi_label")
    tag = make_label(api, "red", "tag")
    assert (
        api.post(f"task/{task['id']}/add-label/", json={"label_id": tag["id"]}).status_code == 200
    )
    negative_id = task["labels"][0]
    assert api.delete(f"task/{task['id']}").status_code == 204
    assert api.get(f"label/{negative_id}/").status_code == 404
    kept = api.get(f"label/{tag['id']}/").json()
    assert kept["tasks_count"] == 0


@pytest.mark.parametrize(
    ("task_type", "label_type", "fits"),
    [
        ("multi_class", "category", True),
        ("multi_class", "tag", False),
        ("multi_class", "value", False),
        ("multi_label", "tag", True),
        ("multi_label", "category", False),
        ("multi_label", "value", False),
        ("regression", "value", True),
        ("regression", "category", False),
        ("regression", "tag", False),
    ],
)
def test_label_type_must_fit_task_type(
    api: httpx.Client, task_type: str, label_type: str, fits: bool
) -> None:
    task = make_task(api, "t", task_type)
    label = make_label(api, "l", label_type)
    r = api.post(f"task/{task['id']}/add-label/", json={"label_id": label["id"]})
    if fits:
        assert r.status_code == 200
        assert isinstance(r.json()["detail"], str)
        assert label["id"] in api.get(f"task/{task['id']}/").json()["labels"]
    else:
        assert r.status_code == 400
        assert label_type in r.json()["detail"] and task_type in r.json()["detail"]
        assert label["id"] not in api.get(f"task/{task['id']}/").json()["labels"]


def test_add_and_remove_label_form_bodies_and_idempotence(api: httpx.Client) -> None:
    task = make_task(api)
    label = make_label(api)
    for _ in range(2):
        r = api.post(f"task/{task['id']}/add-label", data={"label_id": label["id"]})
        assert r.status_code == 200, r.text
    assert api.get(f"task/{task['id']}").json()["labels"] == [label["id"]]
    assert api.get(f"label/{label['id']}").json()["tasks_count"] == 1
    r = api.post(f"task/{task['id']}/remove-label/", data={"label_id": label["id"]})
    assert r.status_code == 200
    assert api.get(f"task/{task['id']}").json()["labels"] == []
    # Detaching does not delete the label.
    assert api.get(f"label/{label['id']}").status_code == 200


def test_add_label_errors_name_the_field(api: httpx.Client) -> None:
    task = make_task(api)
    r = api.post(f"task/{task['id']}/add-label/", json={})
    assert r.status_code == 400 and "label_id" in r.json()
    r = api.post(f"task/{task['id']}/add-label/", json={"label_id": "nope"})
    assert r.status_code == 400 and "label_id" in r.json()
    missing = "00000000-0000-4000-8000-000000000000"
    r = api.post(f"task/{task['id']}/add-label/", json={"label_id": missing})
    assert r.status_code == 400 and missing in r.json()["label_id"][0]
    r = api.post(f"task/{missing}/add-label/", json={"label_id": missing})
    assert r.status_code == 404


def test_task_pagination_follows_absolute_next_and_keeps_the_workspace(
    live_server, account
) -> None:
    ws = live_server.create_workspace(account.username, "second")
    with account.client() as api:
        for i in range(7):
            r = api.post("task/", json={"name": f"t{i}", "workspace": ws})
            assert r.status_code == 201
        make_task(api, "in default")
        r = api.get("task/", params={"workspace": ws, "page_size": 3})
        body = r.json()
        assert body["count"] == 7
        assert body["previous"] is None
        nxt = urlsplit(body["next"])
        assert f"{nxt.scheme}://{nxt.netloc}/" == live_server.url
        assert parse_qs(nxt.query) == {"workspace": [ws], "page_size": ["3"], "page": ["2"]}
        names = [t["name"] for t in all_pages(api, "task/", {"workspace": ws, "page_size": 3})]
        assert names == [f"t{i}" for i in range(7)]
        page3 = api.get("task/", params={"workspace": ws, "page_size": 3, "page": 3}).json()
        assert page3["next"] is None
        assert parse_qs(urlsplit(page3["previous"]).query)["page"] == ["2"]
        assert (
            api.get("task/", params={"workspace": ws, "page": 4, "page_size": 3}).status_code == 404
        )
        assert [t["name"] for t in all_pages(api, "task/")] == ["in default"]


def test_page_size_is_capped_at_the_maximum(api: httpx.Client) -> None:
    make_task(api)
    body = api.get("task/", params={"page_size": 100000}).json()
    assert body["count"] == 1 and body["next"] is None


# ---- trailing slashes: every form accepted, never a redirect -----------------------------


@pytest.mark.parametrize("slash", ["", "/"])
def test_every_route_accepts_both_slash_forms_without_redirect(
    api: httpx.Client, slash: str
) -> None:
    def call(method: str, path: str, **kwargs: object) -> httpx.Response:
        r = api.request(method, path.rstrip("/") + slash, **kwargs)  # type: ignore[arg-type]
        assert not r.is_redirect, (method, path, r.status_code, r.headers)
        return r

    assert call("GET", "task/").status_code == 200
    task = call("POST", "task/", json={"name": "x"})
    assert task.status_code == 201
    tid = task.json()["id"]
    label = call("POST", "label/", json={"name": "l"})
    assert label.status_code == 201
    lid = label.json()["id"]
    assert call("GET", f"task/{tid}/").status_code == 200
    assert call("PUT", f"task/{tid}/", json={"name": "y"}).status_code == 200
    assert call("PATCH", f"task/{tid}/", json={"name": "z"}).status_code == 200
    assert call("POST", f"task/{tid}/add-label/", json={"label_id": lid}).status_code == 200
    assert call("POST", f"task/{tid}/remove-label/", json={"label_id": lid}).status_code == 200
    assert call("GET", "label/").status_code == 200
    assert call("GET", f"label/{lid}/").status_code == 200
    assert call("PATCH", f"label/{lid}/", json={"description": "d"}).status_code == 200
    assert call("GET", "training-image/").status_code == 200
    assert call("GET", "model/").status_code == 200
    r = api.get(account_url(api, "workspace" + slash))
    assert r.status_code == 200 and not r.is_redirect
    assert call("DELETE", f"label/{lid}/").status_code == 204
    assert call("DELETE", f"task/{tid}/").status_code == 204


def test_null_characters_are_refused_with_a_400_naming_the_field(api: httpx.Client) -> None:
    """PostgreSQL text and JSON cannot hold NUL: a body or query parameter with one is a
    400 naming the field (DRF's message) on every database, never a 500, and nothing is
    stored. (Runs on PostgreSQL too: test_server_postgres.py.)"""
    before = api.get("task/").json()["count"]
    for body in (
        {"name": "cats\x00dogs"},
        {"name": "ok", "description": "a\x00b"},
    ):
        r = api.post("task/", json=body)
        assert r.status_code == 400, r.text
        assert r.json() == {
            k: ["Null characters are not allowed."] for k, v in body.items() if "\x00" in v
        }
    r = api.post("task/", data={"name": "form\x00name"})
    assert r.status_code == 400 and r.json() == {"name": ["Null characters are not allowed."]}
    assert api.get("task/").json()["count"] == before

    r = api.post("label/", json={"name": "x\x00", "type": "category"})
    assert r.status_code == 400 and "name" in r.json()
    r = api.post(
        "training-image/", json={"base64": b64(image_bytes(77)), "meta_data": {"k": "v\x00"}}
    )
    assert r.status_code == 400 and r.json() == {"meta_data": ["Null characters are not allowed."]}

    r = api.get("label/", params={"search": "a\x00"})
    assert r.status_code == 400 and r.json() == {"search": ["Null characters are not allowed."]}
    r = api.get("training-image/", params={"labels": "\x00"})
    assert r.status_code == 400 and r.json() == {"labels": ["Null characters are not allowed."]}
