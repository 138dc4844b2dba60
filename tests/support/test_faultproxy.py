"""The fault proxy itself (tests/support/faultproxy.py), against the real server: each action
breaks what it says, and only that (did the server act? what did the client see?)."""

from __future__ import annotations

import random

import httpx
import pytest

from support.faultproxy import Chaos, FaultProxy
from support.waiting import limit, until


@pytest.fixture
def proxy(account):
    p = FaultProxy(account.url).start()
    yield p
    p.stop()


def labels(account) -> list[str]:
    with account.client() as api:
        return [lab["name"] for lab in api.get("label/").json()["results"]]


def post_label(proxy: FaultProxy, account, name: str, timeout: float = 10.0) -> httpx.Response:
    with httpx.Client(
        base_url=proxy.url + "recognition/v2/", headers=account.headers, timeout=timeout
    ) as c:
        return c.post("label/", json={"name": name, "type": "category"})


@pytest.mark.parametrize(
    ("action", "status", "acted"),
    [
        ("forward", 201, True),
        ("status:503", 503, False),
        ("status:429", 429, False),
        ("500", 500, False),
        ("after:504", 504, True),
        ("delay", 201, True),
    ],
)
def test_answers(proxy: FaultProxy, account, action: str, status: int, acted: bool) -> None:
    proxy.add("POST", r"/label/$", action, seconds=0.01)
    r = post_label(proxy, account, f"x-{action}")
    assert r.status_code == status
    if status == 429:
        assert r.headers["Retry-After"] == "0"
    assert (f"x-{action}" in labels(account)) is acted
    assert proxy.seen[-1][2] == ("status:500" if action == "500" else action)


@pytest.mark.parametrize(
    ("action", "error", "acted"),
    [
        ("drop", httpx.RemoteProtocolError, False),
        ("drop_after", httpx.RemoteProtocolError, True),
        ("cut", httpx.RemoteProtocolError, True),
        ("stall", httpx.ReadTimeout, True),
    ],
)
def test_broken_connections(proxy: FaultProxy, account, action: str, error, acted: bool) -> None:
    # A stall outlasts the client's read timeout by far; the other actions break the
    # connection at once, and a read timeout must not fire first on a busy machine.
    proxy.add("POST", r"/label/$", action, seconds=limit(60))
    with pytest.raises(error):
        post_label(proxy, account, f"y-{action}", timeout=1.0 if action == "stall" else limit(60))
    if acted:  # the proxy forwards on its own thread: a client that timed out can be first
        until(lambda: f"y-{action}" in labels(account), what=f"y-{action} created on the server")
    else:
        assert f"y-{action}" not in labels(account)


def test_rules_run_out_and_chaos_is_seeded(proxy: FaultProxy, account) -> None:
    proxy.add("GET", r"/label/", "status:502", times=2)
    with httpx.Client(base_url=proxy.url + "recognition/v2/", headers=account.headers) as c:
        codes = [c.get("label/").status_code for _ in range(3)]
        assert codes == [502, 502, 200]

        def run(seed: int) -> list[str]:
            proxy.chaos = Chaos(random.Random(seed), 0.5, delay=0.0, stall=0.0)
            start = len(proxy.seen)
            for _ in range(20):
                try:
                    c.get("label/")
                except httpx.HTTPError:
                    pass
            return [a for _m, _p, a in proxy.seen[start:]]

        first, again, other = run(7), run(7), run(8)
    assert first == again != other
    assert 3 <= sum(a != "forward" for a in first) <= 17
    assert proxy.faults()["status:502"] >= 2
