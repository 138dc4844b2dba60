"""`repo watch` / `repo daemon` on bad input and with nothing running: clear messages,
no traceback, no daemon left behind; the log rotates."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from support.synchelp import Clone, World


def test_start_without_a_remote_or_a_token_says_what_to_do(world: World, tmp_path: Path):
    bare = tmp_path / "bare"
    bare.mkdir()
    clone = Clone(bare, world.env())
    clone.run("init", "--task", "t")
    out = clone.run("daemon", "start", expect=1)
    assert "has no remote" in out.stderr and "repo remote set URL" in out.stderr
    assert json.loads(clone.run("daemon", "status", "--json").stdout)["running"] is False

    clone.run("remote", "set", world.url)
    out = clone.run("daemon", "start", expect=4, env={"LOCALREPO_TOKEN": ""})
    assert "token" in out.stderr.lower() and "repo login" in out.stderr
    assert not (bare / ".localrepo" / "daemon.pid").exists()


def test_nothing_running(world: World, tmp_path: Path):
    clone = world.init("idle", "t")
    status = json.loads(clone.run("daemon", "status", "--json").stdout)
    assert status["running"] is False and status["state"] == "not running"
    assert status["pending"] == 0 and status["conflicts"] == 0 and status["last_sync"] is None
    text = clone.run("daemon", "status").stdout
    assert "daemon: not running" in text and "last sync: never" in text
    assert "not running" in clone.run("daemon", "stop").stderr
    assert "no log yet" in clone.run("daemon", "logs").stderr
    bad = clone.run("watch", "--debounce", "-1", expect=2)
    assert "--debounce" in bad.stderr
    outside = Clone(tmp_path, world.env())
    assert "not inside a localrepo repository" in outside.run("daemon", "status", expect=1).stderr


def test_the_log_rotates(tmp_path: Path):
    from localrepo.cli.daemon_cmds import _setup_logging
    from localrepo.watch.daemon_files import LOG_BACKUPS, LOG_BYTES

    log_file = tmp_path / "logs" / "daemon.log"
    ours = logging.getLogger("localrepo")
    saved = (ours.handlers[:], ours.level, ours.propagate)
    try:
        _setup_logging(log_file, 0)
        line = "x" * 1000
        for _ in range(LOG_BYTES * (LOG_BACKUPS + 2) // 1000):
            logging.getLogger("localrepo.watch").info(line)
        for h in ours.handlers:
            h.close()
    finally:
        ours.handlers[:], ours.level, ours.propagate = saved
    names = sorted(p.name for p in log_file.parent.iterdir())
    assert names == ["daemon.log"] + [f"daemon.log.{i}" for i in range(1, LOG_BACKUPS + 1)]
    assert all(p.stat().st_size <= LOG_BYTES + 2000 for p in log_file.parent.iterdir())
