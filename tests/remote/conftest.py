"""Fixtures for the remote client tests: clients on the real `live_server` with small
retry budgets and waits, and a fault-injecting transport around the real one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.waiting import limit

from localrepo.remote.client import RecognitionClient

from .faults import FaultTransport

# Small budgets: a failing test takes milliseconds, not a minute. The attempts and the
# waits are small; the read timeout and the overall retry limit are only limits (a
# real answer is awaited; faults are injected by FaultTransport, not by timing out).
FAST = dict(
    retry_attempts=4,
    retry_timeout=limit(30.0),
    retry_wait_initial=0.01,
    retry_wait_max=0.05,
    retry_wait_jitter=0.01,
    timeout=limit(30.0),
)

MakeClient = Callable[..., RecognitionClient]


@pytest.fixture
def make_client(account: Any) -> Iterator[MakeClient]:
    """`make_client(**overrides)`: a client for `account` (fast retries by default)."""
    made: list[RecognitionClient] = []

    def make(**kw: Any) -> RecognitionClient:
        args: dict[str, Any] = {**FAST, **kw}
        url = args.pop("base_url", account.url)
        token = args.pop("token", account.token)
        client = RecognitionClient(url, token, **args)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: MakeClient) -> RecognitionClient:
    return make_client()


@pytest.fixture
def faults() -> FaultTransport:
    return FaultTransport()


@pytest.fixture
def fclient(make_client: MakeClient, faults: FaultTransport) -> RecognitionClient:
    """A client whose requests pass through `faults`."""
    return make_client(transport=faults)
