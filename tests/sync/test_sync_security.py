"""Security, end to end (issue 7): the token is nowhere but where it was given (not in
any output, `--json` or not, not in an error, not in the catalog's bytes, not in any file
of the repository or of the server), and a decompression bomb served by the remote never
reaches the disk. Unit-level checks live beside the code they test: client messages and
logs (tests/remote/test_remote_auth.py), credential files 0600
(tests/remote/test_credentials.py, test_sync_login.py), remote names that try to escape
(test_sync_commands.py), users and workspaces kept apart, body and bomb limits of the
server (tests/server/)."""

from __future__ import annotations

import base64
from pathlib import Path

from support.faultproxy import FaultProxy
from support.imagegen import decompression_bomb_png
from support.inproc import engine_sync
from support.synchelp import World, img

from localrepo.repository import init_repository


def every_byte_under(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def test_the_token_is_in_no_output_no_error_and_no_file(world: World, live_server) -> None:
    token = world.token
    a = world.init("a", "pets")
    a.write("dog/a.jpg", 1)
    a.write("cat/b.jpg", 2)
    outputs = []
    for args in (
        ("sync", "--json"),
        ("-v", "sync"),
        ("status", "--json"),
        ("status",),
        ("log", "--json"),
        ("conflicts", "--json"),
        ("verify", "--json"),
        ("tasks", "--json"),
        ("labels", "--json"),
        ("remote", "show"),
        ("sync", "--json", "--token", token),
        ("-v", "push", "-n"),
    ):
        proc = a.run(*args)
        outputs += [proc.stdout, proc.stderr]
    # A failure: the remote unreachable (exit 5), with the token from the flag and the env.
    a.run("remote", "set", "http://127.0.0.1:9/")
    for extra in ((), ("--token", token)):
        proc = a.run("sync", *extra, expect=5, env={"LOCALREPO_RETRY_ATTEMPTS": "1"})
        outputs += [proc.stdout, proc.stderr]
        assert proc.stderr.strip()  # it did say something
    leaks = [o for o in outputs if token in o]
    assert not leaks, leaks
    # No file of the repository (catalog with its WAL, config, logs, journal...) holds
    # it, nor the user's config folder (no login here), nor any file of the server (its
    # database keeps token hashes only, its log no header).
    files = every_byte_under(a.root) | every_byte_under(world.config_dir)
    files |= every_byte_under(live_server.data_dir) | {
        "server log": live_server.log_text().encode()
    }
    assert any(name.endswith("catalog.db") for name in files)
    found = [name for name, data in files.items() if token.encode() in data]
    assert not found, found


def test_a_decompression_bomb_from_the_remote_never_reaches_the_disk(
    account, tmp_path: Path
) -> None:
    root = tmp_path / "c"
    init_repository(root, task="pets", task_type="multi_class", remote=account.url)
    (root / "dog").mkdir()
    (root / "dog" / "a.jpg").write_bytes(img(1))
    engine_sync(root, account.url, account.token)
    bomb = decompression_bomb_png()
    with account.client() as api:
        [dog] = [lab["id"] for lab in api.get("label/").json()["results"]]
        ids = []
        for n in (2, 3):
            image = api.post(
                "training-image/",
                json={"base64": base64.b64encode(img(n)).decode(), "noresize": True},
            ).json()
            api.post(f"training-image/{image['id']}/add-label/", json={"label_id": dog})
            ids.append(image["id"])
        bomb_path = api.get(f"training-image/{ids[0]}/").json()["img_path"]
    marker = bomb_path.split("/media/", 1)[1].encode()
    proxy = FaultProxy(account.url)
    proxy.rewrite = lambda m, p, body: bomb if m == "GET" and marker.decode() in p else body
    proxy.start()
    try:
        # The listing names media URLs on the server itself: send them through the proxy.
        rewrite_media = proxy.rewrite
        origin = account.url.rstrip("/").encode()
        proxy.rewrite = lambda m, p, body: rewrite_media(m, p, body).replace(
            origin, proxy.url.rstrip("/").encode()
        )
        report = engine_sync(root, proxy.url, account.token)
    finally:
        proxy.stop()
    failed = "\n".join(f"{w}: {r}" for w, r in report.outcome.failed)
    assert ids[0] in failed and "too large" in failed, failed
    names = sorted(p.name for p in (root / "dog").iterdir())
    assert names == sorted(["a.jpg", f"{ids[1]}.jpg"]), names  # the other image came down
    assert not any(bomb == p.read_bytes() for p in root.rglob("*") if p.is_file())
