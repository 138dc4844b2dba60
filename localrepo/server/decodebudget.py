"""The decode budget: how many bytes of decoded pixels this server process holds at once,
shared by everything that decodes an image (uploads, thumbnails, classify records).

Contract: ``reserve(n)`` is a context manager held while ``n`` bytes of pixels are
decoded and used. While the reservations held add up to more than ``capacity``, a new
one waits (in its worker thread, never on the event loop) for others to end; after
``wait_seconds`` it raises ``DecodeBusy``, which the API answers with 503 and a
``Retry-After`` (docs/server.md, "Limits and throttling"). One reservation larger than
the whole budget is cut to it, so it runs alone rather than never. The budget is per process because memory
is: each server process has its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import APIError, detail


class DecodeBusy(Exception):
    """Decoding would go over the budget for longer than the caller may wait."""

    def __init__(self, retry_after: int):
        super().__init__(f"the server is busy decoding other images; retry in {retry_after} s")
        self.retry_after = retry_after


def busy_error(exc: DecodeBusy) -> APIError:
    """The API's answer to ``DecodeBusy``: 503 with ``Retry-After``."""
    return detail(
        503,
        f"The server is busy decoding other images; retry in {exc.retry_after} s.",
        {"Retry-After": str(exc.retry_after)},
    )


class DecodeBudget:
    def __init__(self, capacity: int, wait_seconds: float = 30.0, retry_after: int = 5):
        self.capacity = max(1, capacity)
        self.wait_seconds = wait_seconds
        self.retry_after = retry_after
        self._held = 0
        self._cond = threading.Condition()

    @property
    def held(self) -> int:
        return self._held

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        n = min(max(0, nbytes), self.capacity)
        with self._cond:
            deadline = time.monotonic() + self.wait_seconds
            while self._held + n > self.capacity:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DecodeBusy(self.retry_after)
                self._cond.wait(remaining)
            self._held += n
        try:
            yield
        finally:
            with self._cond:
                self._held -= n
                self._cond.notify_all()
