"""A full walk split between this process and one forked helper.

A no-change `repo status` is a stat walk, and on a large tree the walk's Python work per
entry is most of its time. The helper starts on some of the top-level folders (or of
the second-level ones, when the top has few) at once, while this process loads the stat
cache and then walks the rest; the helper sends its
part back (pickled, through a pipe) and the parts are merged. The result is the one
`walk()` gives, in another insertion order: callers use `images` as a mapping (the diff
and the journal are in path order), never by position.

Only for a single-threaded caller (the CLI): fork copies one thread, and a lock that
another thread held at that moment would stay locked in the helper. The helper never
touches the caller's SQLite connection and leaves with os._exit, so no finalizer of the
caller's runs twice.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from localrepo.scan.walk import WalkResult, walk

MIN_FILES = 4000  # below this, the fork and the hand-over cost more than they save
# What a file costs the helper (it walks slower: every page it writes is a copy-on-write
# fault, and it pickles its part) against this process, which loads the stat cache
# first (HEAD_START files' worth of walking).
HELPER_COST = 1.4
HEAD_START = 0.25
FEW = 4  # fewer top-level folders than this are shared one level deeper


def folder_weights(paths: Iterable[str]) -> dict[str, int]:
    """What SplitWalk balances by: how many of `paths` each folder one or two levels
    deep holds ("" for all of them)."""
    return weights_of_folders(Counter(path.rpartition("/")[0] for path in paths))


def weights_of_folders(per_folder: Mapping[str, int]) -> dict[str, int]:
    """folder_weights() of files counted by folder already."""
    weights: dict[str, int] = defaultdict(int)
    for folder, n in per_folder.items():
        weights[""] += n
        if folder:
            parts = folder.split("/", 2)
            weights[parts[0]] += n
            if len(parts) > 1:
                weights[f"{parts[0]}/{parts[1]}"] += n
    return dict(sorted(weights.items()))


def can_split() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


class SplitWalk:
    """Forks the helper on construction; result() walks this process's share and
    merges; close() (always call it) reaps a helper whose result was never asked for."""

    def __init__(
        self,
        root: str,
        weights: Mapping[str, int],
        walk_share: Callable[[Sequence[str]], Any] | None = None,
        *,
        head_start: float = HEAD_START,
        helper_cost: float = HELPER_COST,
    ) -> None:
        """`weights`: how many files each folder held at the last scan (see
        folder_weights()). `walk_share(folders)`: what each side does with its folders
        (walked recursively), picklable; by default their merged WalkResult. Only the
        top is listed here (`top`: the root, and with few top-level folders each of
        them, unrecursed); `units` are the folders the two sides share. `head_start`
        and `helper_cost` weigh the sides (see _shares)."""
        self.root = root
        self._walk_share = walk_share or (lambda folders: _walk_all(root, folders))
        self._pid = 0
        self.top = top = walk(root, recursive=False)
        subfolders = sorted(f for f in top.folders if f)
        if len(subfolders) < FEW:
            # A few top-level folders (a task per folder, say): share one level deeper.
            # Each is listed here; its subfolders are what the two walks share.
            deeper: list[str] = []
            for folder in subfolders:
                part = walk(root, start=folder, recursive=False)
                top.merge(part)
                deeper += [f for f in part.folders if f != folder]
            subfolders = sorted(deeper)
        self.units: list[str] = subfolders
        self._ours: list[str] = subfolders
        if len(subfolders) < 2:
            return
        theirs, self._ours = _shares(subfolders, weights, head_start, helper_cost)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the helper
            code = 1
            try:
                import pickle

                os.close(read_end)
                data = pickle.dumps(self._walk_share(theirs), pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write_end, "wb") as out:
                    out.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        self._pid, self._read_end, self._theirs = pid, read_end, theirs

    def result(self) -> WalkResult:
        """The whole walk (with the default `walk_share`)."""
        top = self.top
        for part in self.shares():
            top.merge(part)
        return top

    def shares(self) -> list[Any]:
        """What `walk_share` gave for this process's folders, then the helper's."""
        parts = [self._walk_share(self._ours)]
        if self._pid:
            import pickle

            with os.fdopen(self._read_end, "rb") as inp:
                data = inp.read()
            if self._reap() != 0 or not data:
                # The helper failed (out of memory, say): walk its share here.
                parts.append(self._walk_share(self._theirs))
            else:
                parts.append(pickle.loads(data))
        return parts

    def close(self) -> None:
        if self._pid:
            os.close(self._read_end)  # a helper still writing gets EPIPE and exits
            self._reap()

    def _reap(self) -> int:
        _, status = os.waitpid(self._pid, 0)
        self._pid = 0
        return os.waitstatus_to_exitcode(status)


def _shares(
    folders: Sequence[str],
    weights: Mapping[str, int],
    head_start: float = HEAD_START,
    helper_cost: float = HELPER_COST,
) -> tuple[list[str], list[str]]:
    """(the helper's folders, ours): heaviest first, each to the side that would end
    sooner. A folder the last scan did not see weighs one file."""
    total = sum(weights.get(f, 1) for f in folders)
    helper, ours = 0.0, head_start * total
    sides: tuple[list[str], list[str]] = ([], [])
    for folder in sorted(folders, key=lambda f: (-weights.get(f, 1), f)):
        w = weights.get(folder, 1)
        if helper + w * helper_cost <= ours + w:
            sides[0].append(folder)
            helper += w * helper_cost
        else:
            sides[1].append(folder)
            ours += w
    return sides


def _walk_all(root: str, folders: Sequence[str]) -> WalkResult:
    out = WalkResult()
    for folder in folders:
        out.merge(walk(root, start=folder))
    return out
