"""`repo login`, `repo remote`, `repo tasks` and `repo labels`: the token comes from the
per-user credentials file (mode 0600) once login has stored it, and never shows up."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from support.synchelp import World


def repo(
    world: World, *args: str, token_env: bool = False, cwd=None
) -> subprocess.CompletedProcess:
    env = world.env()
    if not token_env:
        env.pop("LOCALREPO_TOKEN")
    return subprocess.run(
        [sys.executable, "-m", "localrepo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_login_stores_the_token_and_remote_commands_use_it(world: World) -> None:
    a = world.init("a", "pets")
    a.write("dog/d.jpg", 1)
    a.sync()
    # Without a token anywhere: exit 4, saying how to give one.
    proc = repo(world, "-C", str(a.root), "tasks")
    assert proc.returncode == 4 and "repo login" in proc.stderr, proc.stderr
    # A wrong token is refused and not saved.
    proc = repo(world, "-C", str(a.root), "login", "--token", "not-a-token")
    assert proc.returncode == 4 and "not-a-token" not in proc.stderr + proc.stdout
    creds = world.config_dir / "credentials.toml"
    assert not creds.exists() or world.token not in creds.read_text()
    # The right one is checked against the server and saved, readable only by the user.
    proc = repo(world, "-C", str(a.root), "login", "--token", world.token)
    assert proc.returncode == 0, proc.stderr
    assert world.token not in proc.stdout + proc.stderr
    assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
    assert world.token in creds.read_text()
    assert world.token not in (a.root / ".localrepo" / "config.toml").read_text()
    # Now the remote commands work with no --token and no LOCALREPO_TOKEN.
    proc = repo(world, "-C", str(a.root), "tasks", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [t["name"] for t in json.loads(proc.stdout)] == ["pets"]
    proc = repo(world, "-C", str(a.root), "labels", "--json")
    assert proc.returncode == 0, proc.stderr
    assert {(lab["name"], lab["images_count"]) for lab in json.loads(proc.stdout)} == {("dog", 1)}
    proc = repo(world, "-C", str(a.root), "remote", "show")
    assert world.url in proc.stdout and "Default" in proc.stdout
    proc = repo(world, "-C", str(a.root), "sync", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["failed"] == [], proc.stderr


def test_remote_set_changes_where_a_repository_syncs(world: World) -> None:
    root = world.tmp / "r"
    root.mkdir()
    proc = repo(world, "init", str(root), "--task", "t")
    assert proc.returncode == 0, proc.stderr
    proc = repo(world, "-C", str(root), "sync", token_env=True)
    assert proc.returncode == 1 and "repo remote set" in proc.stderr, proc.stderr
    proc = repo(world, "-C", str(root), "remote", "set", world.url)
    assert proc.returncode == 0, proc.stderr
    (root / "cat").mkdir()
    proc = repo(world, "-C", str(root), "sync", "--json", token_env=True)
    assert proc.returncode == 0, proc.stderr
    assert [lab["name"] for lab in world.remote.labels()] == ["cat"]


def test_retry_budget_comes_from_the_environment(world: World) -> None:
    import socket
    import threading

    # A port that takes connections and hangs up at once: a failure that may pass, so it
    # is retried (a port that refuses fails at once: tests/cli/test_cli_failfast.py).
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def hang_up() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        _retry_budget(world, port)
    finally:
        stop.set()
        thread.join()
        listener.close()


def _retry_budget(world: World, port: int) -> None:
    root = world.tmp / "r"
    root.mkdir()
    assert (
        repo(
            world, "init", str(root), "--task", "t", "--remote", f"http://127.0.0.1:{port}/"
        ).returncode
        == 0
    )
    env = dict(world.env(), LOCALREPO_RETRY_ATTEMPTS="2")
    proc = subprocess.run(
        [sys.executable, "-m", "localrepo", "-C", str(root), "sync"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 5 and "after 2 attempts" in proc.stderr, proc.stderr
    env["LOCALREPO_RETRY_ATTEMPTS"] = "many"
    proc = subprocess.run(
        [sys.executable, "-m", "localrepo", "-C", str(root), "sync"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "LOCALREPO_RETRY_ATTEMPTS" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
