"""Progress bars on stderr when it is a terminal; nothing animated otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

MIN_ITEMS = 300  # below this, a bar would only flicker


@contextmanager
def progress_bar(description: str, *, quiet: bool = False) -> Iterator[Callable[[int, int], None]]:
    """Yields a callback (done, total); draws a rich bar once total passes MIN_ITEMS."""
    if quiet or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    state: dict[str, object] = {}

    def update(done: int, total: int) -> None:
        if total < MIN_ITEMS:
            return
        if "bar" not in state:
            from rich.console import Console
            from rich.progress import Progress

            bar = Progress(console=Console(stderr=True), transient=True)
            bar.start()
            state["bar"] = bar
            state["task"] = bar.add_task(description, total=total)
        bar = state["bar"]
        bar.update(state["task"], completed=done, total=total)  # type: ignore[attr-defined]

    try:
        yield update
    finally:
        if "bar" in state:
            state["bar"].stop()  # type: ignore[attr-defined]
