"""The label chosen up front at a web upload lands in the image's own transaction
(data/images.py ``insert_labelled_image``): a label deleted or detached between showing
the form and uploading is refused by name with nothing stored, and a fault in the
label's link rolls the image (and its bytes) back, so no upload leaves an unlabelled
image behind. Real server over HTTP, real SQLite file, real image bytes; the fault is a
SQLite trigger on the server's own database."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.imagegen import image_bytes

from localrepo.server.data import images
from localrepo.server.data.db import Database
from localrepo.server.data.tables import now_iso
from localrepo.server.errors import APIError

from .test_images import gallery_ids, upload
from .webhelp import WebUser, make_task, new_web_user, signed_in_client


def gallery_url(task: dict[str, Any]) -> str:
    return f"/web/w/{task['workspace']}/tasks/{task['id']}/images"


def api_images(server: Any, user: WebUser) -> int:
    with server.client(user.token) as api:
        return int(api.get("training-image/").json()["count"])


def test_a_label_deleted_after_the_form_was_shown_is_refused_and_nothing_stored(
    live_server: Any, web_user: WebUser
) -> None:
    task = make_task(live_server, web_user)
    base = gallery_url(task)
    with signed_in_client(web_user) as client:
        csrf_page = client.get(base)  # the form, offering cat
        assert task["labels"]["cat"] in csrf_page.text
        with live_server.client(web_user.token) as api:
            assert api.delete(f"label/{task['labels']['cat']}/").status_code == 204
        answer = upload(client, base, [("a.jpg", image_bytes(31))], task["labels"]["cat"])
        assert answer.status_code == 400
        assert 'id="upload-label-error"' in answer.text
        assert "no longer exists (it was deleted meanwhile)" in answer.text
        assert gallery_ids(client.get(base).text) == []
    assert api_images(live_server, web_user) == 0


def test_a_label_detached_from_the_task_is_named_and_nothing_stored(
    live_server: Any, web_user: WebUser
) -> None:
    task = make_task(live_server, web_user)
    base = gallery_url(task)
    with signed_in_client(web_user) as client:
        with live_server.client(web_user.token) as api:
            detached = api.post(
                f"task/{task['id']}/remove-label/", json={"label_id": task["labels"]["dog"]}
            )
            assert detached.status_code == 200, detached.text
        answer = upload(client, base, [("a.jpg", image_bytes(32))], task["labels"]["dog"])
        assert answer.status_code == 400
        assert "“dog” is no longer one of this task&#39;s labels" in answer.text
    assert api_images(live_server, web_user) == 0


def test_the_data_layer_refuses_an_image_whose_label_is_gone(
    live_server: Any, web_user: WebUser
) -> None:
    """The race the form's check cannot see (deleted after it): the insert itself
    refuses, in the image's transaction."""
    task = make_task(live_server, web_user)
    row = {
        "id": str(uuid.uuid4()),
        "created": now_iso(),
        "workspace_id": task["workspace"],
        "upload_sha256": "0" * 64,
        "blob_sha256": "0" * 64,
        "media_key": uuid.uuid4().hex,
        "extension": ".jpg",
        "content_type": "image/jpeg",
        "size_bytes": 1,
        "img_width": 1,
        "img_height": 1,
        "meta_data": "{}",
        "test_image": False,
        "real": True,
    }
    db = Database(live_server.database_url)
    try:
        with pytest.raises(APIError) as refused:
            images.insert_labelled_image(db, row, str(uuid.uuid4()), user_id=None)
        assert refused.value.status == 400 and "label" in refused.value.body
        assert images.get_image(db, task["workspace"], row["id"], "/media/") is None
        # Another workspace's label is as good as gone.
        other = make_task(live_server, new_web_user(live_server))
        with pytest.raises(APIError):
            images.insert_labelled_image(db, row, other["labels"]["cat"], user_id=None)
        assert images.get_image(db, task["workspace"], row["id"], "/media/") is None
    finally:
        db.dispose()


def test_a_fault_in_the_label_link_rolls_the_image_back(
    server_factory: Any, tmp_path: Path
) -> None:
    database = tmp_path / "fault.db"
    server = server_factory(database_url=f"sqlite:///{database}")
    user = new_web_user(server)
    task = make_task(server, user)
    base = gallery_url(task)
    data = image_bytes(33, size=(80, 60))
    fault = sqlite3.connect(database, isolation_level=None, timeout=30)
    try:
        fault.execute(
            "CREATE TRIGGER injected_fault BEFORE INSERT ON image_labels "
            "BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
        )
        with signed_in_client(user) as client:
            failed = upload(client, base, [("a.jpg", data)], task["labels"]["cat"])
            assert failed.status_code >= 500  # the server's fault, not the user's
            assert api_images(server, user) == 0
            blobs = [p for p in (server.data_dir / "blobs").rglob("*") if p.is_file()]
            assert blobs == []  # its bytes went with it
            fault.execute("DROP TRIGGER injected_fault")
            # Not a duplicate of a half-stored image: it uploads, labelled.
            again = upload(client, base, [("a.jpg", data)], task["labels"]["cat"])
            assert again.status_code == 200 and again.text.count('class="upload-added"') == 1
            assert [p for p in (server.data_dir / "blobs").rglob("*") if p.is_file()]
    finally:
        fault.close()
    with server.client(user.token) as api:
        [image] = api.get("training-image/").json()["results"]
        assert [label["name"] for label in image["labels"]] == ["cat"]


def test_without_a_label_the_upload_is_stored_unlabelled(
    live_server: Any, web_user: WebUser
) -> None:
    task = make_task(live_server, web_user)
    base = gallery_url(task)
    with signed_in_client(web_user) as client:
        answer = upload(client, base, [("plain.jpg", image_bytes(34))])
        assert answer.status_code == 200 and answer.text.count('class="upload-added"') == 1
    with httpx.Client(base_url=live_server.api_url, timeout=30.0) as api:
        found = api.get(
            "training-image/", headers={"Authorization": f"Token {web_user.token}"}
        ).json()
    assert [image["labels"] for image in found["results"]] == [[]]


def test_images_uploaded_as_test_images_are_never_trained_on(
    live_server: Any, web_user: WebUser
) -> None:
    task = make_task(live_server, web_user)
    base = gallery_url(task)
    with signed_in_client(web_user) as client:
        csrf = client.get(base).text.split('name="csrf_token" value="')[1].split('"')[0]
        answer = client.post(
            base + "/upload",
            data={"csrf_token": csrf, "label": task["labels"]["dog"], "test_image": "1"},
            files=[("files", ("held-out.jpg", image_bytes(35), "image/jpeg"))],
        )
        assert answer.status_code == 200 and answer.text.count('class="upload-added"') == 1
        [image_id] = gallery_ids(client.get(base).text)
        shown = client.get(f"/web/w/{task['workspace']}/images/{image_id}").text
        assert "· test image" in shown
    with live_server.client(web_user.token) as api:
        image = api.get(f"training-image/{image_id}/").json()
    assert image["test_image"] is True
    assert [label["name"] for label in image["labels"]] == ["dog"]
