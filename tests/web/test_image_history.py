"""An image's history (data/imageevents.py, web/imagehistory.py) on its web page, over
HTTP against the real server: changes made through the API (add-label, remove-label,
update-value, metadata, the bulk update) and in the browser's gallery (relabel) are
listed newest first with who made them; a deleted label keeps its name there; another
user's image history is a 404. Then the phrasing on its own (pure), and a version 4
database (no history, no training progress) upgraded on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from sqlalchemy import inspect, text
from support.imagegen import image_bytes

from localrepo.server.data import accounts, imageevents, tables
from localrepo.server.data.db import Database
from localrepo.server.data.imageevents import Event
from localrepo.server.web.imagehistory import ago, history_lines

from .test_images import gallery_ids, upload
from .webhelp import WebUser, hidden, make_task, new_web_user, signed_in_client


def history_items(html: str) -> list[str]:
    """The history list's lines as shown (text, then how long ago), newest first."""
    section = html[
        html.index('id="image-history"') : html.index("</ol>", html.index("image-history"))
    ]
    items = re.findall(r"<li>(.*?)</li>", section, re.S)
    return [re.sub(r"<[^>]+>", "", item).strip() for item in items]


def test_api_label_changes_show_on_the_image_page_newest_first(
    live_server: Any, web_user: WebUser
) -> None:
    task = make_task(live_server, web_user, ("circle", "square"))
    circle = task["labels"]["circle"]
    who = web_user.username
    with live_server.client(web_user.token) as api:
        data = base64.b64encode(image_bytes(41)).decode()
        image = api.post("training-image/", json={"base64": data}).json()
        iid = image["id"]
        assert api.post(f"training-image/{iid}/add-label/", json={"label_id": circle}).is_success
        # Attaching it again changes nothing: no event.
        assert api.post(f"training-image/{iid}/add-label/", json={"label_id": circle}).is_success
        assert api.post(f"training-image/{iid}/remove-label/", json={"label_id": circle}).is_success
        assert api.patch(
            f"training-image/{iid}/", json={"meta_data": {"note": "blurred"}, "test_image": True}
        ).is_success
        height = api.post("label/", json={"name": "height", "type": "value"}).json()
        assert api.post(
            f"training-image/{iid}/update-value/", json={"label_id": height["id"], "value": 2}
        ).is_success
        assert api.post(
            f"training-image/{iid}/update-value/", json={"label_id": height["id"], "value": 3.5}
        ).is_success
        # The label goes: its events keep the name it had.
        assert api.delete(f"label/{height['id']}/").status_code == 204
    with signed_in_client(web_user) as client:
        page = client.get(f"/web/w/{task['workspace']}/images/{iid}")
        assert page.status_code == 200
        lines = history_items(page.text)
    texts = [line.rsplit(",", 1)[0] for line in lines]
    assert texts == [
        f"height changed from 2 to 3.5 by {who}",
        f"labelled height = 2 by {who}",
        f"made a test image by {who}",
        f"metadata changed (note) by {who}",
        f"label circle taken away by {who}",
        f"labelled circle by {who}",
        f"uploaded by {who}",
    ]
    assert all(line.endswith("just now") for line in lines)
    assert 'id="image-history-empty"' not in page.text


def test_a_relabel_in_the_gallery_shows_in_the_history(live_server: Any, web_user: WebUser) -> None:
    task = make_task(live_server, web_user)
    base = f"/web/w/{task['workspace']}/tasks/{task['id']}/images"
    who = web_user.username
    with signed_in_client(web_user) as client:
        upload(client, base, [("pet.jpg", image_bytes(42))], task["labels"]["cat"])
        [iid] = gallery_ids(client.get(base).text)
        fresh = client.get(f"/web/w/{task['workspace']}/images/{iid}").text
        assert [x.rsplit(",", 1)[0] for x in history_items(fresh)] == [
            f"labelled cat by {who}",
            f"uploaded by {who}",
        ]
        csrf = hidden(client.get(base).text, "csrf_token", form_action=base + "/bulk")
        moved = client.post(
            base + "/bulk",
            data={
                "csrf_token": csrf,
                "image": iid,
                "action": "relabel",
                "label": task["labels"]["dog"],
            },
        )
        assert moved.status_code == 303
        lines = history_items(client.get(f"/web/w/{task['workspace']}/images/{iid}").text)
    # One relabel: the old label taken away and the new one given, in one transaction.
    assert {x.rsplit(",", 1)[0] for x in lines[:2]} == {
        f"label cat taken away by {who}",
        f"labelled dog by {who}",
    }
    assert len(lines) == 4


def test_an_image_with_no_change_says_so(live_server: Any, web_user: WebUser) -> None:
    task = make_task(live_server, web_user)
    base = f"/web/w/{task['workspace']}/tasks/{task['id']}/images"
    with signed_in_client(web_user) as client:
        upload(client, base, [("lone.jpg", image_bytes(43))])
        [iid] = gallery_ids(client.get(base).text)
        page = client.get(f"/web/w/{task['workspace']}/images/{iid}").text
    assert [x.rsplit(",", 1)[0] for x in history_items(page)] == [
        f"uploaded by {web_user.username}"
    ]
    assert 'id="image-history-empty"' in page


def test_another_users_image_history_is_404(live_server: Any, web_user: WebUser) -> None:
    task = make_task(live_server, web_user)
    base = f"/web/w/{task['workspace']}/tasks/{task['id']}/images"
    with signed_in_client(web_user) as client:
        upload(client, base, [("mine.jpg", image_bytes(44))], task["labels"]["cat"])
        [iid] = gallery_ids(client.get(base).text)
    other = new_web_user(live_server)
    with signed_in_client(other) as client:
        assert client.get(f"/web/w/{task['workspace']}/images/{iid}").status_code == 404
        # Their own workspace with this image id: not theirs either.
        theirs = make_task(live_server, other)["workspace"]
        answer = client.get(f"/web/w/{theirs}/images/{iid}")
        assert answer.status_code == 404 and "labelled cat" not in answer.text
    # And the data layer answers nothing for another workspace.
    db = Database(live_server.database_url)
    try:
        assert imageevents.history(db, theirs, iid) == []
        assert [e.kind for e in imageevents.history(db, task["workspace"], iid)] == [
            "labelled",
            "uploaded",
        ]
    finally:
        db.dispose()


def test_the_gallery_shows_its_own_notices_only(live_server: Any, web_user: WebUser) -> None:
    task = make_task(live_server, web_user)
    base = f"/web/w/{task['workspace']}/tasks/{task['id']}/images"
    forged = "All your images were deleted"
    with signed_in_client(web_user) as client:
        assert forged not in client.get(base, params={"notice": forged}).text
        assert forged not in client.get(base, params={"notice": forged, "sig": "0" * 32}).text
        upload(client, base, [("n.jpg", image_bytes(45))])
        csrf = hidden(client.get(base).text, "csrf_token", form_action=base + "/bulk")
        [iid] = gallery_ids(client.get(base).text)
        moved = client.post(
            base + "/bulk",
            data={
                "csrf_token": csrf,
                "image": iid,
                "action": "relabel",
                "label": task["labels"]["dog"],
            },
        )
        assert "Labelled 1 image dog." in client.get(moved.headers["location"]).text
    # Another session's link does not carry over.
    with signed_in_client(web_user) as other:
        assert "Labelled 1 image dog." not in other.get(moved.headers["location"]).text


# ---- the phrasing (pure) ----------------------------------------------------------------------

NOW = "2026-12-07T12:00:00.000000Z"


def test_how_long_ago_reads_as_people_say_it() -> None:
    assert ago("2026-12-07T11:59:30.000000Z", NOW) == "just now"
    assert ago("2026-12-07T11:59:00.000000Z", NOW) == "1 minute ago"
    assert ago("2026-12-07T11:58:00.000000Z", NOW) == "2 minutes ago"
    assert ago("2026-12-07T09:00:00.000000Z", NOW) == "3 hours ago"
    assert ago("2026-12-06T11:00:00.000000Z", NOW) == "1 day ago"
    assert ago("2026-12-01T12:00:00.000000Z", NOW) == "6 days ago"
    assert ago("2026-11-01T08:30:00.000000Z", NOW) == "2026-11-01 08:30 UTC"


def test_history_lines_name_who_and_keep_an_old_upload() -> None:
    events = [
        Event("unlabelled", "alice", "circle", "1.5", None, "2026-12-07T11:58:00.000000Z"),
        Event("real", None, None, "false", "true", "2026-12-07T11:57:00.000000Z"),
        Event("test_image", "bob", None, "true", "false", "2026-12-07T11:56:00.000000Z"),
    ]
    lines = history_lines(events, "2026-12-05T12:00:00.000000Z", NOW)
    assert [(line.text, line.ago) for line in lines] == [
        ("label circle = 1.5 taken away by alice", "2 minutes ago"),
        ("marked real", "3 minutes ago"),  # no user recorded: no name
        ("no longer a test image by bob", "4 minutes ago"),
        # An image from before schema 5 has no upload event: its upload is still listed.
        ("uploaded", "2 days ago"),
    ]


# ---- the schema upgrade -----------------------------------------------------------------------


def downgrade_to_version_4(db: Database) -> None:
    """The schema as version 4 left it: no image history, no training progress."""
    with db.write() as session:
        session.execute(text("DROP TABLE image_events"))
        session.execute(text("ALTER TABLE training_jobs DROP COLUMN progress"))
        session.execute(text("ALTER TABLE training_jobs DROP COLUMN stage"))
        session.execute(text("UPDATE schema_info SET value = '4' WHERE key = 'schema_version'"))


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_version_4_database_gains_history_and_progress(
    engine: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    if engine == "sqlite":
        url = f"sqlite:///{tmp_path / 'v4.db'}"
    else:
        url = str(request.getfixturevalue("postgres").new_database())
    db = Database(url)
    db.create_all()
    accounts.create_user(db, "kept")
    downgrade_to_version_4(db)
    db.dispose()
    db = Database(url)
    try:
        db.create_all()
        inspector = inspect(db.engine)
        columns = {c["name"] for c in inspector.get_columns("training_jobs")}
        assert {"progress", "stage"} <= columns
        assert "image_events" in inspector.get_table_names()
        assert "ix_image_events_image" in {i["name"] for i in inspector.get_indexes("image_events")}
        with db.read() as session:
            version = session.execute(
                text("SELECT value FROM schema_info WHERE key = 'schema_version'")
            ).scalar_one()
        assert version == str(tables.SCHEMA_VERSION)
        assert accounts.sign_in_record(db, "kept") is not None  # the rows stayed
    finally:
        db.dispose()
