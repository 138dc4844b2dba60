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


def test_labels_of_a_repository_task_a_remote_task_and_an_unknown_one(world: World) -> None:
    a = world.init("a", "pets")
    a.write("dog/d.jpg", 1)
    a.write("birds/sparrow/s.jpg", 2)
    a.run("task", "add", "birds", "--task", "birds")
    a.sync()
    pets_id = next(t["id"] for t in world.remote.tasks() if t["name"] == "pets")

    def names(proc: subprocess.CompletedProcess) -> set[str]:
        assert proc.returncode == 0, proc.stderr
        return {lab["name"] for lab in json.loads(proc.stdout)}

    inside = ("-C", str(a.root))
    assert names(repo(world, *inside, "labels", "--json", token_env=True)) == {"dog", "sparrow"}
    # --task: a task of this repository, by its local name.
    assert names(repo(world, *inside, "labels", "--task", "pets", "--json", token_env=True)) == {
        "dog"
    }
    assert names(repo(world, *inside, "labels", "--task", "birds", "--json", token_env=True)) == {
        "sparrow"
    }
    # --remote-task: a task of the remote, by name or id, inside or outside a repository.
    assert names(
        repo(world, *inside, "labels", "--remote-task", "birds", "--json", token_env=True)
    ) == {"sparrow"}
    outside = world.tmp / "elsewhere"
    outside.mkdir()
    by_id = repo(
        world, "labels", "--remote-task", pets_id, "--url", world.url, "--json",
        token_env=True, cwd=outside,
    )  # fmt: skip
    assert names(by_id) == {"dog"}

    # Unknown names: exit 2, the close one, every one; nothing on stdout.
    proc = repo(world, *inside, "labels", "--task", "pest", token_env=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "--task: no task 'pest' in this repository; did you mean 'pets'?" in proc.stderr
    assert "(tasks: birds, pets)" in proc.stderr
    assert "For a task of the remote (by name or id): repo labels --remote-task pest" in (
        proc.stderr
    )
    proc = repo(
        world, "labels", "--remote-task", "brids", "--url", world.url,
        token_env=True, cwd=outside,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert "--remote-task: no task 'brids' on" in proc.stderr
    assert "did you mean 'birds'?" in proc.stderr
    # --task outside a repository, or with another remote: a usage error that says what to use.
    proc = repo(world, "labels", "--task", "pets", "--url", world.url, token_env=True, cwd=outside)
    assert proc.returncode == 2 and "--remote-task" in proc.stderr
    proc = repo(world, "labels", "--task", "pets", token_env=True, cwd=outside)
    assert proc.returncode == 2 and "repo labels --remote-task pets" in proc.stderr
    # A task of this repository that was never synced: the server does not know it.
    a.write("cats/tabby/t.jpg", 3)
    a.run("task", "add", "cats", "--task", "cats")
    proc = repo(world, *inside, "labels", "--task", "cats", token_env=True)
    assert proc.returncode == 1 and "never synced" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_login_remembers_the_remote_for_commands_outside_a_repository(world: World) -> None:
    a = world.init("a", "pets")
    a.write("dog/d.jpg", 1)
    a.sync()
    outside = world.tmp / "elsewhere"
    outside.mkdir()
    # Nothing remembered yet: a usage error saying how to give a remote.
    proc = repo(world, "tasks", cwd=outside, token_env=True)
    assert proc.returncode == 2 and "repo login URL" in proc.stderr, proc.stderr

    proc = repo(world, "login", world.url, "--token", world.token, cwd=outside)
    assert proc.returncode == 0, proc.stderr
    assert world.token not in proc.stdout + proc.stderr
    settings = world.config_dir / "config.toml"
    assert world.url in settings.read_text()
    assert world.token not in settings.read_text()  # the token is only in credentials.toml
    creds = world.config_dir / "credentials.toml"
    assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600 and world.token in creds.read_text()

    # Outside any repository, with no --url and no token in the environment: the
    # remembered remote and its stored token.
    proc = repo(world, "tasks", "--json", cwd=outside)
    assert proc.returncode == 0, proc.stderr
    assert [t["name"] for t in json.loads(proc.stdout)] == ["pets"]
    assert proc.stderr == ""  # said only with -v
    proc = repo(world, "-v", "labels", "--remote-task", "pets", "--json", cwd=outside)
    assert proc.returncode == 0, proc.stderr
    assert [lab["name"] for lab in json.loads(proc.stdout)] == ["dog"]
    assert f"Using {world.url}, the remote of 'repo login'" in proc.stderr
    # Logging in again outside a repository needs no URL: the remembered one.
    proc = repo(world, "login", "--token", world.token, cwd=outside)
    assert proc.returncode == 0 and world.url in proc.stderr, proc.stderr

    # Inside a repository, the repository's remote wins over the remembered one.
    other = world.tmp / "other"
    other.mkdir()
    assert repo(world, "init", str(other), "--task", "t").returncode == 0
    proc = repo(world, "-C", str(other), "tasks")
    assert proc.returncode == 2 and "This repository has no remote" in proc.stderr
    proc = repo(world, "-C", str(other), "remote", "set", "http://127.0.0.1:9/")
    assert proc.returncode == 0
    proc = repo(world, "-C", str(other), "tasks", "--token", "x")
    assert proc.returncode == 5 and "127.0.0.1:9" in proc.stderr, proc.stderr
