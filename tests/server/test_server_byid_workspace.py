"""By-id routes need no workspace (issue 21, gap 1; docs/api.md "Workspaces").

An object in a non-default workspace is found by its id alone, through the official SDK
and over raw HTTP; naming a workspace keeps the strict check; another user's id stays a
404 either way.
"""

from __future__ import annotations

import base64

from ximilar.client import RecognitionClient

from .helpers import image_bytes as noise
from .helpers import make_label, make_task, upload


def _sdk(account, **kwargs: object) -> RecognitionClient:
    return RecognitionClient(
        token=account.token, endpoint=account.url, resource_name=None, **kwargs
    )


def test_sdk_reaches_objects_of_another_workspace_by_id(live_server, account) -> None:
    ws = live_server.create_workspace(account.username, "project b")
    in_ws = _sdk(account, workspace=ws)
    task, _ = in_ws.create_task("in b")
    label, _ = in_ws.create_label("cat")
    (image,), status = in_ws.upload_images([{"_base64": base64.b64encode(noise(4101))}])
    assert status["status"] == "OK" and image.workspace == ws

    plain = _sdk(account)  # the default workspace: the SDK sends none
    found, _ = plain.get_task(task.id)
    assert found is not None and found.name == "in b"
    found_label, _ = plain.get_label(label.id)
    assert found_label is not None and found_label.name == "cat"
    answer = plain.add_label_to_image(image.id, label.id)
    assert answer["id"] == image.id, answer
    got, _ = plain.get_image(image.id)
    assert [x.name for x in got.get_labels()[0]] == ["cat"]
    # What the SDK's add_label did is visible in the workspace itself.
    with account.client() as api:
        r = api.get(f"training-image/{image.id}/", params={"workspace": ws})
        assert [x["name"] for x in r.json()["labels"]] == ["cat"]


def test_every_by_id_route_finds_the_workspace(live_server, account) -> None:
    ws = live_server.create_workspace(account.username, "second")
    with account.client() as api:
        task = make_task(api, "t", workspace=ws)
        label = make_label(api, "dog", workspace=ws)
        image = upload(api, noise(4102), workspace=ws)
        tid, lid, iid = task["id"], label["id"], image["id"]

        assert api.get(f"task/{tid}/").json()["workspace"] == ws
        assert api.patch(f"task/{tid}/", json={"description": "d"}).status_code == 200
        r = api.post(f"task/{tid}/add-label/", json={"label_id": lid})
        assert r.status_code == 200, r.text
        assert api.get(f"label/{lid}/").json()["name"] == "dog"
        assert api.patch(f"label/{lid}/", json={"description": "woof"}).status_code == 200
        r = api.post(f"training-image/{iid}/add-label/", json={"label_id": lid})
        assert r.status_code == 200, r.text
        assert api.get(f"training-image/{iid}/").json()["labels"][0]["id"] == lid
        r = api.post(f"training-image/{iid}/remove-label/", json={"label_id": lid})
        assert r.status_code == 200, r.text
        r = api.patch(f"training-image/{iid}/", json={"meta_data": {"k": 1}})
        assert r.status_code == 200 and r.json()["meta_data"] == {"k": 1}
        # Training is refused for too few images, not for a missing task.
        r = api.post(f"task/{tid}/train/")
        assert r.status_code != 404, r.text
        # The model route: an unknown model id is a 404 with no workspace named too.
        assert api.get("model/00000000-0000-4000-8000-000000000000/").status_code == 404

        # A named workspace keeps the strict check, "Default" included.
        assert api.get(f"task/{tid}/", params={"workspace": "Default"}).status_code == 404
        r = api.post(
            f"training-image/{iid}/add-label/", json={"label_id": lid, "workspace": "Default"}
        )
        assert r.status_code == 404
        assert api.get(f"label/{lid}/", params={"workspace": ws}).status_code == 200

        # Deletions by id alone reach it as well, and it is gone from its workspace.
        assert api.delete(f"training-image/{iid}/").status_code == 204
        assert api.get(f"training-image/{iid}/", params={"workspace": ws}).status_code == 404
        assert api.delete(f"label/{lid}/").status_code == 204
        assert api.delete(f"task/{tid}/").status_code == 204
        assert api.get("task/", params={"workspace": ws}).json()["count"] == 0


def test_another_users_ids_stay_hidden_without_a_workspace(live_server, account) -> None:
    other = live_server.new_account()
    ws = live_server.create_workspace(other.username, "theirs")
    with other.client() as theirs:
        task = make_task(theirs, "private", workspace=ws)
        label = make_label(theirs, "secret", workspace=ws)
        image = upload(theirs, noise(4103), workspace=ws)
    with account.client() as api:
        for path in (
            f"task/{task['id']}/",
            f"label/{label['id']}/",
            f"training-image/{image['id']}/",
        ):
            r = api.get(path)
            assert r.status_code == 404, path
        r = api.post(f"training-image/{image['id']}/add-label/", json={"label_id": label["id"]})
        assert r.status_code == 404
        assert api.delete(f"task/{task['id']}/").status_code == 404
    with other.client() as theirs:
        assert theirs.get(f"task/{task['id']}/").status_code == 200
