"""The task pages over HTTP against the real server: tasks listed (type, image count,
production version, accuracy), created, renamed and deleted (after typing the name);
a task's labels created, renamed, attached and detached; the errors next to their
fields; every form CSRF-checked; another user's workspace and task answer 404. What the
pages change is what the API then answers. The browser's view: test_tasks_browser.py."""

from __future__ import annotations

import base64
import re
from html import unescape
from typing import Any

import httpx
from support.imagegen import image_bytes

from .webhelp import WebUser, hidden, new_web_user, signed_in_client


def default_ws(user: WebUser) -> str:
    with httpx.Client(base_url=user.url, timeout=30.0) as api:
        answer = api.get("account/v2/workspace/", headers={"Authorization": f"Token {user.token}"})
        [ws] = [w["id"] for w in answer.json() if w["is_default"]]
        return str(ws)


def api(user: WebUser) -> httpx.Client:
    return httpx.Client(
        base_url=user.url + "recognition/v2/",
        headers={"Authorization": f"Token {user.token}"},
        timeout=30.0,
    )


def csrf(client: httpx.Client, url: str) -> str:
    answer = client.get(url)
    assert answer.status_code == 200, answer.text
    return hidden(answer.text, "csrf_token")


def create(client: httpx.Client, ws: str, name: str, task_type: str = "multi_class") -> str:
    url = f"/web/w/{ws}/tasks"
    made = client.post(url, data={"csrf_token": csrf(client, url), "name": name, "type": task_type})
    assert made.status_code == 303, made.text
    found = re.fullmatch(rf"/web/w/{ws}/tasks/([0-9a-f-]+)", made.headers["location"])
    assert found, made.headers["location"]
    return found.group(1)


def label_ids(user: WebUser, task_id: str) -> dict[str, str]:
    with api(user) as client:
        answer = client.get("label/", params={"task": task_id}).json()
        return {lb["name"]: lb["id"] for lb in answer["results"]}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def labelled_images(user: WebUser, label_id: str, count: int, seed: int) -> None:
    with api(user) as client:
        for k in range(count):
            body = {"base64": b64(image_bytes(seed + k)), "noresize": True}
            image = client.post("training-image/", json=body).json()
            added = client.post(
                f"training-image/{image['id']}/add-label/", json={"label_id": label_id}
            )
            assert added.status_code == 200, added.text


def test_create_list_rename_and_delete_a_task(live_server: Any, web_user: WebUser) -> None:
    ws = default_ws(web_user)
    with signed_in_client(web_user) as client:
        empty = client.get(f"/web/w/{ws}/tasks")
        assert empty.status_code == 200
        assert "No tasks yet: create one here" in empty.text
        assert "repo init --task NAME --remote URL" in empty.text
        task_id = create(client, ws, "Birds")
        listed = client.get(f"/web/w/{ws}/tasks").text
        assert f'href="/web/w/{ws}/tasks/{task_id}">Birds<' in listed and "multi_class" in listed
        with api(web_user) as a:
            assert a.get(f"task/{task_id}/").json()["name"] == "Birds"
        page = client.get(f"/web/w/{ws}/tasks/{task_id}")
        for area in ("images", "training", "evaluation"):
            assert f'href="/web/w/{ws}/tasks/{task_id}/{area}"' in page.text
        token = hidden(page.text, "csrf_token")
        renamed = client.post(
            f"/web/w/{ws}/tasks/{task_id}/rename",
            data={"csrf_token": token, "name": "Garden birds"},
        )
        assert renamed.status_code == 303
        assert "Garden birds" in client.get(renamed.headers["location"]).text
        with api(web_user) as a:
            assert a.get(f"task/{task_id}/").json()["name"] == "Garden birds"

        confirm = client.get(f"/web/w/{ws}/tasks/{task_id}/delete")
        assert confirm.status_code == 200 and "0 images" in confirm.text
        wrong = client.post(
            f"/web/w/{ws}/tasks/{task_id}/delete",
            data={"csrf_token": token, "confirm_name": "Garden"},
        )
        assert wrong.status_code == 400 and 'id="confirm_name-error"' in wrong.text
        with api(web_user) as a:
            assert a.get(f"task/{task_id}/").status_code == 200
        gone = client.post(
            f"/web/w/{ws}/tasks/{task_id}/delete",
            data={"csrf_token": token, "confirm_name": "Garden birds"},
        )
        assert gone.status_code == 303
        after = client.get(gone.headers["location"]).text
        assert "The task “Garden birds” was deleted." in after and "No tasks yet" in after
        with api(web_user) as a:
            assert a.get(f"task/{task_id}/").status_code == 404
        assert client.get(f"/web/w/{ws}/tasks/{task_id}").status_code == 404


def test_the_list_shows_image_counts_and_the_delete_page_counts_them(
    live_server: Any, web_user: WebUser
) -> None:
    ws = default_ws(web_user)
    with signed_in_client(web_user) as client:
        task_id = create(client, ws, "Shapes")
        base = f"/web/w/{ws}/tasks/{task_id}"
        token = csrf(client, base)
        for name in ("circle", "square"):
            made = client.post(base + "/labels", data={"csrf_token": token, "name": name})
            assert made.status_code == 303, made.text
        ids = label_ids(web_user, task_id)
        labelled_images(web_user, ids["circle"], 3, seed=10)
        labelled_images(web_user, ids["square"], 2, seed=20)
        row = re.search(
            r"Shapes</a></td>\s*<td>multi_class</td>\s*<td>(\d+)</td>\s*<td>([^<]*)</td>",
            client.get(f"/web/w/{ws}/tasks").text,
        )
        assert row and row.group(1) == "5" and row.group(2) == "none yet"
        page = client.get(base).text
        assert re.search(r'>circle</summary>.*?class="label-images">3<', page, re.S)
        assert re.search(r'>square</summary>.*?class="label-images">2<', page, re.S)
        assert "5 images" in client.get(base + "/delete").text


def test_labels_create_rename_attach_and_detach(live_server: Any, web_user: WebUser) -> None:
    ws = default_ws(web_user)
    with signed_in_client(web_user) as client:
        first = create(client, ws, "Pets")
        second = create(client, ws, "Animals")
        base = f"/web/w/{ws}/tasks/{first}"
        token = csrf(client, base)
        assert (
            client.post(base + "/labels", data={"csrf_token": token, "name": "cat"}).status_code
            == 303
        )
        cat = label_ids(web_user, first)["cat"]
        renamed = client.post(
            f"{base}/labels/{cat}/rename", data={"csrf_token": token, "name": "kitten"}
        )
        assert renamed.status_code == 303
        assert label_ids(web_user, first) == {"kitten": cat}

        # The second task offers the workspace's label to attach; attaching links the same label.
        other = f"/web/w/{ws}/tasks/{second}"
        offered = client.get(other).text
        assert f'<option value="{cat}">kitten (0 images)</option>' in offered
        attached = client.post(
            other + "/labels/attach", data={"csrf_token": token, "label_id": cat}
        )
        assert attached.status_code == 303
        assert label_ids(web_user, second) == {"kitten": cat}
        # Creating a label by the name of a free workspace label attaches that one.
        client.post(base + "/labels", data={"csrf_token": token, "name": "dog"})
        dog = label_ids(web_user, first)["dog"]
        again = client.post(other + "/labels", data={"csrf_token": token, "name": "DOG"})
        assert again.status_code == 303 and "was+attached" in again.headers["location"]
        assert label_ids(web_user, second) == {"kitten": cat, "dog": dog}

        # Detaching a label without images is immediate; with images it asks first.
        gone = client.post(f"{other}/labels/{dog}/detach", data={"csrf_token": token})
        assert gone.status_code == 303 and label_ids(web_user, second) == {"kitten": cat}
        labelled_images(web_user, cat, 2, seed=40)
        asks = client.post(f"{base}/labels/{cat}/detach", data={"csrf_token": token})
        assert asks.status_code == 400 and "2 images" in asks.text
        assert label_ids(web_user, first) == {"kitten": cat, "dog": dog}
        confirm = client.get(f"{base}/labels/{cat}/detach")
        assert confirm.status_code == 200 and 'name="confirm" value="yes"' in confirm.text
        done = client.post(
            f"{base}/labels/{cat}/detach", data={"csrf_token": token, "confirm": "yes"}
        )
        assert done.status_code == 303 and label_ids(web_user, first) == {"dog": dog}
        assert client.get(f"{base}/labels/{cat}/detach").status_code == 404


def test_a_regression_task_takes_value_labels(live_server: Any, web_user: WebUser) -> None:
    ws = default_ws(web_user)
    with signed_in_client(web_user) as client:
        task_id = create(client, ws, "Ripeness", task_type="regression")
        base = f"/web/w/{ws}/tasks/{task_id}"
        page = client.get(base).text
        assert "New value label" in page
        made = client.post(
            base + "/labels", data={"csrf_token": hidden(page, "csrf_token"), "name": "ripeness"}
        )
        assert made.status_code == 303
        with api(web_user) as a:
            [label] = a.get("label/", params={"task": task_id}).json()["results"]
        assert label["name"] == "ripeness" and label["type"] == "value"


def test_form_errors_are_shown_next_to_their_fields(live_server: Any, web_user: WebUser) -> None:
    ws = default_ws(web_user)
    url = f"/web/w/{ws}/tasks"
    with signed_in_client(web_user) as client:
        task_id = create(client, ws, "Flowers")
        token = csrf(client, url)
        for data, field, message in (
            ({"name": "", "type": "multi_class"}, "name", "Enter the task's name."),
            ({"name": "flowers", "type": "multi_class"}, "name", "already a task named"),
            ({"name": "Trees", "type": "segmentation"}, "type", "Choose one of the task types"),
        ):
            refused = client.post(url, data={"csrf_token": token, **data})
            assert refused.status_code == 400
            assert re.search(
                rf'id="{field}-error" class="error">[^<]*{re.escape(message)}',
                unescape(refused.text),
            )
            assert f"aria-describedby={field}-error" in refused.text
        with api(web_user) as a:
            assert [t["name"] for t in a.get("task/").json()["results"]] == ["Flowers"]

        base = f"{url}/{task_id}"
        client.post(base + "/labels", data={"csrf_token": token, "name": "rose"})
        for data, action, field in (
            ({"name": ""}, "/rename", "rename"),
            ({"name": "   "}, "/labels", "label_name"),
            ({"name": "Rose"}, "/labels", "label_name"),
            ({"label_id": "nope"}, "/labels/attach", "label_id"),
        ):
            refused = client.post(base + action, data={"csrf_token": token, **data})
            assert refused.status_code == 400, (action, refused.text)
            assert f'id="{field}-error" class="error"' in refused.text
        rose = label_ids(web_user, task_id)["rose"]
        create_label = client.post(base + "/labels", data={"csrf_token": token, "name": "tulip"})
        assert create_label.status_code == 303
        dup = client.post(
            f"{base}/labels/{rose}/rename", data={"csrf_token": token, "name": "TULIP"}
        )
        assert dup.status_code == 400 and f'id="label-{rose}-error"' in dup.text
        assert set(label_ids(web_user, task_id)) == {"rose", "tulip"}
        # htmx swaps only a 2xx answer: the same errors come with 200 to it.
        hx = client.post(
            base + "/rename", data={"csrf_token": token, "name": ""}, headers={"HX-Request": "true"}
        )
        assert hx.status_code == 200 and 'id="rename-error"' in hx.text


def test_every_form_needs_the_session_token(live_server: Any, web_user: WebUser) -> None:
    ws = default_ws(web_user)
    with signed_in_client(web_user) as client:
        task_id = create(client, ws, "Keep me")
        base = f"/web/w/{ws}/tasks/{task_id}"
        token = csrf(client, base)
        client.post(base + "/labels", data={"csrf_token": token, "name": "keep"})
        keep = label_ids(web_user, task_id)["keep"]
        for url, data in (
            (f"/web/w/{ws}/tasks", {"name": "sneaky", "type": "multi_class"}),
            (base + "/rename", {"name": "sneaky"}),
            (base + "/delete", {"confirm_name": "Keep me"}),
            (base + "/labels", {"name": "sneaky"}),
            (f"{base}/labels/{keep}/rename", {"name": "sneaky"}),
            (f"{base}/labels/{keep}/detach", {"confirm": "yes"}),
        ):
            assert client.post(url, data=data).status_code == 403, url
            assert client.post(url, data={**data, "csrf_token": "forged"}).status_code == 403, url
    with api(web_user) as a:
        assert [t["name"] for t in a.get("task/").json()["results"]] == ["Keep me"]
    assert label_ids(web_user, task_id) == {"keep": keep}


def test_another_users_workspace_and_task_answer_404(live_server: Any, web_user: WebUser) -> None:
    victim = new_web_user(live_server)
    their_ws = default_ws(victim)
    with signed_in_client(victim) as theirs:
        their_task = create(theirs, their_ws, "Private")
        base = f"/web/w/{their_ws}/tasks/{their_task}"
        theirs.post(base + "/labels", data={"csrf_token": csrf(theirs, base), "name": "secret"})
    secret = label_ids(victim, their_task)["secret"]
    my_ws = default_ws(web_user)
    with signed_in_client(web_user) as client:
        token = csrf(client, f"/web/w/{my_ws}/tasks")
        mine = create(client, my_ws, "Mine")
        for url in (
            f"/web/w/{their_ws}/tasks",
            base,
            base + "/delete",
            f"{base}/labels/{secret}/detach",
            f"/web/w/{my_ws}/tasks/{their_task}",  # their task under my workspace
            f"/web/w/{my_ws}/tasks/{mine}/labels/{secret}/detach",  # their label on my task
            f"/web/w/{my_ws}/tasks/not-an-id",
            "/web/w/nothing/tasks",
        ):
            answer = client.get(url)
            assert answer.status_code == 404, url
            assert "Private" not in answer.text and "secret" not in answer.text
        for url, data in (
            (f"/web/w/{their_ws}/tasks", {"name": "planted", "type": "multi_class"}),
            (base + "/rename", {"name": "taken"}),
            (base + "/delete", {"confirm_name": "Private"}),
            (base + "/labels", {"name": "planted"}),
            (f"{base}/labels/{secret}/rename", {"name": "taken"}),
            (f"{base}/labels/{secret}/detach", {"confirm": "yes"}),
            (f"/web/w/{my_ws}/tasks/{mine}/labels/attach", {"label_id": secret}),
        ):
            answer = client.post(url, data={"csrf_token": token, **data})
            assert answer.status_code in (400, 404), url
            assert "secret" not in answer.text
    with api(victim) as a:
        assert [t["name"] for t in a.get("task/").json()["results"]] == ["Private"]
    assert label_ids(victim, their_task) == {"secret": secret}
    assert label_ids(web_user, mine) == {}


def test_the_nav_and_the_home_page_lead_to_the_task_list(
    live_server: Any, web_user: WebUser
) -> None:
    ws = default_ws(web_user)
    other = live_server.create_workspace(web_user.username, "Field photos")
    with signed_in_client(web_user) as client:
        to_list = client.get("/web/tasks")
        assert to_list.status_code == 303 and to_list.headers["location"] == f"/web/w/{ws}/tasks"
        home = client.get("/web/").text
        assert f'href="/web/w/{ws}/tasks">Default</a>' in home
        assert f'href="/web/w/{other}/tasks">Field photos</a>' in home
        listed = client.get(f"/web/w/{other}/tasks").text
        assert "in Field photos" in listed and f'href="/web/w/{ws}/tasks"' in listed
    with httpx.Client(base_url=live_server.url) as anonymous:
        answer = anonymous.get(f"/web/w/{ws}/tasks")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/web/sign-in")


def test_a_notice_shows_only_when_this_server_said_it(live_server: Any, web_user: WebUser) -> None:
    ws = default_ws(web_user)
    with signed_in_client(web_user) as client:
        task_id = create(client, ws, "Notices")
        base = f"/web/w/{ws}/tasks/{task_id}"
        renamed = client.post(
            base + "/rename", data={"csrf_token": csrf(client, base), "name": "Said"}
        )
        assert "The task is now named “Said”." in client.get(renamed.headers["location"]).text
        forged = client.get(
            base, params={"notice": "Your session ended: go to evil.example", "sig": "0" * 32}
        )
        assert forged.status_code == 200 and "evil.example" not in forged.text
    with signed_in_client(web_user) as other_session:  # another session's signature: not valid
        assert "now named" not in other_session.get(renamed.headers["location"]).text


def test_a_multi_label_tasks_negative_label_is_listed_but_not_editable(
    live_server: Any, web_user: WebUser
) -> None:
    ws = default_ws(web_user)
    with signed_in_client(web_user) as client:
        task_id = create(client, ws, "Colours", task_type="multi_label")
        base = f"/web/w/{ws}/tasks/{task_id}"
        page = client.get(base).text
        assert "Colours (negative)" in page and "images with none of the tags" in page
        negative = label_ids(web_user, task_id)["Colours (negative)"]
        assert f"/labels/{negative}/" not in page
        token = hidden(page, "csrf_token")
        for action in ("rename", "detach"):
            refused = client.post(
                f"{base}/labels/{negative}/{action}",
                data={"csrf_token": token, "name": "x", "confirm": "yes"},
            )
            assert refused.status_code == 404
        made = client.post(base + "/labels", data={"csrf_token": token, "name": "red"})
        assert made.status_code == 303
        with api(web_user) as a:
            kinds = {
                lb["name"]: lb["type"]
                for lb in a.get("label/", params={"task": task_id}).json()["results"]
            }
        assert kinds == {"Colours (negative)": "tag", "red": "tag"}


def test_a_trained_task_shows_its_production_version_and_accuracy(
    live_server: Any, web_user: WebUser
) -> None:
    from server.trainhelp import multi_class_task, train

    ws = default_ws(web_user)
    with api(web_user) as client:
        task, _ = multi_class_task(client, name="trained")
        model = train(client, task["id"])
        assert model["train_status"] == "TRAINED", model
        answer = client.get(f"task/{task['id']}/").json()
    assert answer["production_version"] == 1
    shown = f"{answer['accuracy'] * 100:.1f} %"
    with signed_in_client(web_user) as web:
        row = re.search(
            r">trained</a></td>\s*<td>multi_class</td>\s*<td>(\d+)</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>",
            web.get(f"/web/w/{ws}/tasks").text,
        )
        assert row and row.groups() == ("18", "1", shown)
        assert shown in web.get(f"/web/w/{ws}/tasks/{task['id']}").text
