"""Images seeded in bulk (data/imageseed.py) are what uploads and label links through
the API leave: against a real server, they list, come through the change feed, download
and carry the same history as an uploaded one, and a `repo sync` of a tree holding the
same files uploads nothing and downloads nothing."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.imagegen import image_bytes
from support.inproc import sim_client
from support.synchelp import tree_of
from support.treebuilder import write

from localrepo.repository import Repository, init_repository
from localrepo.scan.hashing import hash_bytes
from localrepo.server.config import Settings
from localrepo.server.data import accounts, imageevents
from localrepo.server.data.db import Database
from localrepo.server.data.imageseed import SeedImage, SeedRefused, seed_images
from localrepo.server.data.storage import Storage, open_storage
from localrepo.sync.engine import Engine, SyncOptions


@pytest.fixture
def server_data(live_server: Any) -> Iterator[tuple[Database, Storage]]:
    """The live server's database and blob store, as another process of it opens them."""
    settings = Settings(data_dir=live_server.data_dir, database_url=live_server.database_url)
    db = Database.from_settings(settings)
    try:
        yield db, open_storage(settings, db)
    finally:
        db.dispose()


def _owner(db: Database, token: str) -> tuple[str, str]:
    """(user id, default workspace id) of a token."""
    found = accounts.token_owner(db, accounts.hash_token(token))
    assert found is not None
    return str(found[1]), str(found[2])


def _as_uploaded(data: bytes, name: str, label: str) -> SeedImage:
    """A file as `repo sync` uploads it: its content hash and name in the metadata."""
    meta = {"content_hash": "xxh3_128:" + hash_bytes(data), "original_file_name": name}
    return SeedImage(name, data, ((label, None),), meta)


def _same_but_identity(doc: dict[str, Any]) -> dict[str, Any]:
    """An image's answer without what differs between any two images."""
    skip = {"id", "created", "img_path", "thumb_img_path", "meta_data"}
    return {k: v for k, v in doc.items() if k not in skip}


def test_seeded_images_list_feed_download_and_read_as_uploaded_ones(
    live_server: Any, server_data: tuple[Database, Storage]
) -> None:
    db, blobs = server_data
    account = live_server.new_account()
    user, ws = _owner(db, account.token)
    with account.client() as api:
        task = api.post("task/", json={"name": "pets", "type": "multi_class"}).json()
        cat = api.post("label/", json={"name": "cat", "type": "category"}).json()
        api.post(f"task/{task['id']}/add-label/", json={"label_id": cat["id"]})
        uploaded = api.post(
            "training-image/",
            json={
                "base64": base64.b64encode(image_bytes(1)).decode(),
                "noresize": True,
                "meta_data": {"original_file_name": "a.jpg"},
            },
        ).json()
        api.post(f"training-image/{uploaded['id']}/add-label/", json={"label_id": cat["id"]})
        cursor = api.get("training-image/changes/").json()["cursor"]

        files = [image_bytes(n) for n in (2, 3, 4)]
        seeded = seed_images(
            db,
            blobs,
            ws,
            task["id"],
            [
                _as_uploaded(files[0], "b.jpg", "cat"),
                _as_uploaded(files[1], "c.jpg", "dog"),
                _as_uploaded(files[2], "d.jpg", "cat"),
                _as_uploaded(files[0], "b-again.jpg", "cat"),  # a repeat: skipped
                _as_uploaded(image_bytes(1), "a-again.jpg", "cat"),  # stored: skipped
            ],
            user_id=user,
            chunk=2,
        )
        assert (seeded.added, seeded.duplicates, seeded.labels_created) == (3, 2, 1)

        listed = api.get("training-image/", params={"page_size": 100}).json()["results"]
        assert len(listed) == 4
        by_id = {doc["id"]: doc for doc in listed}
        reference = _same_but_identity(by_id.pop(uploaded["id"]))
        by_name = {doc["meta_data"]["original_file_name"]: doc for doc in by_id.values()}
        assert sorted(by_name) == ["b.jpg", "c.jpg", "d.jpg"]
        for name in ("b.jpg", "d.jpg"):
            assert _same_but_identity(by_name[name]) == reference  # labels [cat], sizes, flags
        [dog] = by_name["c.jpg"]["labels"]
        assert dog["name"] == "dog" and dog["type"] == "category"
        attached = {
            lab["name"] for lab in api.get("label/", params={"task": task["id"]}).json()["results"]
        }
        assert attached == {"cat", "dog"}

        feed = api.get("training-image/changes/", params={"since": cursor}).json()
        assert sorted(feed["results"], key=lambda d: d["id"]) == sorted(
            by_id.values(), key=lambda d: d["id"]
        )
        assert feed["removed"] == []

        for name, data in zip(["b.jpg", "c.jpg", "d.jpg"], files, strict=True):
            doc = by_name[name]
            assert api.get(doc["img_path"]).content == data
            thumb = api.get(doc["thumb_img_path"])
            assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"

        # The history an upload and a link leave; the seeded bytes are a duplicate now.
        kinds = [e.kind for e in imageevents.history(db, ws, by_name["b.jpg"]["id"])]
        assert kinds == [e.kind for e in imageevents.history(db, ws, uploaded["id"])]
        assert kinds == ["labelled", "uploaded"]
        again = api.post("training-image/", json={"base64": base64.b64encode(files[1]).decode()})
        assert again.status_code == 400 and by_name["c.jpg"]["id"] in again.text

        # A file that is no image refuses its chunk, naming it; nothing of it is stored.
        with pytest.raises(SeedRefused, match=r"broken\.jpg"):
            seed_images(
                db,
                blobs,
                ws,
                task["id"],
                [
                    _as_uploaded(image_bytes(5), "e.jpg", "cat"),
                    _as_uploaded(b"nope", "broken.jpg", "cat"),
                ],
                user_id=user,
            )
        assert api.get("training-image/", params={"page_size": 1}).json()["count"] == 4


def test_a_sync_of_the_same_files_after_seeding_moves_nothing(
    live_server: Any, server_data: tuple[Database, Storage], tmp_path: Path
) -> None:
    db, blobs = server_data
    account = live_server.new_account()
    user, ws = _owner(db, account.token)
    root = tmp_path / "pets"
    files = {"cat/a.jpg": 10, "cat/b.jpg": 11, "dog/c.jpg": 12, "dog/2024/d.jpg": 13}
    for rel, seed in files.items():
        write(root, rel, image_bytes(seed))  # old mtimes: no file to read again
    before = tree_of(root)
    with account.client() as api:
        task = api.post("task/", json={"name": "pets", "type": "multi_class"}).json()
    seed_images(
        db,
        blobs,
        ws,
        task["id"],
        [
            _as_uploaded((root / rel).read_bytes(), rel.rsplit("/", 1)[-1], rel.split("/")[0])
            for rel in files
        ],
        user_id=user,
    )
    init_repository(root, task="pets", task_type="multi_class", remote=account.url)
    reports = []
    for _ in range(3):
        client = sim_client(account.url, account.token)
        try:
            reports.append(Engine(Repository(root), client, SyncOptions(join=True)).run())
        finally:
            client.close()
    first, second, third = reports
    assert all(report.in_sync for report in reports)
    for report in reports:
        out = report.outcome
        assert (out.uploaded, out.downloaded, out.labels_created) == (0, 0, 0)
        assert (out.relabelled_remote, out.relabelled_local, out.trashed_local) == (0, 0, 0)
    assert first.outcome.synced == len(files)  # the merge base recorded, nothing moved
    # Then the feed has nothing new, the plan is empty (a clean run: the quiet mark),
    # and the next sync is one feed request.
    assert second.tasks[0].from_feed and second.tasks[0].plan is not None
    assert second.tasks[0].plan.ops == [] and not second.tasks[0].quiet
    assert third.tasks[0].quiet
    assert tree_of(root) == before
