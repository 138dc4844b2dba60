"""Auth, workspaces, isolation between users, error shapes, labels and models."""

from __future__ import annotations

import sqlite3
import uuid

import httpx
import pytest
from support.waiting import until

from .helpers import account_url, attach, b64, image_bytes, make_label, make_task, upload

# ---- authentication ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Authentication credentials were not provided."),
        ({"Authorization": "Token nope"}, "Invalid token."),
        # DRF's words: another scheme is no credentials; then the header's shape.
        ({"Authorization": "Basic dXNlcjpwdw=="}, "Authentication credentials were not provided."),
        ({"Authorization": "Token"}, "Invalid token header. No credentials provided."),
        (
            {"Authorization": "Token a b"},
            "Invalid token header. Token string should not contain spaces.",
        ),
        (
            {"Authorization": "Token caf\u00e9".encode()},
            "Invalid token header. Token string should not contain invalid characters.",
        ),
    ],
)
def test_requests_without_a_valid_token_get_401_json(
    live_server, headers: dict[str, str | bytes], message: str
) -> None:
    for method, path in (
        ("GET", "recognition/v2/task/"),
        ("POST", "recognition/v2/task/"),
        ("GET", "recognition/v2/training-image/"),
        ("DELETE", f"recognition/v2/label/{uuid.uuid4()}"),
        ("GET", "account/v2/workspace/"),
        ("POST", "recognition/v2/classify/"),
    ):
        r = httpx.request(method, live_server.url + path, headers=headers, json={"name": "x"})
        assert r.status_code == 401, (method, path)
        assert r.headers["content-type"] == "application/json"
        assert set(r.json()) == {"detail"}
        assert r.json()["detail"].startswith(message)


def test_token_and_jwt_schemes_are_both_accepted(account) -> None:
    for scheme in ("Token", "JWT", "token"):
        r = httpx.get(
            account.api_url + "task/", headers={"Authorization": f"{scheme} {account.token}"}
        )
        assert r.status_code == 200, scheme


def test_revoked_token_stops_working(live_server) -> None:
    acct = live_server.new_account()
    assert httpx.get(acct.api_url + "task/", headers=acct.headers).status_code == 200
    listing = live_server.run_cli("token", "list", acct.username).stdout.split()
    token_id = listing[0]
    live_server.run_cli("token", "revoke", token_id)
    # The server trusts a checked token for at most --auth-cache-seconds (2 s): wait for
    # the refusal (how soon it comes on a busy machine is not the point).
    until(
        lambda: httpx.get(acct.api_url + "task/", headers=acct.headers).status_code == 401,
        what="the revoked token to be refused",
        step=0.2,
    )


def test_tokens_never_appear_in_the_server_log(live_server, account) -> None:
    with account.client() as api:
        make_task(api)
        api.get("task/", params={"page_size": 1})
        httpx.get(live_server.api_url + "task/", headers={"Authorization": "Token wrong-secret-x"})
    log = live_server.log_text()
    assert "recognition/v2/task" in log  # the access log is on
    assert account.token not in log
    assert "wrong-secret-x" not in log


# ---- workspaces and isolation ---------------------------------------------------------------


def test_workspace_listing_is_a_plain_array(live_server, account) -> None:
    ws_id = live_server.create_workspace(account.username, "Project X")
    r = httpx.get(account_url(account.client(), "workspace/"), headers=account.headers)
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body, list)
    assert [w["name"] for w in body] == ["Default", "Project X"]
    assert body[0]["is_default"] is True and body[1]["is_default"] is False
    assert body[1]["id"] == ws_id
    assert set(body[0]) == {"id", "name", "created", "owner", "meta_data", "is_default"}
    assert body[0]["owner"] == body[1]["owner"]


def test_one_user_can_never_see_or_touch_another_users_things(live_server) -> None:
    alice = live_server.new_account()
    bob = live_server.new_account()
    with alice.client() as a, bob.client() as b:
        task = make_task(a, "alice's")
        label = make_label(a, "alice label")
        image = upload(a, image_bytes(500))
        alice_ws = task["workspace"]
        for path in (
            f"task/{task['id']}/",
            f"label/{label['id']}/",
            f"training-image/{image['id']}/",
        ):
            assert b.get(path).status_code == 404
            assert b.delete(path).status_code == 404
            assert b.patch(path, json={"name": "mine"}).status_code == 404
        assert b.get("task/", params={"workspace": alice_ws}).status_code == 404
        assert b.post("task/", json={"name": "x", "workspace": alice_ws}).status_code == 404
        r = b.post("training-image/", json={"base64": b64(image_bytes(501)), "workspace": alice_ws})
        assert r.status_code == 404
        assert (
            b.post(f"task/{task['id']}/add-label/", json={"label_id": label["id"]}).status_code
            == 404
        )
        own = make_task(b, "bob's")
        r = b.post(f"task/{own['id']}/add-label/", json={"label_id": label["id"]})
        assert r.status_code == 400 and "label_id" in r.json()
        r = b.post("training-image/update/", json={"images": [image["id"]], "mark-test": True})
        assert r.json() == {"count": 0}
        # Same bytes: no duplicate across users.
        assert b.post("training-image/", json={"base64": b64(image_bytes(500))}).status_code == 201
        assert b.get("task/").json()["count"] == 1
        assert b.get("training-image/").json()["count"] == 1
        # Alice's things are intact.
        assert a.get(f"task/{task['id']}/").json()["name"] == "alice's"
        assert a.get(f"training-image/{image['id']}/").json()["test_image"] is False


def test_objects_are_scoped_to_their_workspace(live_server, account) -> None:
    ws = live_server.create_workspace(account.username, "second")
    with account.client() as api:
        task = make_task(api, "in second", workspace=ws)
        assert task["workspace"] == ws
        # Named, the workspace is checked strictly (by id alone, the task is found:
        # tests/server/test_server_byid_workspace.py).
        r = api.get(f"task/{task['id']}/", params={"workspace": "Default"})
        assert r.status_code == 404
        assert api.get(f"task/{task['id']}/", params={"workspace": ws}).status_code == 200
        assert api.get("task/", params={"workspace": "Default"}).json()["count"] == 0
        assert api.get("task/", params={"workspace": ""}).json()["count"] == 0
        assert api.get("task/", params={"workspace": ws.upper()}).json()["count"] == 1
        label = make_label(api, "default label")
        r = api.post(
            f"task/{task['id']}/add-label/", json={"label_id": label["id"], "workspace": ws}
        )
        assert r.status_code == 400  # the label lives in the other workspace


# ---- error shapes ----------------------------------------------------------------------------


def test_unknown_routes_wrong_methods_and_bad_bodies_answer_json(api: httpx.Client) -> None:
    r = api.get("no-such-thing/")
    assert (r.status_code, r.json()) == (404, {"detail": "Not found."})
    r = httpx.get(str(api.base_url).replace("/recognition/v2/", "/nowhere"))
    assert (r.status_code, r.json()) == (404, {"detail": "Not found."})
    r = api.put("task/")
    assert (r.status_code, r.json()) == (405, {"detail": 'Method "PUT" not allowed.'})
    r = api.post("task/", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"].startswith("JSON parse error")
    r = api.post("task/", json=[1, 2])
    assert r.status_code == 400 and "non_field_errors" in r.json()
    r = api.post("task/", content=b"name=x", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "detail" in r.json()
    for page in ("abc", "0"):
        r = api.get("task/", params={"page": page})
        assert (r.status_code, r.json()) == (404, {"detail": "Invalid page."})
    r = api.get("task/not-a-uuid/")
    assert (r.status_code, r.json()) == (404, {"detail": "Task not found."})


# ---- labels ----------------------------------------------------------------------------------


def test_label_create_update_and_shape(api: httpx.Client) -> None:
    r = api.post("label/", data={"name": "Dog", "output_name": "dog!", "description": "d"})
    assert r.status_code == 201, r.text
    label = r.json()
    assert set(label) == {
        "id",
        "name",
        "type",
        "description",
        "output_name",
        "workspace",
        "images_count",
        "tasks_count",
        "objects_count",
        "negative_for_task",
        "created",
    }
    assert (label["type"], label["output_name"], label["images_count"]) == ("category", "dog!", 0)
    assert label["objects_count"] == 0  # no object detection here
    r = api.put(f"label/{label['id']}", json={"name": "Hound"})
    assert r.json()["name"] == "Hound" and r.json()["output_name"] == "dog!"
    r = api.patch(f"label/{label['id']}/", json={"output_name": None})
    assert r.json()["output_name"] is None
    r = api.put(f"label/{label['id']}/", json={"description": "x"})
    assert r.status_code == 400 and "name" in r.json()
    r = api.post("label/", json={"name": "bad", "type": "colour"})
    assert r.status_code == 400 and list(r.json()) == ["type"]


def test_label_filters_search_task_type(api: httpx.Client) -> None:
    task = make_task(api, "t")
    cats = [make_label(api, n) for n in ("Ärger", "ärgerlich", "Katze")]
    make_label(api, "Zebra", "tag")
    make_label(api, "weight", "value")
    for label in cats[:2]:
        assert (
            api.post(f"task/{task['id']}/add-label/", json={"label_id": label["id"]}).status_code
            == 200
        )

    def names(**params: object) -> list[str]:
        return [lab["name"] for lab in api.get("label/", params=params).json()["results"]]

    assert names(search="ÄRG") == ["Ärger", "ärgerlich"]
    assert names(search="e", page_size=2) == ["Ärger", "ärgerlich"]
    page2 = api.get("label/", params={"search": "e", "page_size": 2, "page": 2}).json()
    assert [lab["name"] for lab in page2["results"]] == ["Katze", "Zebra"]
    assert page2["count"] == 5
    assert names(task=task["id"]) == ["Ärger", "ärgerlich"]
    assert names(type="tag") == ["Zebra"]
    assert names(type="value", search="WEI") == ["weight"]
    r = api.get("label/", params={"type": "colour"})
    assert r.status_code == 400 and list(r.json()) == ["type"]
    r = api.get("label/", params={"task": "x"})
    assert r.status_code == 400 and list(r.json()) == ["task"]


def test_label_counts(api: httpx.Client) -> None:
    label = make_label(api, "counted")
    for t in range(2):
        task = make_task(api, f"t{t}")
        api.post(f"task/{task['id']}/add-label/", json={"label_id": label["id"]})
    for i in range(3):
        attach(api, upload(api, image_bytes(600 + i))["id"], label["id"])
    got = api.get(f"label/{label['id']}/").json()
    assert (got["images_count"], got["tasks_count"]) == (3, 2)
    listed = api.get("label/").json()["results"][0]
    assert (listed["images_count"], listed["tasks_count"]) == (3, 2)


# ---- models ----------------------------------------------------------------------------------


def _insert_model(
    live_server, task_id: str, version: int, status: str, accuracy: float | None
) -> str:
    """Models are made by training (a later release); insert one as it would."""
    model_id = str(uuid.uuid4())
    db = sqlite3.connect(live_server.data_dir / "server.db", timeout=10)
    try:
        with db:
            db.execute(
                "INSERT INTO models (id, task_id, version, train_status, accuracy, metrics, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    model_id,
                    task_id,
                    version,
                    status,
                    accuracy,
                    '{"f1": 0.5}',
                    "2024-01-01T00:00:00.000000Z",
                ),
            )
            if status == "TRAINED":
                db.execute(
                    "UPDATE tasks SET production_version = ?, last_train_status = ? WHERE id = ?",
                    (version, status, task_id),
                )
    finally:
        db.close()
    return model_id


def test_models_of_a_task(live_server, api: httpx.Client) -> None:
    task = make_task(api, "trained")
    other = make_task(api, "other")
    m1 = _insert_model(live_server, task["id"], 1, "TRAINED", 0.9)
    m2 = _insert_model(live_server, task["id"], 2, "ERROR", None)
    _insert_model(live_server, other["id"], 1, "TRAINED", 0.5)
    got = api.get(f"task/{task['id']}/").json()
    assert (got["production_version"], got["last_train_status"], got["accuracy"]) == (
        1,
        "TRAINED",
        0.9,
    )
    listed = api.get("model/", params={"task": task["id"]}).json()
    assert [m["version"] for m in listed["results"]] == [1, 2]
    first = listed["results"][0]
    assert first == api.get(f"model/{m1}").json()
    assert (first["task"], first["task_name"], first["train_status"]) == (
        task["id"],
        "trained",
        "TRAINED",
    )
    assert first["metrics"] == {"f1": 0.5}
    assert api.get("model/").json()["count"] == 3
    r = api.delete(f"model/{m1}/")
    assert r.status_code == 400  # the production version stays
    assert api.delete(f"model/{m2}").status_code == 204
    assert api.get(f"model/{m2}/").status_code == 404
    stranger = live_server.new_account()
    with stranger.client() as s:
        assert s.get(f"model/{m1}/").status_code == 404
        assert s.get("model/", params={"task": task["id"]}).json()["count"] == 0
