"""Contract tests over real HTTP: training images (uploads, media, labels, filters, bulk)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image

from .helpers import (
    all_pages,
    attach,
    b64,
    error_fields,
    image_bytes,
    make_label,
    make_task,
    smooth_jpeg,
    upload,
)

IMAGE_KEYS = {
    "id",
    "created",
    "img_path",
    "thumb_img_path",
    "img_width",
    "img_height",
    "meta_data",
    "test_image",
    "real",
    "verifyCount",
    "workspace",
    "labels",
}


def _files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


# ---- uploads -------------------------------------------------------------------------------


def test_upload_bare_base64_and_serve_the_exact_bytes_without_auth(api: httpx.Client) -> None:
    data = image_bytes(1)
    image = upload(api, data, meta_data={"k": "v"})
    assert set(image) == IMAGE_KEYS
    assert (image["img_width"], image["img_height"]) == (64, 48)
    assert image["labels"] == [] and image["meta_data"] == {"k": "v"}
    assert image["test_image"] is False and image["real"] is True  # the hosted default
    media = httpx.get(image["img_path"])  # no Authorization header
    assert media.status_code == 200
    assert media.headers["content-type"] == "image/jpeg"
    assert media.content == data  # small enough: stored untouched
    assert api.get(f"training-image/{image['id']}/").json() == image


def test_upload_data_uri_png_keeps_png(api: httpx.Client) -> None:
    data = image_bytes(2, fmt="PNG")
    r = api.post("training-image/", json={"base64": "data:image/png;base64," + b64(data)})
    assert r.status_code == 201, r.text
    image = r.json()
    assert image["img_path"].endswith(".png")
    media = httpx.get(image["img_path"])
    assert media.headers["content-type"] == "image/png"
    assert media.content == data


def test_upload_multipart_with_meta_data_json_string(api: httpx.Client) -> None:
    data = image_bytes(3)
    meta = {"file": "ä/b c.jpg", "nested": {"n": [1, 2.5, None, True]}, "big": 2**70}
    r = api.post(
        "training-image",
        files={"img_path": ("x.jpg", data, "image/jpeg")},
        data={"meta_data": json.dumps(meta), "test_image": "true", "noresize": "True"},
    )
    assert r.status_code == 201, r.text
    image = r.json()
    assert image["meta_data"] == meta
    assert image["test_image"] is True
    assert httpx.get(image["img_path"]).content == data


def test_meta_data_is_kept_verbatim_and_replaced_whole(api: httpx.Client) -> None:
    meta = {"z": 1, "a": {"deep": ["x", {"y": None}]}, "big": 12345678901234567890123, "f": 0.1}
    image = upload(api, image_bytes(4), meta_data=meta)
    raw = api.get(f"training-image/{image['id']}/").text
    assert json.loads(raw)["meta_data"] == meta
    assert '"big":12345678901234567890123' in raw.replace(" ", "")
    assert list(json.loads(raw)["meta_data"]) == ["z", "a", "big", "f"]  # order kept
    r = api.put(f"training-image/{image['id']}", json={"meta_data": {"only": "this"}})
    assert r.status_code == 200
    assert r.json()["meta_data"] == {"only": "this"}
    r = api.patch(f"training-image/{image['id']}/", json={"real": True})
    assert r.json()["meta_data"] == {"only": "this"} and r.json()["real"] is True
    r = api.put(f"training-image/{image['id']}/", json={"meta_data": [1]})
    assert r.status_code == 400 and "meta_data" in r.json()


def test_duplicate_upload_answers_the_exact_sdk_message(live_server, account) -> None:
    data = image_bytes(5)
    with account.client() as api:
        first = upload(api, data)
        for body in (
            {"json": {"base64": b64(data)}},
            {"json": {"base64": b64(data), "noresize": True}},
            {"files": {"img_path": ("a.jpg", data, "image/jpeg")}},
        ):
            r = api.post("training-image/", **body)  # type: ignore[arg-type]
            assert r.status_code == 400
            assert r.json() == {
                "detail": f"Image already exists in workspace with image ID '{first['id']}'."
            }
        # The same bytes in another workspace are another image (sharing one blob).
        ws = live_server.create_workspace(account.username, "other")
        r = api.post("training-image/", json={"base64": b64(data), "workspace": ws})
        assert r.status_code == 201
        assert r.json()["id"] != first["id"]
        assert r.json()["workspace"] == ws


def test_resize_by_default_and_byte_identical_with_noresize(api: httpx.Client) -> None:
    big = smooth_jpeg(6, (2000, 1200))
    resized = upload(api, big)
    assert (resized["img_width"], resized["img_height"]) == (1024, 614)
    stored = httpx.get(resized["img_path"]).content
    assert stored != big
    with Image.open(io.BytesIO(stored)) as im:
        assert im.size == (1024, 614)

    big2 = smooth_jpeg(7, (1800, 2400))
    kept = upload(api, big2, noresize=True)
    assert (kept["img_width"], kept["img_height"]) == (1800, 2400)
    assert (
        hashlib.sha256(httpx.get(kept["img_path"]).content).digest()
        == hashlib.sha256(big2).digest()
    )


def test_thumbnail_is_a_small_jpeg_served_without_auth(api: httpx.Client) -> None:
    image = upload(api, smooth_jpeg(8, (900, 300)), noresize=True)
    r = httpx.get(image["thumb_img_path"])
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.format == "JPEG"
        assert max(im.size) == 256
    assert httpx.get(image["thumb_img_path"]).content == r.content  # cached, stable


def test_media_urls_are_unguessable_and_die_with_the_image(api: httpx.Client) -> None:
    data = image_bytes(9)
    image = upload(api, data)
    url = image["img_path"]
    sha = hashlib.sha256(data).hexdigest()
    assert f"/media/{sha}/" in url
    key = url.rsplit("/", 1)[1].split(".")[0]
    assert len(key) == 32  # 128 random bits
    guessed = url.replace(key, "0" * 32)
    assert httpx.get(guessed).status_code == 404
    assert httpx.get(url.replace(".jpg", ".png")).status_code == 404
    assert api.delete(f"training-image/{image['id']}").status_code == 204
    assert httpx.get(url).status_code == 404
    assert httpx.get(image["thumb_img_path"]).status_code == 404
    assert api.get(f"training-image/{image['id']}/").status_code == 404


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("not base64 at all!!", "base64"),
        (b64(b"plain text, not an image"), "identify"),
        (b64(image_bytes(10, size=(256, 256))[:600]), "decode"),  # truncated JPEG
        (b64(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40), ""),
        ("", "required"),
    ],
)
def test_bad_images_are_refused_naming_the_field(
    api: httpx.Client, payload: str, reason: str
) -> None:
    r = api.post("training-image/", json={"base64": payload})
    assert r.status_code == 400, r.text
    assert error_fields(r.json()) == ["base64"]
    assert reason.lower() in r.json()["base64"][0].lower()
    assert api.get("training-image/").json()["count"] == 0


def test_truncated_jpeg_that_verify_accepts_is_refused(api: httpx.Client) -> None:
    data = image_bytes(11, size=(256, 256))
    cut = data[: len(data) * 2 // 3]
    with Image.open(io.BytesIO(cut)) as im:
        im.verify()  # verify() alone would let it through
    r = api.post("training-image/", files={"img_path": ("cut.jpg", cut, "image/jpeg")})
    assert r.status_code == 400
    assert error_fields(r.json()) == ["img_path"]
    assert "decode" in r.json()["img_path"][0]


def test_decompression_bomb_is_refused(api: httpx.Client) -> None:
    # 10000 x 10000 = 1e8 pixels: over Pillow's limit (a warning there, an error here).
    buf = io.BytesIO()
    Image.new("1", (10000, 10000)).save(buf, "PNG")
    r = api.post("training-image/", json={"base64": b64(buf.getvalue())})
    assert r.status_code == 400
    assert "too large" in r.json()["base64"][0]


def test_failed_uploads_leave_no_rows_and_no_files(live_server, account) -> None:
    blobs = live_server.data_dir / "blobs"
    with account.client() as api:
        r = api.post("training-image/", json={"base64": b64(b"nope")})
        assert r.status_code == 400
        r = api.post("training-image/", json={"base64": b64(image_bytes(12)), "meta_data": "x"})
        assert r.status_code == 400 and "meta_data" in r.json()
        r = api.post(
            "training-image/",
            json={
                "base64": b64(image_bytes(12)),
                "workspace": "00000000-0000-4000-8000-000000000000",
            },
        )
        assert r.status_code == 404
        assert api.get("training-image/").json()["count"] == 0
    sha = hashlib.sha256(image_bytes(12)).hexdigest()
    assert not (blobs / sha[:2] / sha).exists()
    assert [p for p in _files_under(live_server.data_dir) if p.name.endswith(".part")] == []


def test_blob_is_removed_with_its_last_image_only(live_server, account) -> None:
    data = image_bytes(13)
    sha = hashlib.sha256(data).hexdigest()
    blob = live_server.data_dir / "blobs" / sha[:2] / sha
    ws = live_server.create_workspace(account.username, "w2")
    with account.client() as api:
        a = upload(api, data)
        r = api.post("training-image/", json={"base64": b64(data), "workspace": ws})
        b = r.json()
        assert blob.read_bytes() == data
        assert api.delete(f"training-image/{a['id']}/").status_code == 204
        assert blob.exists()
        assert httpx.get(b["img_path"]).content == data
        assert api.delete(f"training-image/{b['id']}", params={"workspace": ws}).status_code == 204
        assert not blob.exists()


def test_body_workspace_default_literal_and_unknown(api: httpx.Client) -> None:
    r = api.post("training-image/", json={"base64": b64(image_bytes(14)), "workspace": "Default"})
    assert r.status_code == 201
    r = api.post("training-image/", json={"base64": b64(image_bytes(15)), "workspace": "junk"})
    assert r.status_code == 404


# ---- labels on images ----------------------------------------------------------------------


def test_add_remove_and_update_value_labels(api: httpx.Client) -> None:
    image = upload(api, image_bytes(20))
    cat = make_label(api, "cat")
    size = make_label(api, "size", "value")
    r = api.post(f"training-image/{image['id']}/add-label", data={"label_id": cat["id"]})
    assert r.status_code == 200
    assert r.json()["labels"] == [{"id": cat["id"], "name": "cat", "type": "category"}]
    out = attach(api, image["id"], size["id"], value=2.5)
    assert {"id": size["id"], "name": "size", "type": "value", "value": 2.5} in out["labels"]
    # A value on a non-value label is refused, naming the field.
    r = api.post(
        f"training-image/{image['id']}/add-label/", json={"label_id": cat["id"], "value": 1}
    )
    assert r.status_code == 400 and "value" in r.json()
    for route, value in (("update-value", 7.0), ("update-label", -1.25)):
        r = api.post(
            f"training-image/{image['id']}/{route}/", json={"label_id": size["id"], "value": value}
        )
        assert r.status_code == 200, r.text
        got = api.get(f"training-image/{image['id']}").json()["labels"]
        assert next(lab["value"] for lab in got if lab["id"] == size["id"]) == value
    r = api.post(f"training-image/{image['id']}/update-value/", json={"label_id": size["id"]})
    assert r.status_code == 400 and "value" in r.json()
    r = api.post(f"training-image/{image['id']}/remove-label", json={"label_id": cat["id"]})
    assert r.status_code == 200
    assert [lab["id"] for lab in r.json()["labels"]] == [size["id"]]
    assert api.get(f"label/{cat['id']}/").json()["images_count"] == 0
    assert api.get(f"label/{size['id']}/").json()["images_count"] == 1


def test_deleting_a_label_detaches_it_everywhere(api: httpx.Client) -> None:
    task = make_task(api)
    label = make_label(api, "gone")
    keep = make_label(api, "kept")
    assert (
        api.post(f"task/{task['id']}/add-label/", json={"label_id": label["id"]}).status_code == 200
    )
    image = upload(api, image_bytes(21))
    attach(api, image["id"], label["id"])
    attach(api, image["id"], keep["id"])
    assert api.delete(f"label/{label['id']}").status_code == 204
    assert api.get(f"task/{task['id']}/").json()["labels"] == []
    assert [lab["id"] for lab in api.get(f"training-image/{image['id']}/").json()["labels"]] == [
        keep["id"]
    ]
    r = api.get("training-image/", params={"labels": label["id"]})
    assert r.json()["count"] == 0


# ---- listing filters -------------------------------------------------------------------------


@pytest.fixture
def labelled(api: httpx.Client) -> dict[str, object]:
    """Six images: a/b categories, test/real flags and values of a value label."""
    a = make_label(api, "a")
    b = make_label(api, "b")
    v = make_label(api, "v", "value")
    ids = []
    for i in range(6):
        image = upload(api, image_bytes(100 + i), test_image=(i % 2 == 1), real=False)
        ids.append(image["id"])
    attach(api, ids[0], a["id"])
    attach(api, ids[1], a["id"])
    attach(api, ids[2], b["id"])
    attach(api, ids[3], a["id"])
    attach(api, ids[3], b["id"])
    for i, value in ((0, 1.0), (2, 5.0), (4, 10.0)):
        attach(api, ids[i], v["id"], value=value)
    assert api.put(f"training-image/{ids[5]}/", json={"real": True}).status_code == 200
    return {"ids": ids, "a": a["id"], "b": b["id"], "v": v["id"]}


def _ids(api: httpx.Client, **params: object) -> list[str]:
    return [img["id"] for img in all_pages(api, "training-image/", dict(params))]


def test_image_filters(api: httpx.Client, labelled: dict[str, object]) -> None:
    ids = labelled["ids"]
    a, b, v = labelled["a"], labelled["b"], labelled["v"]
    assert isinstance(ids, list)
    assert _ids(api) == ids
    assert _ids(api, labels=a) == [ids[0], ids[1], ids[3]]
    assert _ids(api, label=b) == [ids[2], ids[3]]
    assert _ids(api, labels=f"{a},{b}") == [ids[0], ids[1], ids[2], ids[3]]
    assert _ids(api, not_labels=a) == [ids[2], ids[4], ids[5]]
    assert _ids(api, labels=b, not_labels=a) == [ids[2]]
    assert _ids(api, test="True") == [ids[1], ids[3], ids[5]]
    assert _ids(api, test="false") == [ids[0], ids[2], ids[4]]
    assert _ids(api, real="1") == [ids[5]]
    assert _ids(api, **{f"label_value_{v}__gte": 5}) == [ids[2], ids[4]]
    assert _ids(api, **{f"label_value_{v}__lte": "5"}) == [ids[0], ids[2]]
    assert _ids(api, **{f"label_value_{v}__gte": 2, f"label_value_{v}__lte": 9.5}) == [ids[2]]
    r = api.get("training-image/", params=[("labels", a), ("labels", b)])
    assert r.json()["count"] == 4


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"labels": "not-a-uuid"}, "labels"),
        ({"not_labels": "x"}, "not_labels"),
        ({"test": "maybe"}, "test"),
        ({"real": "2"}, "real"),
        ({"label_value_x__gte": "1"}, "label_value_x__gte"),
        ({"label_value_00000000-0000-4000-8000-000000000000__lte": "big"}, None),
    ],
)
def test_bad_filters_answer_400_naming_the_parameter(
    api: httpx.Client, params: dict[str, str], field: str | None
) -> None:
    r = api.get("training-image/", params=params)
    assert r.status_code == 400
    assert error_fields(r.json()) == [field or next(iter(params))]


def test_listing_pages_follow_next_and_keep_every_filter(
    api: httpx.Client, labelled: dict[str, object]
) -> None:
    a, v = labelled["a"], labelled["v"]
    params = {"labels": a, "test": "false", f"label_value_{v}__lte": "100", "page_size": 1}
    first = api.get("training-image/", params=params).json()
    assert first["count"] == 1
    params = {"not_labels": labelled["b"], "page_size": 2}
    first = api.get("training-image/", params=params).json()
    assert first["count"] == 4
    q = parse_qs(urlsplit(first["next"]).query)
    # (A filtered listing's next also carries the cursor of its keyset paging.)
    assert q.pop("after") and q == {
        "not_labels": [labelled["b"]],
        "page_size": ["2"],
        "page": ["2"],
    }
    got = [img["id"] for img in all_pages(api, "training-image/", params)]
    ids = labelled["ids"]
    assert isinstance(ids, list)
    assert got == [ids[0], ids[1], ids[4], ids[5]]


def test_list_rows_carry_labels_and_meta_data(api: httpx.Client) -> None:
    label = make_label(api, "x")
    image = upload(api, image_bytes(30), meta_data={"h": "abc"})
    attach(api, image["id"], label["id"])
    row = api.get("training-image/").json()["results"][0]
    assert row["meta_data"] == {"h": "abc"}
    assert row["labels"] == [{"id": label["id"], "name": "x", "type": "category"}]


# ---- bulk update ---------------------------------------------------------------------------


def test_bulk_update_by_ids_and_by_label_filter(
    api: httpx.Client, labelled: dict[str, object]
) -> None:
    ids = labelled["ids"]
    a, b = labelled["a"], labelled["b"]
    assert isinstance(ids, list)
    new = make_label(api, "new")
    r = api.post(
        "training-image/update",
        json={"images": ids[4:6], "labels-add": [new["id"]], "mark-test": True},
    )
    assert r.status_code == 200 and r.json() == {"count": 2}
    assert _ids(api, labels=new["id"]) == ids[4:6]
    assert set(_ids(api, test="true")) == {ids[1], ids[3], ids[4], ids[5]}

    r = api.post(
        "training-image/update/",
        json={
            "labels": [a],
            "labels-add": [b],
            "labels-remove": [a],
            "unmark-test": True,
            "mark-real": True,
            "workspace": "Default",
        },
    )
    assert r.json() == {"count": 3}
    assert _ids(api, labels=a) == []
    assert _ids(api, labels=b) == [ids[0], ids[1], ids[2], ids[3]]
    assert set(_ids(api, real="true")) == {ids[0], ids[1], ids[3], ids[5]}
    assert set(_ids(api, test="true")) == {ids[4], ids[5]}


def test_bulk_update_validation(api: httpx.Client) -> None:
    r = api.post("training-image/update/", json={"images": [], "labels": []})
    assert r.status_code == 400 and "non_field_errors" in r.json()
    image = upload(api, image_bytes(40))
    missing = "00000000-0000-4000-8000-000000000000"
    r = api.post("training-image/update/", json={"images": [image["id"]], "labels-add": [missing]})
    assert r.status_code == 400 and "labels-add" in r.json()
    r = api.post("training-image/update/", json={"images": ["bad"]})
    assert r.status_code == 400 and "images" in r.json()
    r = api.post(
        "training-image/update/", json={"images": [image["id"]], "mark-test": 1, "unmark-test": 1}
    )
    assert r.status_code == 400
    # Nothing was half-applied.
    assert api.get(f"training-image/{image['id']}").json()["test_image"] is False
    r = api.post("training-image/update/", json={"images": [image["id"], missing]})
    assert r.json() == {"count": 1}


def test_list_rows_are_the_same_objects_as_the_detail_answers(api: httpx.Client) -> None:
    """Listing renders rows in the database (SQLite JSON); details in Python. Same JSON."""
    cat = make_label(api, 'Ünïcode "quoted"')
    value = make_label(api, "score", "value")
    metas = [{}, {"big": 2**80, "f": 1.0, "nested": {"a": [None, True]}}, {"ü": "ß"}]
    for i, meta in enumerate(metas):
        image = upload(api, image_bytes(700 + i), meta_data=meta, test_image=(i == 1))
        if i:
            attach(api, image["id"], cat["id"])
        if i == 2:
            attach(api, image["id"], value["id"], value=2.5e20)
            api.put(f"training-image/{image['id']}/", json={"real": True})
    listed = all_pages(api, "training-image/", {"page_size": 2})
    assert len(listed) == 3
    for row in listed:
        assert row == api.get(f"training-image/{row['id']}/").json()
    assert listed[1]["meta_data"]["big"] == 2**80
    assert listed[2]["labels"][1] == {
        "id": value["id"],
        "name": "score",
        "type": "value",
        "value": 2.5e20,
    }
    assert (listed[2]["real"], listed[1]["test_image"]) == (True, True)
