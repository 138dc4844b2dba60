"""The upload's two paths: small images are checked on the event loop (fsync in a
flusher thread), anything bigger, or anything that would make the loop wait on a lock,
goes to the worker threads. Both must store the same thing, and the loop must never
stall behind a busy database or a blob being stored by a thread."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image
from support.imagegen import damaged_jpegs, full_decode_ok
from support.waiting import limit

from localrepo.server.data.storage import BlobStore

from .helpers import b64, image_bytes, smooth_jpeg


def _sqlite_server(server_factory, tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    # The lock behaviour under test is SQLite's (one writer): run on SQLite whatever
    # database the other server tests use.
    return server_factory(*args, database_url=f"sqlite:///{tmp_path / 'paths.db'}")


def test_upload_waits_for_another_writer_without_stalling_the_server(
    server_factory, tmp_path: Path
) -> None:
    server = _sqlite_server(server_factory, tmp_path)
    account = server.new_account()
    data = image_bytes(501)
    holder = sqlite3.connect(tmp_path / "paths.db", isolation_level=None, timeout=30)
    holder.execute("BEGIN IMMEDIATE")  # another process holds SQLite's write lock
    answers: list[httpx.Response] = []
    with account.client() as api:

        def send() -> None:
            with account.client() as own:
                answers.append(own.post("training-image/", json={"base64": b64(data)}))

        uploader = threading.Thread(target=send)
        uploader.start()
        try:
            uploader.join(0.5)
            assert uploader.is_alive(), "the upload finished while the database was locked"
            # The event loop still serves requests while that upload waits for the lock
            # (a stalled loop would answer only after the COMMIT below: never, here).
            r = api.get("training-image/", timeout=limit(30))
            assert r.status_code == 200 and r.json()["count"] == 0
            assert api.get("task/", timeout=limit(30)).status_code == 200
        finally:
            holder.execute("COMMIT")
            holder.close()
        uploader.join(limit(60))
        assert [a.status_code for a in answers] == [201], answers[0].text if answers else None
        listed = api.get("training-image/").json()
        assert [i["id"] for i in listed["results"]] == [answers[0].json()["id"]]
        assert httpx.get(answers[0].json()["img_path"]).content == data


@pytest.mark.parametrize("fsync", ["on the loop", "in a thread"])
def test_concurrent_identical_uploads_store_one_image_and_one_blob(
    server_factory, tmp_path: Path, fsync: str
) -> None:
    # --inline-fsync-ms 0: every blob's fsync goes to the flusher threads (a slow disk).
    args = ("--inline-fsync-ms", "0") if fsync == "in a thread" else ()
    server = _sqlite_server(server_factory, tmp_path, *args)
    account = server.new_account()
    others = [server.create_workspace(account.username, f"w{i}") for i in range(3)]
    data = image_bytes(502)
    sha = hashlib.sha256(data).hexdigest()

    def post(workspace: str | None) -> httpx.Response:
        body = {"base64": b64(data), **({"workspace": workspace} if workspace else {})}
        with account.client() as api:
            return api.post("training-image/", json=body)

    # Eight at once into the Default workspace, and one into each other workspace.
    targets: list[str | None] = [None] * 8 + others  # type: ignore[list-item]
    with ThreadPoolExecutor(len(targets)) as pool:
        answers = list(pool.map(post, targets))
    default = answers[:8]
    created = [a for a in default if a.status_code == 201]
    assert len(created) == 1, [a.text for a in default]
    image_id = created[0].json()["id"]
    for a in default:
        if a.status_code != 201:
            assert a.status_code == 400
            assert a.json()["detail"] == (
                f"Image already exists in workspace with image ID '{image_id}'."
            )
    assert [a.status_code for a in answers[8:]] == [201] * len(others)
    blobs = [p for p in (server.data_dir / "blobs").rglob("*") if p.is_file()]
    assert blobs == [server.data_dir / "blobs" / sha[:2] / sha]
    assert blobs[0].read_bytes() == data
    with account.client() as api:
        assert api.get("training-image/").json()["count"] == 1


def test_small_and_big_uploads_store_the_same_way(api: httpx.Client) -> None:
    small = image_bytes(503, size=(320, 240))  # checked on the event loop
    big = smooth_jpeg(504, (1600, 1200))  # over the loop's pixel budget: a worker thread
    big_kept = smooth_jpeg(505, (1600, 1200))
    answers = {
        "small": api.post("training-image/", json={"base64": b64(small)}),
        "big": api.post("training-image/", json={"base64": b64(big)}),
        "big noresize": api.post(
            "training-image/", json={"base64": b64(big_kept), "noresize": True}
        ),
    }
    assert {k: r.status_code for k, r in answers.items()} == dict.fromkeys(answers, 201)
    got = {k: r.json() for k, r in answers.items()}
    assert (got["small"]["img_width"], got["small"]["img_height"]) == (320, 240)
    assert httpx.get(got["small"]["img_path"]).content == small
    assert (got["big"]["img_width"], got["big"]["img_height"]) == (1024, 768)
    stored = httpx.get(got["big"]["img_path"]).content
    with Image.open(io.BytesIO(stored)) as im:
        assert im.size == (1024, 768)
    assert (got["big noresize"]["img_width"], got["big noresize"]["img_height"]) == (1600, 1200)
    assert httpx.get(got["big noresize"]["img_path"]).content == big_kept
    # A bad image is refused the same way on either path.
    truncated = small[: len(small) // 2]
    r = api.post("training-image/", json={"base64": b64(truncated)})
    assert r.status_code == 400 and "base64" in r.json()


def test_blob_store_notices_a_slow_disk_and_a_fast_one_again(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "b", tmp_path / "t", fast_fsync_seconds=0.001)
    assert blobs.fsync_is_fast()
    blobs.fsync_seconds = 10.0  # as after a run of very slow fsyncs (a stalled disk)
    assert not blobs.fsync_is_fast()
    for i in range(40):  # real fsyncs on this disk pull the average back down
        data = image_bytes(600 + i)
        pending = blobs.begin_put(hashlib.sha256(data).hexdigest(), data)
        assert pending is not None
        blobs.finish(pending)
    assert blobs.fsync_seconds < 1.0
    never = BlobStore(tmp_path / "b2", tmp_path / "t2", fast_fsync_seconds=0.0)
    assert not never.fsync_is_fast()  # --inline-fsync-ms 0


def test_a_blob_write_that_fails_leaves_no_temp_file(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "b", tmp_path / "t")
    data = image_bytes(700)
    sha = hashlib.sha256(data).hexdigest()
    pending = blobs.begin_put(sha, data)
    assert pending is not None and Path(pending.tmp).exists()
    blobs.abort(pending)
    assert not Path(pending.tmp).exists()
    assert [p for p, _, _ in blobs.stored_files()] == []
    assert blobs.begin_put(sha, data) is not None  # nothing was stored


def test_the_jpeg_check_refuses_exactly_what_a_full_decode_refuses() -> None:
    """The server checks a kept JPEG at 1/8 scale; it must accept and refuse the same
    bytes as a full Pillow decode: truncations and random corruption of baseline,
    progressive, 4:4:4, greyscale, CMYK and MPO JPEGs."""
    from localrepo.server.imaging import ImageRejected, prepare

    def server_ok(data: bytes) -> bool:
        try:
            prepare(data, noresize=True, resize_to=1024)
            return True
        except ImageRejected:
            return False

    cases = damaged_jpegs()
    verdicts = [(full_decode_ok(c), server_ok(c)) for c in cases]
    assert [i for i, (a, b) in enumerate(verdicts) if a != b] == []
    assert any(a for a, _ in verdicts) and not all(a for a, _ in verdicts)
