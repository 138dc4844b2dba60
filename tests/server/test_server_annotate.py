"""Issue 21, gaps 3, 4 and 7: `real` defaults to true (and a version-4 database is
upgraded to it), verifications feed `verifyCount` and the `verified` filter, points are
stored, and a label's refining tasks (`add-task/`, `recognition_tasks`): through the
official SDK against a real server, raw HTTP where the SDK has no call, and the schema
upgrade on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import inspect, text
from ximilar.client import RecognitionClient
from ximilar.client.recognition import Image as SdkImage

from localrepo.server.data import accounts, changes, imagedocs, images, tables
from localrepo.server.data.db import Database

from .helpers import error_fields, image_bytes, make_label, make_task, upload


def _sdk(account, **kwargs: object) -> RecognitionClient:
    return RecognitionClient(
        token=account.token, endpoint=account.url, resource_name=None, **kwargs
    )


# ---- real ----------------------------------------------------------------------------------


def test_real_defaults_to_true(account) -> None:
    client = _sdk(account)
    (image,), status = client.upload_images([{"_base64": base64.b64encode(image_bytes(6001))}])
    assert status["status"] == "OK" and image.real_image is True
    with account.client() as api:
        assert upload(api, image_bytes(6002))["real"] is True
        assert upload(api, image_bytes(6003), real=False)["real"] is False
        r = api.post(
            "training-image/",
            files={"img_path": ("x.jpg", image_bytes(6004), "image/jpeg")},
        )
        assert r.status_code == 201 and r.json()["real"] is True
        assert api.get("training-image/", params={"real": "false"}).json()["count"] == 1


# ---- verifications ---------------------------------------------------------------------------


def test_sdk_verify_counts_and_filters(account) -> None:
    client = _sdk(account)
    user_id = client.get_user_details()["id"]
    with account.client() as api:
        first = upload(api, image_bytes(6101))
        second = upload(api, image_bytes(6102))
    image = SdkImage(account.token, account.url, {**first, "workspace": "Default"})
    result = image.verify(user_id)
    assert result["image"] == first["id"] and result["user"] == user_id
    assert image.verifyCount == 1
    image.verify(user_id)
    assert len(image.get_verifications()) == 2

    with account.client() as api:
        assert api.get(f"training-image/{first['id']}/").json()["verifyCount"] == 2
        listed = {x["id"]: x["verifyCount"] for x in api.get("training-image/").json()["results"]}
        assert listed == {first["id"]: 2, second["id"]: 0}

    def verified(n: int) -> list[str]:
        found, _, _ = client.get_training_images(verification=n)
        return [x.id for x in found]

    assert verified(2) == [first["id"]]
    assert verified(0) == [second["id"]]
    assert verified(1) == []

    assert image.unverify() is True
    assert image.get_verifications() == []
    assert verified(0) == [first["id"], second["id"]]


def test_verification_checks(live_server, account) -> None:
    other = live_server.new_account()
    with other.client() as theirs:
        their_image = upload(theirs, image_bytes(6201))
        their_verification = theirs.post(
            other.url + "annotate/v2/verification/", json={"image_id": their_image["id"]}
        ).json()
    with account.client() as api:
        mine = upload(api, image_bytes(6202))
        base = account.url + "annotate/v2/verification/"
        r = api.post(base, json={"image_id": their_image["id"]})
        assert r.status_code == 400 and "image_id" in r.json()
        r = api.post(base, json={})
        assert r.status_code == 400 and error_fields(r.json()) == ["image_id"]
        r = api.post(base, json={"image_id": mine["id"], "user": their_verification["user"]})
        assert r.status_code == 400 and error_fields(r.json()) == ["user"]
        assert api.delete(base + their_verification["id"]).status_code == 404
        assert api.get(base, params={"image": their_image["id"]}).json()["count"] == 0
        r = api.get("training-image/", params={"verified": "-1"})
        assert r.status_code == 400
        # Deleting the image takes its verifications with it.
        created = api.post(base, json={"image": mine["id"]})
        assert created.status_code == 201
        assert api.delete(f"training-image/{mine['id']}/").status_code == 204
        assert api.get(base).json()["count"] == 0
    with other.client() as theirs:
        assert theirs.get(f"training-image/{their_image['id']}/").json()["verifyCount"] == 1


# ---- points ----------------------------------------------------------------------------------


def test_sdk_points_are_stored(live_server, account) -> None:
    client = _sdk(account)
    with account.client() as api:
        image = upload(api, image_bytes(6301))
    point, _ = client.create_point(image_id=image["id"], name="corner", data={"x": 1, "y": [2]})
    assert point["name"] == "corner" and point["data"] == {"x": 1, "y": [2]}
    client.create_point(name="loose", data=[1, 2, 3])
    points, _ = client.get_points(image_id=image["id"])
    assert [(p.name, p.data) for p in points] == [("corner", {"x": 1, "y": [2]})]
    everything, _ = client.get_points()
    assert sorted(p.name for p in everything) == ["corner", "loose"]
    other = live_server.new_account()
    with other.client() as theirs:
        base = other.url + "annotate/v2/point/"
        assert theirs.get(base).json()["count"] == 0
        assert theirs.get(base + point["id"]).status_code == 404
        r = theirs.post(base, json={"image": image["id"], "name": "x"})
        assert r.status_code == 400 and error_fields(r.json()) == ["image"]
    with account.client() as api:
        assert api.delete(account.url + "annotate/v2/point/" + point["id"]).status_code == 204
        assert [p.name for p in client.get_points()[0]] == ["loose"]


# ---- a label's refining tasks ----------------------------------------------------------------


def test_sdk_label_annotate_tasks(account) -> None:
    client = _sdk(account)
    with account.client() as api:
        label_json = make_label(api, "vehicle")
        cars = make_task(api, "car types")
        other_ws_free = make_task(api, "bikes")
    label, _ = client.get_label(label_json["id"])
    assert "detail" in label.add_annotate_task(cars["id"])
    label.add_annotate_task(other_ws_free["id"])
    label.add_annotate_task(cars["id"])  # twice: still once
    tasks, _ = label.get_annotate_tasks()
    assert [t.name for t in tasks] == ["car types", "bikes"]
    label.detach_annotate_task(other_ws_free["id"])
    assert [t.name for t in label.get_annotate_tasks()[0]] == ["car types"]
    with account.client() as api:
        r = api.post(
            f"label/{label_json['id']}/add-task/",
            json={"task_id": "00000000-0000-4000-8000-000000000000"},
        )
        assert r.status_code == 400 and error_fields(r.json()) == ["task_id"]
        assert api.delete(f"task/{cars['id']}/").status_code == 204
        assert api.get(f"label/{label_json['id']}/").json()["recognition_tasks"] == []


# ---- the upgrade -----------------------------------------------------------------------------


def _downgrade_to_version_4(db: Database) -> None:
    with db.write() as session:
        for table in ("verifications", "points", "label_subtasks"):
            session.execute(text(f"DROP TABLE {table}"))
        if db.is_sqlite:  # the docs' triggers name the column; a start makes them again
            for name in imagedocs.TRIGGERS:
                session.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
        for name, table in changes._TABLE_OF.items():  # (the feed's, likewise)
            on = "" if db.is_sqlite else f" ON {table}"
            for trigger in changes._SQLITE_TRIGGERS if db.is_sqlite else [name]:
                session.execute(text(f"DROP TRIGGER IF EXISTS {trigger}{on}"))
        session.execute(text("ALTER TABLE images DROP COLUMN verify_count"))
        session.execute(text("UPDATE images SET real = FALSE"))
        session.execute(text("UPDATE schema_info SET value = '4' WHERE key = 'schema_version'"))


def _image_row(ws: str, n: int) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "workspace_id": ws,
        "upload_sha256": f"{n:064x}",
        "blob_sha256": f"{n:064x}",
        "media_key": f"{n:032x}",
        "extension": ".jpg",
        "content_type": "image/jpeg",
        "size_bytes": 1,
        "img_width": 1,
        "img_height": 1,
        "meta_data": "{}",
        "test_image": False,
        "real": False,
        "verify_count": 0,
        "created": tables.now_iso(),
    }


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_version_4_database_is_upgraded(
    engine: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    if engine == "sqlite":
        url = f"sqlite:///{tmp_path / 'v4.db'}"
    else:
        url = str(request.getfixturevalue("postgres").new_database())
    db = Database(url)
    db.create_all()
    user = accounts.create_user(db, "kept")
    ws = accounts.list_workspaces(db, user.username)[0].id
    for n in (1, 2):
        images.insert_image(db, _image_row(ws, n), user_id=user.id)
    _downgrade_to_version_4(db)
    db.dispose()
    db = Database(url)
    try:
        db.create_all()
        columns = {c["name"] for c in inspect(db.engine).get_columns("images")}
        assert "verify_count" in columns
        assert {"verifications", "points", "label_subtasks"} <= set(
            inspect(db.engine).get_table_names()
        )
        with db.read() as session:
            rows = session.execute(text("SELECT real, verify_count FROM images")).all()
            version = session.execute(
                text("SELECT value FROM schema_info WHERE key = 'schema_version'")
            ).scalar_one()
        assert [(bool(r[0]), r[1]) for r in rows] == [(True, 0), (True, 0)]
        assert version == str(tables.SCHEMA_VERSION)
    finally:
        db.dispose()
