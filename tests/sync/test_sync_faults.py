"""A server that fails: 503s, 429s, plain 500s, dropped connections, a wrong token, a
server that goes away. Retried failures converge in the same run; the others end with
their exit code, lose nothing, and converge on a later sync."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
from support.faultproxy import FaultProxy
from support.synchelp import Remote, World, image_hash
from support.waiting import limit, until


def seeded(world: World, n: int, task: str = "pets"):
    a = world.init("a", task)
    for i in range(n):
        a.write(f"{('dog', 'cat', 'bird')[i % 3]}/i{i}.jpg", i)
    return a


def expected(n: int) -> dict[str, dict]:
    return {image_hash(i): {("dog", "cat", "bird")[i % 3]: None} for i in range(n)}


def no_duplicates(remote: Remote) -> None:
    hashes = Counter(r.hash for r in remote.images())
    assert all(v == 1 for v in hashes.values()), hashes
    names = Counter(lab["name"] for lab in remote.labels())
    assert all(v == 1 for v in names.values()), names


@pytest.fixture
def proxied(account, tmp_path):
    proxy = FaultProxy(account.url).start()
    world = World(proxy.url, account.token, tmp_path)
    world.remote.close()
    world.remote = Remote(account.url, account.token)  # the test's own view: no faults
    yield world, proxy
    world.remote.close()
    proxy.stop()


def test_503_and_429_are_retried(server_factory, tmp_path) -> None:
    server = server_factory("--fail-every", "5", "--rate-limit", "3/s")
    acct = server.new_account()
    world = World(acct.url, acct.token, tmp_path)
    try:
        a = seeded(world, 8)
        proc = a.run("sync", "--json")
        s = json.loads(proc.stdout)
        assert s["uploaded"] == 8 and s["failed"] == [], s
        assert "stamina" not in proc.stderr, proc.stderr
        b = world.clone("b", a.remote_task_id())
        assert b.tree() == a.tree()
        log = server.log_text()
        assert " 503 " in log and " 429 " in log, log[-3000:]
        assert {h: r.labels for h, r in world.remote.by_hash().items()} == expected(8)
        no_duplicates(world.remote)
        for c in (a, b):
            c.verify()
    finally:
        world.remote.close()


def test_plain_500_is_a_reported_failure_then_converges(proxied) -> None:
    world, proxy = proxied
    a = seeded(world, 6)
    proxy.add("POST", r"/training-image/$", "500")
    proc = a.run("sync", expect=6)
    assert "failed: " in proc.stderr and "500" in proc.stderr, proc.stderr
    assert "failed 1" in proc.stdout
    assert len(world.remote.images()) == 5
    assert a.status()["pending_total"] > 0
    s = a.sync()
    assert s["uploaded"] == 1 and s["failed"] == [], s
    assert {h: r.labels for h, r in world.remote.by_hash().items()} == expected(6)
    no_duplicates(world.remote)
    a.verify()
    assert a.status()["pending_total"] == 0  # the failed op is not pending forever


def test_dropped_connections_are_retried(proxied) -> None:
    world, proxy = proxied
    a = seeded(world, 6)
    proxy.add("GET", r"/task/", "drop")  # nothing reached the server
    proxy.add("POST", r"/label/$", "drop_after")  # the label was made, the answer lost
    proxy.add("POST", r"/training-image/$", "drop_after", times=2)  # uploaded, answer lost
    proxy.add("POST", r"/add-label/$", "drop_after", times=2)
    proxy.add("GET", r"/training-image/", "drop")
    s = a.sync()
    assert s["uploaded"] == 6 and s["failed"] == [], s
    assert all(rule.hits == rule.times for rule in proxy.rules), proxy.rules
    assert {h: r.labels for h, r in world.remote.by_hash().items()} == expected(6)
    no_duplicates(world.remote)
    a.verify()


def test_bad_token_exits_4_without_printing_it(world: World) -> None:
    a = seeded(world, 2)
    bad = "0123456789abcdef-not-a-token-fedcba9876543210"
    proc = a.run("sync", expect=4, env={"LOCALREPO_TOKEN": bad})
    assert bad not in proc.stdout + proc.stderr
    assert "token" in proc.stderr.lower() and "401" in proc.stderr, proc.stderr
    assert world.remote.images() == []
    proc = a.run("sync", "--token", bad, expect=4)
    assert bad not in proc.stdout + proc.stderr
    assert a.sync()["uploaded"] == 2
    a.verify()


def test_non_ascii_token_exits_4_with_a_message_not_a_traceback(world: World) -> None:
    """Issue 20: a token with a character outside ASCII (a typo, a pasted quote) made
    the HTTP library raise while writing the header: a raw traceback."""
    a = seeded(world, 1)
    for bad in ("caf\u00e9-token-\u00e9t\u00e9", "token\u201cquoted\u201d", "tab\there"):
        proc = a.run("sync", expect=4, env={"LOCALREPO_TOKEN": bad})
        assert "Traceback" not in proc.stderr, proc.stderr
        assert "token" in proc.stderr.lower() and "character" in proc.stderr, proc.stderr
        assert bad not in proc.stdout + proc.stderr
    assert world.remote.images() == []


def test_server_gone_exits_5_then_converges(server_factory, tmp_path) -> None:
    server = server_factory("--latency-ms", "60")
    acct = server.new_account()
    world = World(acct.url, acct.token, tmp_path)
    a = seeded(world, 9)
    a.sync()
    b = world.clone("b", a.remote_task_id())
    for i in range(9, 15):
        b.write(f"dog/n{i}.jpg", i)
    b.move("cat/i1.jpg", "dog/i1.jpg")
    # Stop the server in the middle of B's sync. B talks to it through a proxy that holds
    # B's first upload: once that is held (an event, not a timer: a quick sync would
    # finish before a kill on a timer), the server and the proxy go, and the held upload
    # meets a dead server.
    proxy = FaultProxy(server.url).start()
    b.run("remote", "set", proxy.url)
    held = proxy.add("POST", r"training-image/?$", "hold")
    proc = subprocess.Popen(
        [sys.executable, "-m", "localrepo", "-C", str(b.root), "sync", "-j", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(b.env, LOCALREPO_RETRY_ATTEMPTS="3"),  # give up soon: it is down
    )
    until(lambda: held.arrived.is_set() or proc.poll() is not None, what="B's first upload")
    assert proc.poll() is None, proc.communicate()
    server.stop(kill=True)
    proxy.stop()  # its port refuses connections from now on, as the server's does
    held.release.set()
    out, err = proc.communicate(timeout=limit(120))
    assert proc.returncode == 5, out + err
    assert "Traceback" not in err and err.strip(), err
    assert "cannot reach" in err or "unavailable" in err, err
    assert "stamina" not in err, err  # no logging noise per retry
    server.start()
    b.run("remote", "set", server.url)  # the proxy is gone; the server is back
    s = b.sync()
    assert s["failed"] == [] and s["conflicts"] == 0, s
    a.sync()
    assert a.tree() == b.tree()
    remote = Remote(acct.url, acct.token)
    try:
        no_duplicates(remote)
        by_hash = remote.by_hash()
        assert len(by_hash) == 15
        assert by_hash[image_hash(1)].labels == {"dog": None}
    finally:
        remote.close()
    a.verify()
    b.verify()
