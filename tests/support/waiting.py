"""Waiting in tests: for a condition or an event, never for a guessed length of time.

A test that sleeps and then looks assumes that something happened meanwhile; on a busy
machine (two suites at once, a benchmark beside them) it has not, yet. So a test waits
for what it needs to be true (a row on the server, a line in a log, a field of a status,
a threading.Event), with a generous limit that only bounds a failure: when it gives up it
names what it waited for and what it saw last.

    until(check, timeout=60, what="...", step=0.1)   poll check() until it is truthy
    wait_event(event, timeout=60, what="...")        threading.Event.wait with a message
    limit(seconds)                                   a limit, scaled for a slow machine

LOCALREPO_TEST_TIMEOUT_SCALE (default 1) multiplies every limit given to these helpers
(and the few subprocess limits that use `limit`): set it above 1 on a machine so slow
that even these limits are reached. Limits never make a test pass sooner; a test that
passes only because a limit is short is wrong.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

SCALE = float(os.environ.get("LOCALREPO_TEST_TIMEOUT_SCALE") or 1.0)

# The default limit: long enough for a loaded 2-core machine running two suites at once.
PATIENCE = 60.0


def limit(seconds: float) -> float:
    """`seconds`, scaled by LOCALREPO_TEST_TIMEOUT_SCALE."""
    return seconds * SCALE


def until(
    check: Callable[[], T], timeout: float = PATIENCE, what: str = "", step: float = 0.1
) -> T:
    """Poll `check` until it returns something truthy, and return that. After `timeout`
    seconds (scaled) fail, naming `what` and the last value `check` returned."""
    allowed = limit(timeout)
    deadline = time.monotonic() + allowed
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(step)
    raise AssertionError(
        f"gave up after {allowed:g}s waiting for {what or getattr(check, '__name__', check)}: "
        f"last saw {last!r}"
    )


def wait_event(event: threading.Event, timeout: float = PATIENCE, what: str = "") -> None:
    """Wait for `event`; after `timeout` seconds (scaled) fail, naming `what`."""
    allowed = limit(timeout)
    assert event.wait(allowed), f"gave up after {allowed:g}s waiting for {what or 'the event'}"
