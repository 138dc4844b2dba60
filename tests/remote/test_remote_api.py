"""Every client method over real HTTP against localrepo-server."""

from __future__ import annotations

import io
import uuid

import pytest

from localrepo.remote.client import RecognitionClient
from localrepo.remote.errors import (
    BadRequestError,
    NotFoundError,
    RemoteError,
    ServerError,
)
from localrepo.remote.models import RemoteImage, RemoteLabel, RemoteTask

from .conftest import MakeClient
from .images import jpeg, png


def test_tasks_crud(client: RecognitionClient) -> None:
    task = client.create_task("animals", "multi_class", description="pets")
    assert isinstance(task, RemoteTask)
    assert (task.name, task.type, task.description) == ("animals", "multi_class", "pets")
    assert task.production_version is None and task.labels == ()
    assert task.workspace

    assert client.get_task(task.id) == task
    assert [t.id for t in client.list_tasks()] == [task.id]
    assert client.find_task("animals", "multi_class") == task
    assert client.find_task("animals", "regression") is None

    renamed = client.update_task(task.id, name="pets", description="cats and dogs")
    assert (renamed.name, renamed.description) == ("pets", "cats and dogs")

    assert client.delete_task(task.id) is True
    assert client.delete_task(task.id) is False  # already gone: still a success
    with pytest.raises(NotFoundError) as err:
        client.get_task(task.id)
    assert err.value.status == 404
    assert "GET task/" in str(err.value)


def test_multi_label_task_has_a_negative_label(client: RecognitionClient) -> None:
    task = client.create_task("tags", "multi_label")
    negatives = [lb for lb in client.list_labels(task=task.id) if lb.negative_for_task]
    assert [n.negative_for_task for n in negatives] == [task.id]


def test_labels_crud_and_filters(client: RecognitionClient) -> None:
    task = client.create_task("t")
    dog = client.create_label("dog", "category", description="woof", output_name="Dog")
    cat = client.create_label("cat")
    tag = client.create_label("dogged", "tag")
    assert isinstance(dog, RemoteLabel)
    assert (dog.name, dog.type, dog.description, dog.output_name) == (
        "dog",
        "category",
        "woof",
        "Dog",
    )
    assert dog.images_count == 0 and dog.negative_for_task is None

    assert client.get_label(dog.id) == dog
    assert {lb.id for lb in client.list_labels()} == {dog.id, cat.id, tag.id}
    assert {lb.id for lb in client.list_labels(search="DOG")} == {dog.id, tag.id}
    assert [lb.id for lb in client.list_labels(search="dog", type="tag")] == [tag.id]

    client.add_task_label(task.id, dog.id)
    client.add_task_label(task.id, dog.id)  # twice: still one link
    client.add_task_label(task.id, cat.id)
    assert set(client.get_task(task.id).labels) == {dog.id, cat.id}
    assert {lb.id for lb in client.list_labels(task=task.id)} == {dog.id, cat.id}
    with pytest.raises(BadRequestError) as err:
        client.add_task_label(task.id, tag.id)  # a tag on a multi_class task
    assert err.value.status == 400
    client.remove_task_label(task.id, cat.id)
    assert client.get_task(task.id).labels == (dog.id,)

    updated = client.update_label(dog.id, name="doggo", output_name="Doggo")
    assert (updated.name, updated.output_name, updated.description) == ("doggo", "Doggo", "woof")

    assert client.delete_label(cat.id) is True
    assert client.delete_label(cat.id) is False
    with pytest.raises(NotFoundError):
        client.get_label(cat.id)


def test_ensure_label_adopts_exact_name_and_type_only(client: RecognitionClient) -> None:
    existing = client.create_label("Dog")
    client.create_label("dog-ish")
    assert client.ensure_label("Dog", "category") == existing
    lower = client.ensure_label("dog", "category")  # case-sensitive: another label
    assert lower.id != existing.id and lower.name == "dog"
    tag = client.ensure_label("Dog", "tag")  # another type: another label
    assert tag.id != existing.id and tag.type == "tag"
    assert client.ensure_label("dog", "category") == lower  # and now it is adopted


def test_ensure_label_compares_in_nfc(client: RecognitionClient) -> None:
    decomposed = "cafe\u0301"  # NFD of "café"
    made = client.ensure_label(decomposed, "category")
    assert made.name == "caf\u00e9"  # created in NFC
    assert client.ensure_label("caf\u00e9", "category").id == made.id
    assert client.ensure_label(decomposed, "category").id == made.id
    assert len(client.list_labels()) == 1


def test_images_upload_get_update_delete(client: RecognitionClient) -> None:
    data = png(1)
    image, created = client.upload_image(
        data, meta_data={"sha": "abc", "name": "a.png"}, noresize=True, test_image=True
    )
    assert created is True
    assert isinstance(image, RemoteImage)
    assert image.meta_data == {"sha": "abc", "name": "a.png"}
    assert image.test_image is True
    assert (image.width, image.height) == (40, 30)
    assert image.img_path.startswith("http") and image.thumb_img_path
    assert client.get_image(image.id).id == image.id

    again, created = client.upload_image(data, meta_data={"other": 1})
    assert created is False
    assert again.id == image.id
    assert again.meta_data == {"sha": "abc", "name": "a.png"}  # the existing image

    changed = client.update_image(image.id, meta_data={"k": [1, 2]}, test_image=False)
    assert changed.meta_data == {"k": [1, 2]} and changed.test_image is False

    assert client.delete_image(image.id) is True
    assert client.delete_image(image.id) is False
    with pytest.raises(NotFoundError):
        client.get_image(image.id)


def test_upload_refused_image_is_a_bad_request(client: RecognitionClient) -> None:
    with pytest.raises(BadRequestError) as err:
        client.upload_image(b"not an image at all")
    assert err.value.status == 400
    assert "base64" in err.value.field_errors
    assert str(err.value).startswith("POST training-image/:")


def test_image_labels_and_values(client: RecognitionClient) -> None:
    image, _ = client.upload_image(jpeg(2))
    dog = client.create_label("dog")
    height = client.create_label("height", "value")

    linked = client.add_image_label(image.id, dog.id)
    assert linked is not None and linked.label_ids() == (dog.id,)
    client.add_image_label(image.id, dog.id)  # idempotent
    with_value = client.add_image_label(image.id, height.id, value=1.5)
    assert with_value is not None
    values = {lb.id: lb.value for lb in with_value.labels}
    assert values == {dog.id: None, height.id: 1.5}

    updated = client.update_image_value(image.id, height.id, -2.25)
    assert updated is not None
    assert [lb.value for lb in updated.labels if lb.id == height.id] == [-2.25]
    assert not any(lb.value_invalid for lb in updated.labels)

    with pytest.raises(ValueError):
        client.update_image_value(image.id, height.id, float("nan"))

    removed = client.remove_image_label(image.id, dog.id)
    assert removed is not None and removed.label_ids() == (height.id,)
    assert client.get_label(height.id).images_count == 1

    with pytest.raises(BadRequestError) as err:
        client.add_image_label(image.id, str(uuid.uuid4()))
    assert "label_id" in err.value.field_errors
    with pytest.raises(NotFoundError):
        client.add_image_label(str(uuid.uuid4()), dog.id)


def test_list_images_filters(client: RecognitionClient) -> None:
    dog = client.create_label("dog")
    cat = client.create_label("cat")
    a, _ = client.upload_image(jpeg(10))
    b, _ = client.upload_image(jpeg(11), test_image=True)
    c, _ = client.upload_image(jpeg(12))
    client.add_image_label(a.id, dog.id)
    client.add_image_label(b.id, cat.id)

    def ids(**filters: object) -> set[str]:
        return {i.id for i in client.iter_images(**filters)}  # type: ignore[arg-type]

    assert ids() == {a.id, b.id, c.id}
    assert ids(labels=[dog.id]) == {a.id}
    assert ids(labels=[dog.id, cat.id]) == {a.id, b.id}
    assert ids(not_labels=[dog.id]) == {b.id, c.id}
    assert ids(test=True) == {b.id}
    assert ids(test=False) == {a.id, c.id}
    assert ids(labels=[cat.id], test=False) == set()
    listed = {i.id: i for i in client.list_images()}
    assert listed[a.id].label_ids() == (dog.id,)


def test_a_filtered_listing_read_while_images_go_misses_none(client: RecognitionClient) -> None:
    # The server pages a filtered listing by keyset (its next carries a cursor, which
    # the client follows as is): deleting an image already read does not shift the
    # pages still to come, as it would by page number (docs/remote.md, "Pagination").
    dog = client.create_label("dog")
    ids = [client.upload_image(jpeg(40 + i))[0].id for i in range(4)]
    for image_id in ids:
        client.add_image_label(image_id, dog.id)
    listing = client.iter_images(labels=[dog.id], page_size=1)
    seen = [next(listing).id, next(listing).id]
    client.delete_image(ids[0])
    seen += [image.id for image in listing]
    assert seen == ids


def test_bulk_update(client: RecognitionClient) -> None:
    dog = client.create_label("dog")
    cat = client.create_label("cat")
    images = [client.upload_image(jpeg(20 + i))[0] for i in range(3)]
    ids = [i.id for i in images]
    assert client.bulk_update_images(images=ids, labels_add=[dog.id], mark_test=True) == 3
    assert {i.id for i in client.iter_images(labels=[dog.id], test=True)} == set(ids)
    count = client.bulk_update_images(labels=[dog.id], labels_add=[cat.id], labels_remove=[dog.id])
    assert count == 3
    assert {i.id for i in client.iter_images(labels=[cat.id])} == set(ids)
    assert list(client.iter_images(labels=[dog.id])) == []
    with pytest.raises(ValueError):
        client.bulk_update_images(labels_add=[dog.id])


def test_download_bytes_file_and_limit(client: RecognitionClient) -> None:
    data = png(3)
    image, _ = client.upload_image(data, noresize=True)
    assert client.download(image.img_path) == data
    sink = io.BytesIO(b"old junk")
    sink.seek(3)
    assert client.download(image.img_path, sink) == len(data)
    assert sink.getvalue() == b"old" + data
    assert client.download(image.thumb_img_path or "")[:2] == b"\xff\xd8"  # a JPEG
    with pytest.raises(RemoteError, match="limit"):
        client.download(image.img_path, max_bytes=len(data) - 1)
    client.delete_image(image.id)
    with pytest.raises(NotFoundError):
        client.download(image.img_path)


def test_download_sends_no_token(client: RecognitionClient, make_client: MakeClient) -> None:
    from .faults import FaultTransport

    image, _ = client.upload_image(png(4), noresize=True)
    faults = FaultTransport()
    spy = make_client(transport=faults)
    spy.download(image.img_path)
    spy.get_image(image.id)
    media, api = faults.calls(path="/media/"), faults.calls(path="/recognition/")
    assert len(media) == 1 and "authorization" not in media[0].headers
    assert api[0].headers["authorization"].startswith("Token ")


def test_models_train_and_classify(client: RecognitionClient) -> None:
    task = client.create_task("t")
    assert client.list_models(task=task.id) == []
    assert client.list_models() == []
    with pytest.raises(NotFoundError):
        client.get_model(str(uuid.uuid4()))
    assert client.delete_model(str(uuid.uuid4())) is False
    # Training and classify compute may not be in this build of the server (501);
    # either way the client must send a well-formed request and map the answer.
    try:
        answer = client.train_task(task.id)
    except BadRequestError as exc:  # too few images: the contract's 400
        assert exc.status == 400
    except ServerError as exc:
        assert exc.status == 501
    else:
        assert isinstance(answer, dict)
    try:
        result = client.classify(task.id, [{"_base64": "aGVsbG8=", "_id": "x"}])
    except (BadRequestError, ServerError) as exc:
        assert exc.status in (400, 501)
    else:
        assert [r.get("_id") for r in result["records"]] == ["x"]


def test_workspaces(live_server: object, account: object, make_client: MakeClient) -> None:
    other = live_server.create_workspace(account.username, "Second")  # type: ignore[attr-defined]
    default = make_client()
    second = make_client(workspace=other)
    spaces = {w.id: w for w in default.list_workspaces()}
    assert spaces[other].name == "Second" and spaces[other].is_default is False
    [home] = [w for w in spaces.values() if w.is_default]
    assert home.name == "Default"

    here = second.create_task("in-second")
    label = second.create_label("dog")
    image, _ = second.upload_image(jpeg(30))
    second.add_task_label(here.id, label.id)
    second.add_image_label(image.id, label.id)
    assert here.workspace == other
    assert [t.id for t in second.list_tasks()] == [here.id]
    assert [i.id for i in second.iter_images(labels=[label.id], page_size=1)] == [image.id]

    assert default.list_tasks() == [] and default.list_labels() == []
    assert list(default.iter_images()) == []
    # By id, with no workspace named, the server finds the object in whichever of the
    # caller's workspaces holds it, as the hosted service does (docs/api.md).
    assert default.get_task(here.id).workspace == other
    # The same bytes are a new image in another workspace.
    assert default.upload_image(jpeg(30))[1] is True
    assert second.delete_task(here.id) is True
    with pytest.raises(NotFoundError):
        second.get_task(here.id)
    assert second.get_image(image.id).id == image.id


def test_unknown_workspace_is_not_found(make_client: MakeClient) -> None:
    stranger = make_client(workspace=str(uuid.uuid4()))
    with pytest.raises(NotFoundError):
        stranger.list_tasks()
