"""The official SDK (ximilar-client, RecognitionClient) against a real localrepo-server.

`resource_name=None` skips the SDK's licence check, which otherwise calls the hosted
service's authorize endpoint for any endpoint that does not contain "localhost".
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
from ximilar.client import RecognitionClient

from .helpers import image_bytes


def _client(account, **kwargs: object) -> RecognitionClient:
    return RecognitionClient(
        token=account.token, endpoint=account.url, resource_name=None, **kwargs
    )


def test_sdk_full_flow(account, tmp_path: Path) -> None:
    client = _client(account)

    task, status = client.create_task("sdk task")
    assert status["status"] == "OK" and task.type == "multi_class"
    cat, _ = client.create_label("cat")
    dog, _ = client.create_label("dog", description="woof", output_name="Dog")
    assert (cat.type, dog.output_name) == ("category", "Dog")
    for label in (cat, dog):
        assert "detail" in task.add_label(label.id)
    labels, _ = task.get_labels()
    assert sorted(label.name for label in labels) == ["cat", "dog"]

    # Upload: base64 bytes with labels and meta data, and a small file from disk.
    data = image_bytes(900)
    images, status = client.upload_images(
        [
            {
                "_base64": base64.b64encode(data),
                "labels": [cat.id],
                "meta_data": {"k": 1},
                "noresize": True,
            }
        ]
    )
    assert status["status"] == "OK"
    (image,) = images
    path = tmp_path / "small.jpg"
    path.write_bytes(image_bytes(901))
    (image2,), _ = client.upload_images([{"_file": str(path), "labels": [dog.id]}])
    assert httpx.get(image.img_path).content == data
    assert image.get_meta_data() == {"k": 1}

    # A duplicate upload is adopted by the SDK through the "image ID '<uuid>'" message.
    (again,), status = client.upload_images([{"_base64": base64.b64encode(data)}])
    assert status == {"status": "exists"}
    assert again.id == image.id

    # Listing by label, through the SDK's own pagination handling.
    by_cat, next_page, info = cat.get_training_images()
    assert [i.id for i in by_cat] == [image.id] and next_page is None and info["count"] == 1
    all_ids = {i.id for i in client.training_images_iter()}
    assert all_ids == {image.id, image2.id}

    # Relabel: cat -> dog.
    image.detach_label(cat.id)
    image.add_label(dog.id)
    got, _ = client.get_image(image.id)
    assert [label.name for label in got.get_labels()[0]] == ["dog"]
    assert cat.get_training_images()[0] == []

    # Bulk update through training-image/update (workspace "Default" in the body).
    result = client.modify_images([image.id, image2.id], test=True)
    assert result == {"count": 2}
    assert client.get_training_images(test=True)[2]["count"] == 2

    # Delete (the SDK sends label/<id> and training-image/<id> without a slash).
    assert client.remove_image(image2.id).status_code == 204
    assert client.remove_label(cat.id).status_code == 204
    assert client.get_label(cat.id)[0] is None
    assert client.remove_task(task.id).status_code == 204
    assert client.get_task(task.id)[0] is None
    remaining = [i.id for i in client.training_images_iter()]
    assert remaining == [image.id]


def test_sdk_pagination_over_many_labels_and_workspaces(live_server, account) -> None:
    ws = live_server.create_workspace(account.username, "sdk workspace")
    client = _client(account, workspace=ws)
    for i in range(55):  # more than one default page (50)
        label, status = client.create_label(f"label {i:02d}", label_type="tag")
        assert label is not None, status
    labels, status = client.get_all_labels()
    assert status["status"] == "OK"
    assert len(labels) == 55
    assert sorted(label.name for label in labels) == [f"label {i:02d}" for i in range(55)]
    # Search terms are ANDed, as on the hosted service ("label" and "5"): 05, 15, ... 54.
    found, _ = client.get_labels_by_substring("label 5")
    assert sorted(label.name for label in found) == [
        f"label {i:02d}" for i in range(55) if "5" in f"{i:02d}"
    ]
    found, _ = client.get_labels_by_substring('"label 5"')
    assert sorted(label.name for label in found) == [f"label {i}" for i in range(50, 55)]
    task, _ = client.create_task("tags", task_type="multi_label")
    negative, _ = task.get_negative_label()
    assert negative is not None and negative.negative_for_task == task.id
    # Nothing leaked into the default workspace.
    default_client = _client(account)
    tasks, _ = default_client.get_all_tasks()
    assert tasks == []
    assert [t.id for t in client.get_all_tasks()[0]] == [task.id]
