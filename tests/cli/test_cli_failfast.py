"""Fail fast, say why (issue 18, item 3): the real CLI in a subprocess against a port
nothing listens on, a host name that cannot exist, and the real server reached by a URL
typed without a scheme."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

TOKEN = "failfast-token-6f1c9a"  # must never show up in any output


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def repo(
    tmp: Path, *args: str, token: str | None = TOKEN, **env: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    full = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "LOCALREPO_CONFIG_DIR": str(tmp / "config"),
        "LOCALREPO_TOKEN": token or "",
        **env,
    }
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "localrepo", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )
    took = time.monotonic() - start
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert TOKEN not in proc.stderr + proc.stdout
    return proc, took


@pytest.mark.parametrize("typed", ["http://127.0.0.1:{port}/", "127.0.0.1:{port}"])
def test_a_stopped_server_fails_in_under_5_s_naming_the_url(tmp_path: Path, typed: str) -> None:
    port = closed_port()
    root = tmp_path / "r"
    proc, _ = repo(tmp_path, "init", str(root), "--task", "t", "--remote", typed.format(port=port))
    assert proc.returncode == 0, proc.stderr
    (root / "cat").mkdir()
    # The default retry budget (6 attempts within 60 s): a refused connection skips it.
    proc, took = repo(tmp_path, "-C", str(root), "sync")
    assert proc.returncode == 5, proc.stderr
    assert took < 5, took
    assert f"http://127.0.0.1:{port}/" in proc.stderr, proc.stderr
    assert "connection refused" in proc.stderr and "server running" in proc.stderr
    assert "repo remote show" in proc.stderr
    assert "attempts" not in proc.stderr  # no retry budget was spent


def test_an_unknown_host_fails_fast_naming_it(tmp_path: Path) -> None:
    proc, took = repo(tmp_path, "tasks", "--url", "https://no-such-host.invalid:8443/")
    assert proc.returncode == 5, proc.stderr
    assert took < 5, took
    assert "https://no-such-host.invalid:8443/" in proc.stderr, proc.stderr
    assert "'no-such-host.invalid' is not known" in proc.stderr


def test_https_to_a_plain_http_server_is_not_a_bare_tls_error(
    tmp_path: Path, live_server: Any
) -> None:
    url = live_server.url.replace("http://", "https://", 1)
    proc, took = repo(tmp_path, "tasks", "--url", url)
    assert proc.returncode == 5, proc.stderr
    assert took < 5, took
    assert "TLS handshake failed" in proc.stderr
    assert f"use {live_server.url.rstrip('/')}" in proc.stderr, proc.stderr


def test_login_without_a_scheme_uses_http_for_loopback_and_says_it_once(
    tmp_path: Path, account: Any
) -> None:
    typed = account.url.split("://", 1)[1].rstrip("/")  # "127.0.0.1:PORT"
    assert typed.startswith(("127.", "localhost"))
    proc, _ = repo(tmp_path, "login", "--url", typed, "--token", account.token, token=None)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("No scheme") == 1, proc.stderr
    assert f"No scheme in '{typed}': using http://{typed}" in proc.stderr
    assert account.token not in proc.stderr + proc.stdout
    # Saved under the http:// URL: the same URL typed in full finds the token.
    creds = tomllib.loads((tmp_path / "config" / "credentials.toml").read_text())
    assert list(creds["remote"]) == [f"http://{typed}/"]
    proc, _ = repo(tmp_path, "tasks", "--url", f"http://{typed}/", "--json", token=None)
    assert proc.returncode == 0, proc.stderr
    assert "No scheme" not in proc.stderr


def test_a_remote_set_without_a_scheme_is_stored_with_it(tmp_path: Path) -> None:
    root = tmp_path / "r"
    assert repo(tmp_path, "init", str(root), "--task", "t")[0].returncode == 0
    proc, _ = repo(tmp_path, "-C", str(root), "remote", "set", "localhost:18765")
    assert proc.returncode == 0, proc.stderr
    assert "using http://localhost:18765" in proc.stderr
    proc, _ = repo(tmp_path, "-C", str(root), "remote", "show")
    assert "http://localhost:18765" in proc.stdout
    assert "No scheme" not in proc.stderr  # said once, when it was typed


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("ftp://example.com/", "the scheme is 'ftp'"),
        ("http://exa mple.com/", "contains spaces"),
        ("localhost:80a", "port is not a number"),
        ("http:///nohost", "names no host"),
    ],
)
def test_a_broken_url_is_a_usage_error_naming_it(tmp_path: Path, typed: str, why: str) -> None:
    proc, took = repo(tmp_path, "tasks", "--url", typed)
    assert proc.returncode == 2, proc.stderr
    assert why in proc.stderr and "http://localhost:8000/" in proc.stderr, proc.stderr
    assert took < 5
