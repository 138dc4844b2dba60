"""Passwords: `localrepo-server user add/set-password` (never on the command line, never
printed), argon2id hashes, and the server database's upgrade to schema version 4
(users.password_hash, web_sessions) on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import inspect, text
from support.waiting import limit

from localrepo.server.data import tables
from localrepo.server.data.db import Database
from localrepo.server.passwords import hash_password, password_problem, verify_password

from .webhelp import SESSION_COOKIE, WebUser, sign_in, signed_in_client, web_client


def server_cli(server: Any, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    """`localrepo-server ARGS` on `server`'s data, `stdin` on its standard input."""
    return subprocess.run(
        [sys.executable, "-m", "localrepo.server.cli", *args, "--data", str(server.data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        env=server._env(),
        cwd=server.data_dir.parent,
        timeout=limit(60),
    )


def test_hashes_are_argon2id_and_verify() -> None:
    stored = hash_password("a fine password")
    assert stored.startswith("$argon2id$") and "a fine password" not in stored
    assert verify_password(stored, "a fine password")
    assert not verify_password(stored, "a fine passwort")
    assert not verify_password(None, "a fine password")
    assert not verify_password("not a hash", "a fine password")
    assert password_problem("short") == "a password needs at least 8 characters"
    assert password_problem(" padded password ") is not None
    assert password_problem("x" * 2000) is not None
    assert password_problem("long enough") is None


def test_user_add_sets_a_password_read_from_stdin(live_server: Any) -> None:
    secret = "stdin password 1"
    made = server_cli(live_server, "user", "add", "ada-web", "--password-stdin", stdin=secret)
    assert made.returncode == 0, made.stderr
    assert "created user 'ada-web'" in made.stdout
    assert secret not in made.stdout + made.stderr
    user = WebUser("ada-web", secret, "", live_server.url)
    with web_client(user) as client:
        assert sign_in(client, user).status_code == 303


def test_set_password_refuses_a_weak_one_and_an_unknown_user(live_server: Any) -> None:
    short = server_cli(live_server, "user", "set-password", "dev", "--password-stdin", stdin="abc")
    assert short.returncode == 1
    assert "error: a password needs at least 8 characters; nothing was changed" in short.stderr
    ghost = server_cli(
        live_server, "user", "set-password", "no-one", "--password-stdin", stdin="long enough"
    )
    assert ghost.returncode == 1 and "error: no user named 'no-one'" in ghost.stderr
    assert "long enough" not in ghost.stdout + ghost.stderr


def test_a_new_password_ends_the_sessions_and_replaces_the_old(
    live_server: Any, web_user: WebUser
) -> None:
    with signed_in_client(web_user) as client:
        old_cookie = client.cookies[SESSION_COOKIE]
        changed = server_cli(
            live_server,
            "user",
            "set-password",
            web_user.username,
            "--password-stdin",
            stdin="a brand new password\n",
        )
        assert changed.returncode == 0, changed.stderr
        assert "web sessions ended" in changed.stdout
    with web_client(web_user) as replay:
        replay.cookies.set(SESSION_COOKIE, old_cookie)
        assert replay.get("/web/").status_code == 303
        assert sign_in(replay, web_user).status_code == 401  # the old password
        assert sign_in(replay, web_user, password="a brand new password").status_code == 303


def downgrade_to_version_3(db: Database) -> None:
    """The schema as version 3 left it: no password column, no sessions table (nor
    version 5's history and training progress)."""
    with db.write() as session:
        session.execute(text("DROP TABLE image_events"))
        session.execute(text("ALTER TABLE training_jobs DROP COLUMN progress"))
        session.execute(text("ALTER TABLE training_jobs DROP COLUMN stage"))
        session.execute(text("DROP TABLE web_sessions"))
        session.execute(text("ALTER TABLE users DROP COLUMN password_hash"))
        session.execute(text("UPDATE schema_info SET value = '3' WHERE key = 'schema_version'"))


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_version_3_database_gains_passwords_and_sessions(
    engine: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    if engine == "sqlite":
        url = f"sqlite:///{tmp_path / 'v3.db'}"
    else:
        url = str(request.getfixturevalue("postgres").new_database())
    db = Database(url)
    db.create_all()
    from localrepo.server.data import accounts

    accounts.create_user(db, "kept")
    downgrade_to_version_3(db)
    db.dispose()
    db = Database(url)
    try:
        db.create_all()
        inspector = inspect(db.engine)
        assert "password_hash" in {c["name"] for c in inspector.get_columns("users")}
        assert "web_sessions" in inspector.get_table_names()
        with db.read() as session:
            version = session.execute(
                text("SELECT value FROM schema_info WHERE key = 'schema_version'")
            ).scalar_one()
        assert version == str(tables.SCHEMA_VERSION)
        assert accounts.sign_in_record(db, "kept") is not None  # the rows stayed
        accounts.set_password(db, "kept", hash_password("after the upgrade"))
        record = accounts.sign_in_record(db, "kept")
        assert record is not None and verify_password(record[1], "after the upgrade")
    finally:
        db.dispose()


def run_on_a_terminal(server: Any, args: list[str], answers: list[str]) -> tuple[int, str]:
    """`localrepo-server ARGS` with a pseudo-terminal as its controlling terminal (what
    getpass reads), typing `answers` at each prompt; (exit code, everything it showed)."""
    import os
    import select

    master, slave = os.openpty()
    # A new session's leader that opens a terminal gets it as its controlling terminal
    # (Linux); then the command replaces it (no preexec_fn: unsafe with threads).
    take_the_terminal = (
        "import os, sys; os.close(os.open(os.ttyname(0), os.O_RDWR)); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    command = ["-m", "localrepo.server.cli", *args, "--data", str(server.data_dir)]
    proc = subprocess.Popen(
        [sys.executable, "-c", take_the_terminal, *command],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=server._env(),
        cwd=server.data_dir.parent,
        start_new_session=True,
    )
    os.close(slave)
    shown = b""
    pending = list(answers)
    try:
        while True:
            ready, _, _ = select.select([master], [], [], limit(30))
            if not ready:
                raise AssertionError(f"no prompt within the limit; shown so far: {shown!r}")
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            while pending and shown.count(b"assword") > len(answers) - len(pending):
                os.write(master, pending.pop(0).encode() + b"\n")
    finally:
        os.close(master)
    return proc.wait(timeout=limit(60)), shown.decode(errors="replace")


def test_ask_password_asks_twice_without_echo(live_server: Any) -> None:
    secret = "typed at a prompt"
    code, shown = run_on_a_terminal(
        live_server, ["user", "add", "tty-user", "--ask-password"], [secret, secret]
    )
    assert code == 0, shown
    assert "Password: " in shown and "Password again: " in shown
    assert secret not in shown  # not echoed, not printed
    user = WebUser("tty-user", secret, "", live_server.url)
    with web_client(user) as client:
        assert sign_in(client, user).status_code == 303


def test_two_different_passwords_change_nothing(live_server: Any, web_user: WebUser) -> None:
    code, shown = run_on_a_terminal(
        live_server,
        ["user", "set-password", web_user.username],
        ["first version 1", "second version 2"],
    )
    assert code == 1 and "the two passwords differ; nothing was changed" in shown
    with web_client(web_user) as client:
        assert sign_in(client, web_user).status_code == 303  # the old one still works
