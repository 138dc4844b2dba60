"""A user's request to stop a sync run (the first Ctrl-C), and the words for it.

Contract: `StopRequest` is shared by the shell that receives the signal (cli/interrupt.py)
and the executor (sync/execute.py): `request()` is called once, from the signal
handler, once the executor has started (`executing`; before that, Ctrl-C interrupts
at once, as a crash would: the scan's transaction rolls back); the executor starts no image after it, lets the requests in flight end for
`GRACE` seconds at most, then abandons them. It counts the images its workers are busy
with (`working`), which is what the first message names. The journal keeps whatever
was in flight; the next run re-derives it (an upload whose answer was lost is answered
as a duplicate by the server: nothing is sent twice; docs/reliability.md).

`stopping_text` and `stopped_text` are pure: numbers in, the user's sentence out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

GRACE = 2.0  # seconds the requests in flight get to end after the first Ctrl-C


class StopRequest:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._busy = 0
        self.requested_at: float | None = None  # time.monotonic() of the request
        # Set by the executor when it starts: before, nothing is under way that a stop
        # should let end (the scan's transaction rolls back), and Ctrl-C interrupts.
        self.executing = False

    def request(self) -> None:
        if self.requested_at is None:
            self.requested_at = time.monotonic()
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def grace_left(self) -> float:
        """Seconds the requests in flight may still take (0 once the grace is over)."""
        if self.requested_at is None:
            return GRACE
        return max(0.0, self.requested_at + GRACE - time.monotonic())

    def abandons(self) -> bool:
        """Stopped with workers still waiting on the server: the client stays open for
        them (closing it under them would only turn their answers into errors)."""
        return self.requested and self.in_flight > 0

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._busy

    @contextmanager
    def working(self) -> Iterator[None]:
        """One image being worked on by a worker (its requests are in flight)."""
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1


def stopping_text(in_flight: int) -> str:
    """What the first Ctrl-C says at once."""
    if in_flight == 0:
        return "Stopping (Ctrl-C again to quit now)..."
    s = "" if in_flight == 1 else "s"
    return f"Stopping: waiting for {in_flight} request{s} in flight (Ctrl-C again to quit now)..."


def stopped_text(
    command: str,
    *,
    uploaded: int,
    to_upload: int,
    downloaded: int,
    to_download: int,
    abandoned: int,
) -> str:
    """The last line of a stopped run: what was done of what was planned, and that the
    next run of the same command resumes."""
    done = []
    if to_upload:
        done.append(f"uploaded {uploaded} of {to_upload} image{'' if to_upload == 1 else 's'}")
    if to_download:
        done.append(
            f"downloaded {downloaded} of {to_download} image{'' if to_download == 1 else 's'}"
        )
    what = ", ".join(done) if done else "nothing was sent or fetched"
    left = ""
    if abandoned:
        left = f" ({abandoned} request{'' if abandoned == 1 else 's'} left unanswered)"
    return f"Stopped: {what}{left}; the next 'repo {command}' resumes."


def quit_text(command: str) -> str:
    """What the second Ctrl-C says before the process ends at once."""
    return f"Quit. The next 'repo {command}' recovers what was in flight from the journal."
