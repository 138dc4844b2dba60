"""The images of a task in the web interface (web/images.py), over HTTP against the real
server: the gallery's pages and filters, thumbnails behind the session with an ETag
(304), another user's workspace, task, image and thumbnail all 404, uploads of real
image bytes reported per file (added, duplicate, not an image), relabel and delete of
selected images as the API sees them, and a POST without the CSRF token refused."""

from __future__ import annotations

import re
from typing import Any

import httpx
from support.imagegen import image_bytes

from .webhelp import WebUser, hidden, make_task, new_web_user, signed_in_client


def upload(
    client: httpx.Client, base: str, files: list[tuple[str, bytes]], label: str = ""
) -> httpx.Response:
    csrf = hidden(client.get(base).text, "csrf_token", form_action=base + "/upload")
    return client.post(
        base + "/upload",
        data={"csrf_token": csrf, "label": label},
        files=[("files", (name, data, "image/jpeg")) for name, data in files],
    )


def gallery_ids(html: str) -> list[str]:
    return re.findall(r'name="image" value="([0-9a-f-]{36})"', html)


def test_upload_reports_each_file_and_the_gallery_filters_them(
    live_server: Any, web_user: WebUser
) -> None:
    task = make_task(live_server, web_user)
    base = f"/web/w/{task['workspace']}/tasks/{task['id']}/images"
    with signed_in_client(web_user) as client:
        empty = client.get(base)
        assert empty.status_code == 200 and "No images yet" in empty.text
        first = upload(
            client,
            base,
            [("a.jpg", image_bytes(1)), ("b.jpg", image_bytes(2))],
            task["labels"]["cat"],
        )
        assert first.status_code == 200
        assert first.text.count('class="upload-added"') == 2
        second = upload(
            client,
            base,
            [
                ("a-again.jpg", image_bytes(1)),
                ("notes.jpg", b"not an image at all"),
                ("c.jpg", image_bytes(3)),
            ],
        )
        assert "<strong>a-again.jpg</strong>: already in this workspace" in second.text
        assert "<strong>notes.jpg</strong>: not an image this server can read" in second.text
        assert "<strong>c.jpg</strong>: added" in second.text
        everything = client.get(base)
        assert "3 images." in everything.text
        cats = client.get(base, params={"show": task["labels"]["cat"]})
        assert "2 images." in cats.text and "a.jpg" in cats.text and "c.jpg" not in cats.text
        loose = client.get(base, params={"show": "unlabelled"})
        assert "1 image." in loose.text and "c.jpg" in loose.text
        found = client.get(base, params={"q": "B.JP"})
        assert "1 image." in found.text and "b.jpg" in found.text
        assert client.get(base, params={"show": "not-a-label"}).status_code == 400
        assert client.get(base, params={"page": "x"}).status_code == 400
    # What the API sees: the labels chosen up front, the file names in the metadata.
    with live_server.client(web_user.token) as api:
        listed = api.get("training-image/", params={"labels": task["labels"]["cat"]}).json()
        names = sorted(i["meta_data"]["original_file_name"] for i in listed["results"])
        assert names == ["a.jpg", "b.jpg"]


def test_the_gallery_pages_through_many_images(live_server: Any, web_user: WebUser) -> None:
    task = make_task(live_server, web_user)
    base = f"/web/w/{task['workspace']}/tasks/{task['id']}/images"
    with signed_in_client(web_user) as client:
        upload(client, base, [(f"{n}.jpg", image_bytes(100 + n)) for n in range(50)])
        one = client.get(base)
        assert "50 images, page 1 of 2." in one.text and len(gallery_ids(one.text)) == 48
        assert 'rel="next"' in one.text and 'rel="prev"' not in one.text
        two = client.get(base, params={"page": 2})
        assert len(gallery_ids(two.text)) == 2 and 'rel="prev"' in two.text
        assert not set(gallery_ids(one.text)) & set(gallery_ids(two.text))
        assert len(gallery_ids(client.get(base, params={"page": 3}).text)) == 0


def test_thumbnails_carry_an_etag_and_answer_304(live_server: Any, web_user: WebUser) -> None:
    task = make_task(live_server, web_user)
    base = f"/web/w/{task['workspace']}/tasks/{task['id']}/images"
    with signed_in_client(web_user) as client:
        upload(client, base, [("a.jpg", image_bytes(1, size=(400, 300)))], task["labels"]["cat"])
        [image_id] = gallery_ids(client.get(base).text)
        thumb = client.get(f"/web/w/{task['workspace']}/images/{image_id}/thumb")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert thumb.content[:2] == b"\xff\xd8"
        assert thumb.headers["cache-control"].startswith("private")
        etag = thumb.headers["etag"]
        again = client.get(
            f"/web/w/{task['workspace']}/images/{image_id}/thumb", headers={"If-None-Match": etag}
        )
        assert again.status_code == 304 and again.content == b""
        full = client.get(f"/web/w/{task['workspace']}/images/{image_id}/file")
        assert full.status_code == 200 and full.content == image_bytes(1, size=(400, 300))
        page = client.get(f"/web/w/{task['workspace']}/images/{image_id}")
        assert (
            page.status_code == 200 and "a.jpg" in page.text and "original_file_name" in page.text
        )
        history = page.text[page.text.index('id="image-history"') :]
        by = f"by {web_user.username}"
        assert history.index(f"labelled cat {by}") < history.index(f"uploaded {by}")
    # Signed out: no thumbnail.
    with httpx.Client(base_url=web_user.url, follow_redirects=False) as anonymous:
        answer = anonymous.get(f"/web/w/{task['workspace']}/images/{image_id}/thumb")
        assert answer.status_code == 303


def test_another_users_workspace_task_and_images_are_404(
    live_server: Any, web_user: WebUser
) -> None:
    task = make_task(live_server, web_user)
    base = f"/web/w/{task['workspace']}/tasks/{task['id']}/images"
    with signed_in_client(web_user) as client:
        upload(client, base, [("a.jpg", image_bytes(1))])
        [image_id] = gallery_ids(client.get(base).text)
    other = new_web_user(live_server)
    other_ws = live_server.create_workspace(other.username, "theirs")
    ws = task["workspace"]
    with signed_in_client(other) as client:
        for path in (
            base,
            f"/web/w/{ws}/images/{image_id}",
            f"/web/w/{ws}/images/{image_id}/thumb",
            f"/web/w/{ws}/images/{image_id}/file",
            f"/web/w/{other_ws}/tasks/{task['id']}/images",
            f"/web/w/{other_ws}/images/{image_id}",
            f"/web/w/{other_ws}/images/{image_id}/thumb",
            f"/web/w/{other_ws}/images/not-an-id",
        ):
            assert client.get(path).status_code == 404, path
        csrf = hidden(client.get("/web/").text, "csrf_token")
        refused = client.post(
            base + "/bulk", data={"csrf_token": csrf, "image": image_id, "action": "delete"}
        )
        assert refused.status_code == 404
    with live_server.client(web_user.token) as api:
        assert api.get(f"training-image/{image_id}/").status_code == 200


def test_relabel_and_delete_selected_images(live_server: Any, web_user: WebUser) -> None:
    task = make_task(live_server, web_user)
    base = f"/web/w/{task['workspace']}/tasks/{task['id']}/images"
    with signed_in_client(web_user) as client:
        upload(
            client, base, [(f"{n}.jpg", image_bytes(n)) for n in range(3)], task["labels"]["cat"]
        )
        ids = gallery_ids(client.get(base).text)
        csrf = hidden(client.get(base).text, "csrf_token", form_action=base + "/bulk")
        moved = client.post(
            base + "/bulk",
            data={
                "csrf_token": csrf,
                "image": ids[:2],
                "action": "relabel",
                "label": task["labels"]["dog"],
            },
        )
        assert moved.status_code == 303
        assert "Labelled 2 images dog." in client.get(moved.headers["location"]).text
        missing = client.post(
            base + "/bulk", data={"csrf_token": csrf, "image": ids[:1], "action": "relabel"}
        )
        assert missing.status_code == 400 and "Choose the label" in missing.text
        gone = client.post(
            base + "/bulk", data={"csrf_token": csrf, "image": ids[2], "action": "delete"}
        )
        assert gone.status_code == 303
        refused = client.post(base + "/bulk", data={"image": ids[0], "action": "delete"})
        assert refused.status_code == 403
        no_token = client.post(
            base + "/upload", files=[("files", ("x.jpg", image_bytes(9), "image/jpeg"))]
        )
        assert no_token.status_code == 403
    with live_server.client(web_user.token) as api:
        for image_id in ids[:2]:
            labels = [
                label["name"] for label in api.get(f"training-image/{image_id}/").json()["labels"]
            ]
            assert labels == ["dog"]
        assert api.get(f"training-image/{ids[2]}/").status_code == 404
        assert api.get(f"training-image/{ids[0]}/").status_code == 200


def test_tag_and_set_a_value_on_selected_images(live_server: Any, web_user: WebUser) -> None:
    tags = make_task(live_server, web_user, ("indoor", "night"), "multi_label")
    base = f"/web/w/{tags['workspace']}/tasks/{tags['id']}/images"
    with signed_in_client(web_user) as client:
        upload(client, base, [("a.jpg", image_bytes(1))], tags["labels"]["indoor"])
        [image_id] = gallery_ids(client.get(base).text)
        csrf = hidden(client.get(base).text, "csrf_token", form_action=base + "/bulk")
        page = client.get(base).text
        assert "Tag selected" in page and "Set value on selected" not in page
        tagged = client.post(
            base + "/bulk",
            data={
                "csrf_token": csrf,
                "image": image_id,
                "action": "relabel",
                "label": tags["labels"]["night"],
            },
        )
        assert tagged.status_code == 303
        score = make_task(live_server, web_user, ("score",), "regression")
        value_base = f"/web/w/{score['workspace']}/tasks/{score['id']}/images"
        assert "Set value on selected" in client.get(value_base).text
        form = {"csrf_token": csrf, "image": image_id, "action": "value"}
        form["label"] = score["labels"]["score"]
        bad = client.post(value_base + "/bulk", data={**form, "value": "lots"})
        assert bad.status_code == 400
        assert 'id="bulk-value-error">Enter the value as a number' in bad.text
        not_value = client.post(
            base + "/bulk", data={**form, "label": tags["labels"]["night"], "value": "2"}
        )
        assert not_value.status_code == 400 and "Only a value label takes a value" in not_value.text
        done = client.post(value_base + "/bulk", data={**form, "value": "2.5"})
        assert done.status_code == 303 and "2.5" in client.get(done.headers["location"]).text
    with live_server.client(web_user.token) as api:
        labels = api.get(f"training-image/{image_id}/").json()["labels"]
        assert {label["name"] for label in labels} == {"indoor", "night", "score"}
        assert [label["value"] for label in labels if label["name"] == "score"] == [2.5]


def test_a_full_disk_is_reported_per_file_not_as_a_bad_image(
    server_factory: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    """The upload form names the real reason (the API's 507, issue 20) and stores
    nothing; the fault is injected into the server process (tests/support/diskfull)."""
    import os
    from pathlib import Path

    faults = Path(__file__).resolve().parents[1] / "support" / "diskfull"
    flag = tmp_path / "disk-is-full"
    monkeypatch.setenv("LOCALREPO_TEST_DISK_FULL", str(flag))
    monkeypatch.setenv("PYTHONPATH", f"{faults}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    server = server_factory()
    user = new_web_user(server)
    task = make_task(server, user)
    base = f"/web/w/{task['workspace']}/tasks/{task['id']}/images"
    flag.touch()
    with signed_in_client(user) as client:
        answer = upload(client, base, [("full.jpg", image_bytes(41))])
        assert "<strong>full.jpg</strong>: not stored:" in answer.text
        assert "disk is full" in answer.text
        assert "not an image this server can read" not in answer.text
        flag.unlink()
        again = upload(client, base, [("full.jpg", image_bytes(41))])
        assert "<strong>full.jpg</strong>: added" in again.text
