"""Secrets stay secret (issue 20, item 4), through the real CLI: a server that redirects
with the token in its `Location`, one whose answer has a header line echoing the token,
and tokens no HTTP header can carry; a password typed into a remote URL moves to the
credentials file. Everything a run produced (stdout, stderr, every file of the
repository and of the user's config folder but the credentials file) is searched for
the secret."""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator

import pytest
from support.synchelp import Clone, World

Answer = Callable[[bytes], bytes]


def _serve(sock: socket.socket, answer: Answer) -> None:
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            request = b""
            try:
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    request += chunk
                conn.sendall(answer(request))
            except OSError:
                pass


@pytest.fixture
def rogue() -> Iterator[Callable[[Answer], str]]:
    """`rogue(answer)`: the URL of a raw HTTP server answering every request with
    `answer(request bytes)`."""
    socks: list[socket.socket] = []

    def start(answer: Answer) -> str:
        sock = socket.create_server(("127.0.0.1", 0))
        socks.append(sock)
        threading.Thread(target=_serve, args=(sock, answer), daemon=True).start()
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"

    yield start
    for sock in socks:
        sock.close()


def _token_of(request: bytes) -> str:
    for line in request.split(b"\r\n"):
        if line.lower().startswith(b"authorization: token "):
            return line.split(b" ", 2)[2].decode("latin-1")
    return ""


def _redirect(request: bytes) -> bytes:
    token = _token_of(request)
    where = f"http://127.0.0.1:9/t/{token}/login?next=%2F&token={token}#{token}"
    return (
        f"HTTP/1.1 302 Found\r\nLocation: {where}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ).encode()


def _echo_header(request: bytes) -> bytes:
    # A broken proxy: the header line it echoes has no colon (illegal in HTTP/1.1).
    token = _token_of(request)
    return f"HTTP/1.1 200 OK\r\nToken {token}\r\nContent-Length: 0\r\n\r\n".encode()


def _everything(clone: Clone, world: World) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for root in (clone.root, world.config_dir):
        for path in root.rglob("*"):
            if path.is_file() and path.name != "credentials.toml":
                files[str(path)] = path.read_bytes()
    return files


def _leaks(secret: str, outputs: list[str], files: dict[str, bytes]) -> list[str]:
    pieces = [secret, secret[:12], secret[-12:]]
    found = [f"output: {o!r}" for o in outputs if any(p in o for p in pieces)]
    found += [name for name, data in files.items() if any(p.encode() in data for p in pieces)]
    return found


def test_a_redirect_or_a_bad_header_carrying_the_token_never_shows_it(
    world: World, rogue: Callable[[Answer], str]
) -> None:
    a = world.init("a", "pets")
    a.write("dog/a.jpg", 1)
    outputs: list[str] = []
    for answer in (_redirect, _echo_header):
        a.run("remote", "set", rogue(answer))
        for args in (("sync",), ("-v", "sync", "--json"), ("tasks",)):
            proc = a.run(*args, expect=None, env={"LOCALREPO_RETRY_ATTEMPTS": "1"})
            assert proc.returncode != 0, proc
            assert proc.stderr.strip()  # it said what went wrong
            outputs += [proc.stdout, proc.stderr]
    assert any("redirect" in o for o in outputs), outputs
    leaks = _leaks(world.token, outputs, _everything(a, world))
    assert not leaks, leaks


@pytest.mark.parametrize("bad", ["\n", "\r\nX-Injected: 1", "\u00e9", "\t", " "], ids=repr)
def test_a_token_no_header_can_carry_is_refused_without_showing_it(world: World, bad: str) -> None:
    a = world.init("a", "pets")
    secret = f"LEFT{os.urandom(8).hex()}{bad}{os.urandom(8).hex()}RIGHT"
    outputs: list[str] = []
    for how in ("env", "flag"):
        env = {"LOCALREPO_TOKEN": secret} if how == "env" else {}
        args = ("sync",) if how == "env" else ("sync", "--token", secret)
        proc = a.run(*args, expect=4, env=env)
        assert "token" in proc.stderr.lower(), proc.stderr
        outputs += [proc.stdout, proc.stderr]
    leaks = _leaks(secret, outputs, _everything(a, world))
    assert not leaks, leaks


def test_a_password_in_a_remote_url_moves_to_the_credentials_file(world: World) -> None:
    a = world.init("a", "pets")
    host = world.url.split("://", 1)[1]
    with_password = f"http://alice:{world.token}@{host}"
    outputs: list[str] = []
    proc = a.run("remote", "set", with_password)
    outputs += [proc.stdout, proc.stderr]
    assert "credentials" in proc.stderr, proc.stderr
    config = (a.root / ".localrepo" / "config.toml").read_text()
    assert world.url in config and "alice" not in config
    show = a.run("remote", "show")
    outputs += [show.stdout, show.stderr]
    assert world.url in show.stdout
    creds = world.config_dir / "credentials.toml"
    assert world.token in creds.read_text()
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    # The stored password is the token: a sync needs no other.
    proc = a.run("sync", "--json", env={"LOCALREPO_TOKEN": ""})
    outputs += [proc.stdout, proc.stderr]
    # `repo login URL` with the password in it: the token without a prompt.
    creds.unlink()
    proc = a.run("login", with_password, env={"LOCALREPO_TOKEN": ""})
    outputs += [proc.stdout, proc.stderr]
    assert world.token in creds.read_text()
    assert not _leaks(world.token, outputs, _everything(a, world))


def test_remote_show_masks_a_password_an_older_version_wrote(world: World) -> None:
    a = world.init("a", "pets")
    config = a.root / ".localrepo" / "config.toml"
    host = world.url.split("://", 1)[1]
    text = config.read_text().replace(world.url, f"http://alice:hunter2secret@{host}")
    config.write_text(text)
    show = a.run("remote", "show")
    assert "hunter2secret" not in show.stdout + show.stderr
    assert "***" in show.stdout, show.stdout
