"""`RecognitionClient`, the client of the Recognition v2 API (see docs/remote.md): the
endpoints on one transport, plus `map`, a bounded thread pool for the callers' requests.

Where things live:

- `transport.py`: the httpx client, auth, retries, lost-answer probes, errors, scrubbing;
- `pagination.py`: listings (``next`` rebased, loop guards, restarts);
- `tasks.py`, `labels.py`, `images.py`, `training.py` (models and training),
  `classify.py`, `media.py` (downloads): the endpoints;
- `answers.py`: pure helpers over answers; `models.py`: the typed objects;
- `api.py`: `RemoteAPI`, the Protocol the sync side is typed with.

The names below that other modules define are re-exported: this was one module once,
and ``localrepo.remote.client.X`` keeps working for them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from .answers import decode_json, duplicate_image_id, nfc, parse_retry_after
from .changes import ChangeFeedEndpoints
from .classify import ClassifyEndpoints
from .images import ImageEndpoints
from .labels import LabelEndpoints
from .media import MediaEndpoints, retryable_dest
from .tasks import TaskEndpoints
from .training import TrainingEndpoints, TrainingTimeout
from .transport import ACCOUNT_PATH, API_PATH, DEFAULT_MAX_DOWNLOAD

__all__ = [
    "ACCOUNT_PATH",
    "API_PATH",
    "DEFAULT_MAX_DOWNLOAD",
    "RecognitionClient",
    "TrainingTimeout",
    "decode_json",
    "duplicate_image_id",
    "nfc",
    "parse_retry_after",
    "retryable_dest",
]

T = TypeVar("T")
R = TypeVar("R")


class RecognitionClient(
    TaskEndpoints,
    LabelEndpoints,
    ImageEndpoints,
    ChangeFeedEndpoints,
    TrainingEndpoints,
    ClassifyEndpoints,
    MediaEndpoints,
):
    """A client of the Recognition v2 API (the hosted service or `localrepo-server`).

    One instance holds one connection pool and may be shared by threads.
    ``workspace`` (an id) is sent as ``?workspace=`` on GET/DELETE and as a
    ``"workspace"`` key in POST/PUT/PATCH bodies; None means the user's default.
    The constructor is `Transport`'s."""

    def __repr__(self) -> str:
        return (
            f"RecognitionClient(base_url={self.base_url!r}, workspace={self.workspace!r}, "
            f"concurrency={self.concurrency})"
        )

    # -- concurrency -----------------------------------------------------------------------

    def map(
        self, fn: Callable[[T], R], items: Iterable[T], limit: int | None = None
    ) -> Iterator[tuple[T, R | Exception]]:
        """Run ``fn(item)`` in a thread pool, at most `limit` (default and ceiling: the
        client's `concurrency`) at a time. Yields ``(item, result or exception)`` as each
        finishes; one failure does not stop the others. Items are taken from `items`
        lazily. Closing the iterator early cancels what has not started."""
        workers = max(1, min(limit or self.concurrency, self.concurrency))
        source = iter(items)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="localrepo-remote")
        pending: dict[Future[R], T] = {}

        def submit(count: int) -> None:
            for item in itertools.islice(source, count):
                pending[pool.submit(fn, item)] = item

        try:
            submit(workers * 2)
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    item = pending.pop(future)
                    submit(1)
                    outcome: R | Exception
                    try:
                        outcome = future.result()
                    except Exception as exc:
                        outcome = exc
                    yield item, outcome
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
