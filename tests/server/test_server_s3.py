"""Object storage (issue 22 item 3): a real server with ``--storage s3://...`` against a
real S3-compatible server on loopback (moto's server mode: tests/support/s3server.py).
Uploads, media by proxy and by presigned redirect, thumbnails, deletion, the sweep's
grace period, a missing bucket at start, and the secret key kept out of every log."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from support.s3server import SECRET_KEY
from support.waiting import limit

from .helpers import image_bytes, upload
from .trainhelp import SHAPES, classify, multi_class_task, train


def _sha(url: str) -> str:
    return url.split("/media/")[1].split("/")[0]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localrepo.server.cli", *args],
        capture_output=True,
        text=True,
        timeout=limit(60),
        env=env,
    )


def test_uploads_live_in_the_bucket_and_are_served_through_the_server(
    server_factory: Any, s3_bucket: Any
) -> None:
    server = server_factory("--storage", s3_bucket.url)
    api = server.client()
    first = upload(api, image_bytes(1))
    second = upload(api, image_bytes(2), test_image=True)
    sha = _sha(first["img_path"])
    # The bytes are in the bucket under blobs/, not in the data folder.
    assert set(s3_bucket.objects("blobs/")) == {
        f"blobs/{sha[:2]}/{sha}",
        f"blobs/{_sha(second['img_path'])[:2]}/{_sha(second['img_path'])}",
    }
    assert not [p for p in (server.data_dir / "blobs").rglob("*") if p.is_file()]
    got = httpx.get(first["img_path"])
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.content == s3_bucket.get(f"blobs/{sha[:2]}/{sha}")
    assert hashlib.sha256(got.content).hexdigest() == sha
    assert got.headers["etag"] == f'"{sha}"'
    # Listed and fetched back like any image.
    listed = {x["id"] for x in api.get("training-image/").json()["results"]}
    assert listed == {first["id"], second["id"]}
    # The thumbnail is made on first request and kept in the bucket.
    thumb = httpx.get(first["thumb_img_path"])
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    assert s3_bucket.get(f"thumbs/{sha[:2]}/{sha}.jpg") == thumb.content
    assert httpx.get(first["thumb_img_path"]).content == thumb.content  # from the bucket now
    # Deleting the image removes its bytes and its thumbnail from the bucket.
    assert api.delete(f"training-image/{first['id']}/").status_code == 204
    assert not [k for k in s3_bucket.objects() if sha in k]
    assert httpx.get(first["img_path"]).status_code == 404
    assert httpx.get(second["img_path"]).status_code == 200
    # The same bytes in two workspaces share one object, kept while one image has it.
    other = server.new_account().client()
    again = upload(other, image_bytes(2))
    shared = _sha(again["img_path"])
    assert again["img_path"] != second["img_path"] and shared == _sha(second["img_path"])
    assert api.delete(f"training-image/{second['id']}/").status_code == 204
    assert set(s3_bucket.objects("blobs/")) == {f"blobs/{shared[:2]}/{shared}"}
    assert httpx.get(again["img_path"]).content == s3_bucket.get(f"blobs/{shared[:2]}/{shared}")
    assert httpx.get(server.url + "readyz").json()["storage"] == "ok"


def test_redirect_answers_a_presigned_url_that_downloads_the_bytes(
    server_factory: Any, s3_bucket: Any
) -> None:
    server = server_factory("--storage", s3_bucket.url, "--media", "redirect")
    image = upload(server.client(), image_bytes(3))
    sha = _sha(image["img_path"])
    r = httpx.get(image["img_path"])
    assert r.status_code == 307 and r.headers["cache-control"] == "no-store"
    location = r.headers["location"]
    assert location.startswith(s3_bucket.endpoint) and "X-Amz-Signature=" in location
    assert "X-Amz-Expires=300" in location and SECRET_KEY not in location
    fetched = httpx.get(location)
    assert fetched.status_code == 200
    assert fetched.content == s3_bucket.get(f"blobs/{sha[:2]}/{sha}")
    thumb = httpx.get(image["thumb_img_path"], follow_redirects=True)
    assert thumb.status_code == 200 and thumb.content == s3_bucket.get(
        f"thumbs/{sha[:2]}/{sha}.jpg"
    )
    # A dead media URL is still a 404, not a redirect to nothing.
    assert httpx.get(image["img_path"].replace(sha[:8], "0" * 8)).status_code == 404


def test_the_sweep_removes_old_orphan_objects_and_keeps_young_ones(
    server_factory: Any, s3_bucket: Any
) -> None:
    from localrepo.server.config import Settings
    from localrepo.server.data.db import Database
    from localrepo.server.data.storage import open_storage
    from localrepo.server.fsck import sweep

    server = server_factory("--storage", s3_bucket.url)
    kept = upload(server.client(), image_bytes(4))
    kept_sha = _sha(kept["img_path"])
    old, young = hashlib.sha256(b"old").hexdigest(), hashlib.sha256(b"young").hexdigest()
    s3_bucket.put(f"blobs/{old[:2]}/{old}", b"old")  # a crash between PUT and commit
    s3_bucket.put(f"thumbs/{old[:2]}/{old}.jpg", b"thumb")
    grace = 3.0
    time.sleep(grace + 0.2)  # the object must be older than the grace period
    s3_bucket.put(f"blobs/{young[:2]}/{young}", b"young")  # an upload in flight elsewhere
    settings = Settings(data_dir=server.data_dir, storage_url=s3_bucket.url)
    db = Database(server.database_url)
    try:
        result = sweep(db, open_storage(settings, db), grace)
    finally:
        db.dispose()
    assert (result.orphans_removed, result.thumbs_removed) == (1, 1)
    assert result.kept_recent == 1 and result.missing_images == ()
    assert set(s3_bucket.objects()) == {
        f"blobs/{kept_sha[:2]}/{kept_sha}",
        f"blobs/{young[:2]}/{young}",
    }
    # `fsck` sweeps the bucket too; with no grace the young orphan goes as well.
    done = server.run_cli("fsck", "--storage", s3_bucket.url, "--grace-seconds", "0")
    assert "1 orphan blob" in done.stdout and "every image has its file" in done.stdout
    assert set(s3_bucket.objects()) == {f"blobs/{kept_sha[:2]}/{kept_sha}"}
    # An image whose object went missing is named, never deleted.
    s3_bucket.client.delete_object(
        Bucket=s3_bucket.name, Key=f"{s3_bucket.prefix}/blobs/{kept_sha[:2]}/{kept_sha}"
    )
    missing = server.run_cli("fsck", "--storage", s3_bucket.url, check=False)
    assert missing.returncode == 1 and kept["id"] in missing.stdout


def test_a_missing_bucket_or_a_secret_in_the_url_is_refused_at_start(
    tmp_path: Path, s3_bucket: Any
) -> None:
    missing = s3_bucket.url.replace(s3_bucket.name, "no-such-bucket-here")
    for command in ("serve", "worker"):
        done = _cli(command, "--data", str(tmp_path / "data"), "--storage", missing)
        assert done.returncode == 2, (command, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert lines[0].startswith("error: --storage s3://no-such-bucket-here/imgs?endpoint=")
        assert "NoSuchBucket" in lines[0] and "AWS_SECRET_ACCESS_KEY" in lines[0]
    secret = "hunter2-in-the-url"  # more forms: test_storage_units.py
    url = f"s3://AKIA:{secret}@{s3_bucket.name}/x"
    done = _cli("serve", "--data", str(tmp_path / "data"), "--storage", url)
    assert done.returncode == 2 and "refused" in done.stderr
    assert secret not in done.stderr + done.stdout
    # --media redirect needs a bucket.
    done = _cli("serve", "--data", str(tmp_path / "data"), "--media", "redirect")
    assert done.returncode == 2 and "--media redirect needs --storage s3://" in done.stderr
    # backup copies the data folder's files: not a bucket's.
    done = _cli(
        "backup", str(tmp_path / "b"), "--data", str(tmp_path / "d"), "--storage", s3_bucket.url
    )
    assert done.returncode == 2 and "object store's own tools" in done.stderr


def test_the_secret_key_never_appears_in_the_server_log(
    server_factory: Any, s3_bucket: Any
) -> None:
    server = server_factory(
        "--storage", s3_bucket.url, "--media", "redirect", "--log-level", "debug"
    )
    api = server.client()
    image = upload(api, image_bytes(5))
    assert httpx.get(image["img_path"]).status_code == 307
    assert httpx.get(image["thumb_img_path"]).status_code == 307
    assert httpx.get(server.url + "readyz").json()["storage"] == "ok"
    assert api.delete(f"training-image/{image['id']}/").status_code == 204
    server.stop()
    log = server.log_text()
    assert "listening on" in log and SECRET_KEY not in log


def test_the_worker_trains_from_images_in_the_bucket(server_factory: Any, s3_bucket: Any) -> None:
    from support.imagegen import class_image

    server = server_factory(
        "--storage", s3_bucket.url, "--backend", "handcrafted", "--min-images-per-label", "3"
    )
    api = server.client()
    task, _ = multi_class_task(api, per_label=5)
    assert len(s3_bucket.objects("blobs/")) == 3 * 5
    model = train(api, task["id"])
    assert model["train_status"] == "TRAINED", model
    assert model["metrics"]["backend"] == "handcrafted"
    assert model["metrics"]["train_images"] + model["metrics"]["test_images"] == 15
    answer = classify(api, task["id"], [class_image(shape, 50) for shape in SHAPES])
    assert [r["_status"]["code"] for r in answer["records"]] == [200, 200, 200]
