"""Dedicated servers: body limit, rate limit, fault knobs, bomb limit, restarts, CLI."""

from __future__ import annotations

import io
import json
import time

import httpx
from PIL import Image

from .helpers import b64, image_bytes, make_task, smooth_jpeg, upload


def test_body_size_limit_answers_413_json(server_factory) -> None:
    server = server_factory("--max-body-mb", "0.05")  # 52428 bytes
    with server.client() as api:
        small = image_bytes(1)
        assert api.post("training-image/", json={"base64": b64(small)}).status_code == 201
        big = smooth_jpeg(2, (300, 300)) + b"\0" * 60_000
        r = api.post("training-image/", json={"base64": b64(big)})
        assert r.status_code == 413
        assert r.json() == {"detail": "Request body is too large (limit 52428 bytes)."}

        # Without a Content-Length (chunked), the limit is enforced while reading.
        def chunks() -> object:
            yield b'{"base64": "'
            for _ in range(20):
                yield b"A" * 4096
            yield b'"}'

        r = api.post(
            "training-image/", content=chunks(), headers={"content-type": "application/json"}
        )
        assert r.status_code == 413
        assert "too large" in r.json()["detail"]
        r = api.post("training-image/", files={"img_path": ("a.jpg", big, "image/jpeg")})
        assert r.status_code == 413
        assert api.get("training-image/").json()["count"] == 1
    assert [p for p in server.data_dir.rglob("*.part")] == []


def test_rate_limit_answers_429_with_retry_after(server_factory) -> None:
    server = server_factory("--rate-limit", "2/s")
    other = server.new_account()
    with server.client() as api:
        codes = [api.get("task/").status_code for _ in range(2)]
        assert codes == [200] * 2  # the burst
        # Then requests until one is refused: a busy machine may be slow enough for the
        # bucket to refill between some of them, so how many pass is not fixed.
        answers = (api.get("task/") for _ in range(200))
        r = next((r for r in answers if r.status_code == 429), None)
        assert r is not None, "200 requests in a row and none throttled"
        assert int(r.headers["Retry-After"]) >= 1
        assert "throttled" in r.json()["detail"]
        # The limit is per token: another user is not throttled by this one.
        assert httpx.get(other.api_url + "task/", headers=other.headers).status_code == 200
        time.sleep(1.1)
        assert api.get("task/").status_code == 200


def test_fail_every_and_latency_fault_knobs(server_factory) -> None:
    server = server_factory("--fail-every", "3", "--latency-ms", "50")
    with server.client() as api:
        started = time.monotonic()
        answers = [api.get("task/") for _ in range(6)]
        elapsed = time.monotonic() - started
    assert [r.status_code for r in answers] == [200, 200, 503, 200, 200, 503]
    assert elapsed >= 0.3  # 6 x 50 ms
    assert answers[2].headers["Retry-After"] == "1"
    assert "injected" in answers[2].json()["detail"]


def test_configurable_decompression_bomb_limit_and_resize(server_factory) -> None:
    server = server_factory("--max-image-pixels", "250000", "--resize-to", "200")
    with server.client() as api:
        r = api.post("training-image/", json={"base64": b64(smooth_jpeg(3, (400, 400)))})
        assert r.status_code == 201
        assert (r.json()["img_width"], r.json()["img_height"]) == (200, 200)
        # 600 x 600 = 360000 pixels: over the limit but under twice it (Pillow warns).
        r = api.post("training-image/", json={"base64": b64(smooth_jpeg(4, (600, 600)))})
        assert r.status_code == 400 and "too large" in r.json()["base64"][0]
        # Over twice the limit (Pillow raises).
        r = api.post("training-image/", json={"base64": b64(smooth_jpeg(5, (800, 800)))})
        assert r.status_code == 400 and "too large" in r.json()["base64"][0]


def test_restart_keeps_data_port_and_tokens(server_factory) -> None:
    server = server_factory()
    url, token = server.url, server.token
    with server.client() as api:
        task = make_task(api, "survives")
        image = upload(api, image_bytes(7))
    server.restart()
    assert server.url == url and server.token == token
    with server.client() as api:
        assert api.get(f"task/{task['id']}/").json()["name"] == "survives"
        assert httpx.get(image["img_path"]).content == image_bytes(7)
    # A crash (SIGKILL) loses nothing that was answered, and the temp file of a write cut
    # short is cleaned up at the next start.
    with server.client() as api:
        image2 = upload(api, image_bytes(8))
    server.stop(kill=True)
    torn = server.data_dir / "blobs" / "ab" / ".abcd.0123.part"
    torn.parent.mkdir(exist_ok=True)
    torn.write_bytes(b"half an image")
    server.start()
    assert not torn.exists()
    with server.client() as api:
        assert api.get(f"training-image/{image2['id']}/").status_code == 200
        assert httpx.get(image2["img_path"]).content == image_bytes(8)


def test_accounts_cli(server_factory) -> None:
    server = server_factory()
    out = server.run_cli("user", "create", "carol")
    assert "carol" in out.stdout
    dup = server.run_cli("user", "create", "carol", check=False)
    assert dup.returncode == 1 and "already exists" in dup.stderr
    bad = server.run_cli("user", "create", "no spaces", check=False)
    assert bad.returncode == 1 and "invalid user name" in bad.stderr
    created = server.run_cli("token", "create", "carol", "--name", "laptop")
    token = created.stdout.strip()
    assert len(token) == 40 and "shown only this once" in created.stderr
    missing = server.run_cli("token", "create", "nobody", check=False)
    assert missing.returncode == 1 and "no user named 'nobody'" in missing.stderr
    ws = server.run_cli("workspace", "create", "Shared", "--user", "carol").stdout
    ws_id = ws.strip().rsplit(" ", 1)[1]
    listing = server.run_cli("workspace", "list", "--user", "carol").stdout
    assert "Default  (default)" in listing and ws_id in listing
    tokens = server.run_cli("token", "list", "carol").stdout
    assert "laptop" in tokens and token not in tokens
    users = server.run_cli("user", "list").stdout
    assert "carol" in users and "dev" in users
    headers = {"Authorization": f"Token {token}"}
    r = httpx.get(server.url + "account/v2/workspace/", headers=headers)
    assert [w["name"] for w in r.json()] == ["Default", "Shared"]
    r = httpx.post(
        server.api_url + "task/", headers=headers, json={"name": "x", "workspace": ws_id}
    )
    assert r.status_code == 201 and r.json()["workspace"] == ws_id


def test_serve_dev_prints_a_working_token(server_factory) -> None:
    server = server_factory()
    log = server.log_text()
    assert f"token: {server.token}" in log
    assert "listening on " + server.url in log
    r = httpx.get(server.api_url + "task/", headers={"Authorization": f"Token {server.token}"})
    assert r.status_code == 200
    assert (
        json.loads(httpx.get(server.url + "openapi.json").text)["info"]["title"]
        == "localrepo-server"
    )


def test_resized_png_with_alpha_stays_png(server_factory) -> None:
    server = server_factory("--resize-to", "100")
    im = Image.new("RGBA", (300, 150), (255, 0, 0, 128))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    with server.client() as api:
        image = upload(api, buf.getvalue())
    assert image["img_path"].endswith(".png")
    assert (image["img_width"], image["img_height"]) == (100, 50)
    r = httpx.get(image["img_path"])
    assert r.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(r.content)) as got:
        assert got.mode == "RGBA" and got.size == (100, 50)
