"""The loop with the folders: a relabel and an upload made in the web gallery reach a
clone's folders at its next `repo sync` (the real CLI in a subprocess), and a file
added to the clone appears in the gallery after its sync."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.synchelp import World, image_hash, img

from .webhelp import WebUser, hidden, signed_in_client


def test_gallery_changes_reach_the_clone_and_back(
    live_server: Any, web_user: WebUser, tmp_path: Path
) -> None:
    world = World(web_user.url, web_user.token, tmp_path)
    try:
        clone = world.init("a", "pets")
        clone.write("cat/one.jpg", 1)
        clone.write("dog/two.jpg", 2)
        clone.sync()
        task_id = clone.remote_task_id()
        with live_server.client(web_user.token) as api:
            task = api.get(f"task/{task_id}/").json()
            names = {api.get(f"label/{i}/").json()["name"]: i for i in task["labels"]}
            listed = api.get("training-image/").json()["results"]
            ids = {i["meta_data"]["original_file_name"]: i["id"] for i in listed}
        base = f"/web/w/{task['workspace']}/tasks/{task_id}/images"
        with signed_in_client(web_user) as client:
            csrf = hidden(client.get(base).text, "csrf_token", form_action=base + "/bulk")
            moved = client.post(
                base + "/bulk",
                data={
                    "csrf_token": csrf,
                    "image": ids["one.jpg"],
                    "action": "relabel",
                    "label": names["dog"],
                },
            )
            assert moved.status_code == 303
            added = client.post(
                base + "/upload",
                data={"csrf_token": csrf, "label": names["cat"]},
                files=[("files", ("three.jpg", img(3), "image/jpeg"))],
            )
            assert "<strong>three.jpg</strong>: added" in added.text

        clone.sync()
        tree = clone.tree()
        assert tree["dog/one.jpg"] == image_hash(1)
        assert tree["dog/two.jpg"] == image_hash(2)
        assert tree["cat/three.jpg"] == image_hash(3)
        assert len(tree) == 3
        clone.verify()

        clone.write("cat/four.jpg", 4)
        clone.sync()
        with signed_in_client(web_user) as client:
            found = client.get(base, params={"show": names["cat"]})
            assert "2 images." in found.text
            assert "four.jpg" in found.text and "three.jpg" in found.text
    finally:
        world.remote.close()
