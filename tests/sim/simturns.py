"""Concurrent syncs, interleaved one HTTP request at a time, decided by a seed.

Each sync runs in its own thread and sends every request through `TurnScheduler.gate`
(its client's transport calls it before sending). The scheduler lets exactly one sync
run at a time: it decides only when every sync is waiting at the gate or finished, and
then releases one waiting sync chosen by its seeded generator. The sync it released runs
alone (its request, the answer, and the local work up to its next request or its end),
so with `jobs=1` a seed reruns identically: the same syncs get their turns in the same
order, and their faults and crash points come in the same order.

The gate sits in the client's transport, before the request is sent, so the time a sync
waits for its turn counts against none of the client's timeouts.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any


class TurnScheduler:
    def __init__(self, rng: random.Random, names: list[str]) -> None:
        self.rng = rng
        self._cond = threading.Condition()
        # A sync counts as running until it first reaches the gate: its start is gated too.
        self._running: set[str] = set(names)
        self._waiting: set[str] = set()
        self._granted: str | None = None
        self.holder: str | None = None  # the sync whose threads run now
        self.turns: list[str] = []  # who got each turn, in order

    def gate(self, name: str) -> None:
        """Wait until the scheduler gives `name` the turn."""
        with self._cond:
            # jobs=1: a sync has one request at a time; two at the gate would make "is
            # everyone waiting" ambiguous, and the interleaving timing-dependent.
            assert name not in self._waiting, f"{name} has two requests at the gate"
            self._running.discard(name)
            self._waiting.add(name)
            self._decide()
            while self._granted != name:
                self._cond.wait()
            self._granted = None
            self._waiting.discard(name)
            self._running.add(name)
            self.holder = name

    def finish(self, name: str) -> None:
        with self._cond:
            self._running.discard(name)
            self._waiting.discard(name)
            if self.holder == name:
                self.holder = None
            self._decide()

    def _decide(self) -> None:
        if self._running or not self._waiting or self._granted is not None:
            return
        self._granted = self.rng.choice(sorted(self._waiting))
        self.turns.append(self._granted)
        self._cond.notify_all()

    def dispatch(self, hooks: dict[str, Any | None]) -> Callable[..., Any]:
        """One global hook (faults.hooks.*) that calls the hook of the sync holding the
        turn: only its threads run, so the caller is one of them."""

        def call(*args: Any) -> Any:
            hook = hooks.get(self.holder or "")
            if hook is None:
                return args[0] if args and isinstance(args[0], list) else None
            return hook(*args)

        return call


def turn_summary(turns: list[str]) -> str:
    """`c0x3 c1 c0x2`: runs of turns, for the trace."""
    out: list[str] = []
    for name in turns:
        if out and out[-1].split("x")[0] == name:
            head, _, count = out[-1].partition("x")
            out[-1] = f"{head}x{int(count or 1) + 1}"
        else:
            out.append(name)
    return " ".join(out)
