"""Crash points for tests: `LOCALREPO_CRASH_AT=<point>[:<n>]` kills the process (as
`kill -9` would: no cleanup, no flush) the n-th time (default 1st) it passes <point>.

The points sit where a crash is most interesting for crash safety:
  before_http       an op is journalled, its request not sent
  after_http        the server answered 2xx, nothing committed locally
  mid_download      a download's temp file holds half of its bytes
  after_replace     a downloaded file is in place, the catalog does not know it yet
  mid_move          a local move has linked the file into its new folder, the old
                    name is not removed yet (the image is in two folders)
  mid_relabel       a local relabel has placed the file in its new folders, the
                    copies in folders it leaves are not in the trash yet

In-process tests (the seeded simulation) install hooks instead of killing a process:
`hooks.crash` is called at every point (it raises a BaseException to stop the run the
way a crash would: nothing after it commits), and `hooks.reorder` permutes the order in
which the executor takes its finished images (completions reordered).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_lock = threading.Lock()
_counts: dict[str, int] = {}


@dataclass
class Hooks:
    crash: Callable[[str], None] | None = None
    reorder: Callable[[list[Any]], list[Any]] | None = None


hooks = Hooks()


def crash_point(name: str) -> None:
    if hooks.crash is not None:
        hooks.crash(name)
    spec = os.environ.get("LOCALREPO_CRASH_AT")
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        hit = _counts[name] == int(nth or 1)
    if hit:
        os._exit(137)
