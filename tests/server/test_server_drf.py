"""DRF fidelity (issue 21, gap 8): validation messages in Django REST framework's words,
read-only fields refused, a workspace in a DELETE body honoured, HEAD answered like GET,
OPTIONS with the allowed methods, and a 405's Allow naming them all; against a real
server. (Pages and the authorisation-header wording are in test_server_listing.py and
test_server_accounts.py.)
"""

from __future__ import annotations

import httpx
import pytest

from localrepo.server.drfmessages import drf_message

from .helpers import image_bytes, make_label, make_task, upload


def test_the_messages_are_drfs() -> None:
    assert drf_message({"type": "missing"}) == "This field is required."
    assert drf_message({"type": "string_too_short", "ctx": {"min_length": 1}, "input": ""}) == (
        "This field may not be blank."
    )
    assert drf_message({"type": "string_too_long", "ctx": {"max_length": 255}}) == (
        "Ensure this field has no more than 255 characters."
    )
    assert drf_message({"type": "literal_error", "input": "bogus"}) == (
        '"bogus" is not a valid choice.'
    )
    assert drf_message({"type": "string_type", "input": None}) == "This field may not be null."
    assert drf_message({"type": "bool_parsing", "input": "maybe"}) == "Must be a valid boolean."
    assert drf_message({"type": "dict_type", "input": [1]}) == (
        'Expected a dictionary of items but got type "list".'
    )
    assert drf_message({"type": "something_else", "msg": "kept"}) == "kept"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": ""}, "name", "This field may not be blank."),
        ({"name": "t", "type": "bogus"}, "type", '"bogus" is not a valid choice.'),
        ({"name": "x" * 256}, "name", "Ensure this field has no more than 255 characters."),
        ({}, "name", "This field is required."),
        ({"name": None}, "name", "This field may not be null."),
    ],
)
def test_task_validation_answers_in_drfs_words(
    api: httpx.Client, body: dict[str, object], field: str, message: str
) -> None:
    r = api.post("task/", json=body)
    assert r.status_code == 400
    assert r.json() == {field: [message]}


def test_a_read_only_type_is_refused_unless_unchanged(api: httpx.Client) -> None:
    task = make_task(api, "t", "multi_class")
    r = api.patch(f"task/{task['id']}/", json={"type": "regression"})
    assert r.status_code == 400 and list(r.json()) == ["type"]
    assert "cannot change" in r.json()["type"][0]
    assert api.get(f"task/{task['id']}/").json()["type"] == "multi_class"
    # The object as read back, sent again whole: its type is the same, so it is fine.
    same = api.put(f"task/{task['id']}/", json={"name": "t2", "type": "multi_class"})
    assert same.status_code == 200 and same.json()["name"] == "t2"
    label = make_label(api, "cat")
    r = api.put(f"label/{label['id']}/", json={"name": "cat", "type": "tag"})
    assert r.status_code == 400 and list(r.json()) == ["type"]
    r = api.patch(f"label/{label['id']}/", json={"type": "category", "description": "d"})
    assert r.status_code == 200 and r.json()["description"] == "d"


def test_a_workspace_in_a_delete_body_is_honoured(live_server, account) -> None:
    ws = live_server.create_workspace(account.username, "second")
    with account.client() as api:
        task = make_task(api, "in second", workspace=ws)
        image = upload(api, image_bytes(7001), workspace=ws)
        # Named in the body, the workspace is checked strictly: Default does not hold it.
        r = api.request("DELETE", f"task/{task['id']}/", json={"workspace": "Default"})
        assert r.status_code == 404
        r = api.request("DELETE", f"task/{task['id']}/", json={"workspace": ws})
        assert r.status_code == 204
        r = api.request("DELETE", f"training-image/{image['id']}/", data={"workspace": ws})
        assert r.status_code == 204
        assert api.get("training-image/", params={"workspace": ws}).json()["count"] == 0
        other = live_server.new_account()
        r = api.request(
            "DELETE", f"task/{task['id']}/", json={"workspace": other.headers["Authorization"]}
        )
        assert r.status_code in (400, 404)


def test_head_options_and_allow(account) -> None:
    with account.client() as api:
        make_task(api, "t")
        get = api.get("task/")
        head = api.head("task/")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == get.headers["content-length"]
        r = api.options("task/")
        assert r.status_code == 200
        assert r.headers["allow"] == "GET, POST, HEAD, OPTIONS"
        assert r.json()["name"] == "Task List"
        assert "application/json" in r.json()["parses"]
        task_id = get.json()["results"][0]["id"]
        r = api.options(f"task/{task_id}")
        assert r.headers["allow"] == "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"
        assert r.json()["name"] == "Task Instance"
        r = api.post(f"task/{task_id}/")
        assert r.status_code == 405
        assert r.headers["allow"] == "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"
        assert r.json() == {"detail": 'Method "POST" not allowed.'}
        r = api.head(f"task/{task_id}/train/")
        assert r.status_code == 405 and r.headers["allow"] == "POST, OPTIONS"
    # Auth holds for OPTIONS and HEAD like for every method.
    r = httpx.options(account.api_url + "task/")
    assert r.status_code == 401 and r.json() == {
        "detail": "Authentication credentials were not provided."
    }
    assert httpx.head(account.api_url + "task/").status_code == 401
    # Outside the routes, nothing is invented.
    assert httpx.options(account.api_url + "no-such/", headers=account.headers).status_code == 404
