"""A full walk compared with the stat cache as it goes (docs/catalog.md, "The scanner",
steps 1 and 2), so that a scan of a large catalogued tree holds what changed, not the
tree.

The tree is walked in units (the split walk's folders, scan/splitwalk.py, or the whole
tree), each against the catalog's rows under it, loaded by path range. A file whose
stat signature equals its row's, and whose row is neither racy nor invalid, is settled:
counted and dropped at once. The forked helper of a split walk reads its own rows
through its own connection and sends back only what it kept.

Contract: `walk_against_catalog` returns a statpass.Tree on which
statpass.compare_with_cache gives what it gives on the whole walk and the whole cache:

- `walked.images`: the files not settled (new, changed, racy or invalid rows, names
  off the common path); `walked.settled` counts the others;
- `cached`: the rows of every catalogued file not settled: met and kept, or unseen
  (gone, skipped, under an unreadable folder);
- `racy`: the paths of the racy rows; `reasons`: the invalid rows', as load_reasons.

So every catalogued row is either settled or in `cached`, and statpass.fill_settled
gets the whole walk back from the catalog when a stage needs every file (many files
changed). Memory follows the largest unit, not the tree.

The core is pure: `unit_range` and `gaps` (which rows a unit owns), `settle_listed`
and `finish` (a walked part and its rows, reduced); the shell is
`walk_against_catalog`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from localrepo.catalog import db as catalog_db
from localrepo.catalog import files as catalog_files
from localrepo.catalog import meta as catalog_meta
from localrepo.scan import splitwalk
from localrepo.scan.statpass import Tree
from localrepo.scan.walk import Settle, WalkResult, walk

# Each side loads its own rows as it walks, so the parent has no stat cache to load
# first (splitwalk's HEAD_START), and the helper sends back little: the sides cost alike.
HEAD_START = 0.0
HELPER_COST = 1.0


@dataclass
class Part:
    """A share of the walk, reduced: what was kept, the rows of what was kept or
    unseen, the racy rows' paths and the invalid rows' reasons."""

    walked: WalkResult
    rows: dict[str, int] = field(default_factory=dict)
    racy: set[str] = field(default_factory=set)
    reasons: dict[str, str] = field(default_factory=dict)

    def merge(self, other: Part) -> None:
        self.walked.merge(other.walked)
        self.rows.update(other.rows)
        self.racy |= other.racy
        self.reasons.update(other.reasons)

    def tree(self) -> Tree:
        return Tree(self.walked, self.rows, self.reasons, self.racy)


# -- the core ---------------------------------------------------------------------------


def unit_range(unit: str) -> tuple[str, str | None]:
    """The path range [lo, hi) of the rows under the folder `unit` ("" the whole tree;
    hi None: no upper end). Paths compare as SQLite compares them (UTF-8 bytes, the
    same order as code points), and "F0" is the first string after every "F/..."."""
    return ("", None) if not unit else (unit + "/", unit + "0")


def gaps(units: Sequence[str]) -> list[tuple[str, str | None]]:
    """The path ranges outside every unit: the rows of the files a split walk's top
    listing holds, and of folders no unit walks (gone, say). The units' ranges are
    disjoint: no unit is inside another."""
    out: list[tuple[str, str | None]] = []
    lo = ""
    for start, end in sorted(unit_range(u) for u in units if u):
        if lo < start:
            out.append((lo, start))
        lo = end or ""
    out.append((lo, None))
    return out


def settle_listed(walked: WalkResult, settle: Settle) -> None:
    """Settle the files of a walk made without `settle` (a split walk's top)."""
    images, pop, rows = walked.images, settle.cache.pop, settle.rows
    for path, st in list(images.items()):
        row = pop(path, None)
        if row is None:
            continue
        if row == hash(st):
            del images[path]
            walked.settled += 1
        else:
            rows[path] = row


def finish(walked: WalkResult, settle: Settle, true_rows: dict[str, int]) -> dict[str, int]:
    """The rows of the part's files not settled: those the walk met and kept (off the
    common path too), then the unseen ones; `true_rows` are the real signatures of the
    rows that were marked never to settle."""
    rows, cache = settle.rows, settle.cache
    for path in walked.images:
        if path not in rows:
            row = cache.pop(path, None)
            if row is not None:
                rows[path] = row
    rows.update(cache)  # unseen: gone, skipped, or under a folder the walk could not list
    rows.update(true_rows)
    cache.clear()
    return rows


# -- the shell --------------------------------------------------------------------------


def walk_against_catalog(conn: sqlite3.Connection, root: str, *, fork: bool) -> Tree:
    """The reduced Tree of a full walk (see the contract). `fork`: a large tree's walk
    may be split with a forked helper (the caller is single-threaded)."""
    last = json.loads(catalog_meta.get_meta(conn, "files_per_folder") or "{}")
    if not (fork and last.get("", 0) >= splitwalk.MIN_FILES):
        return _walk_units(conn, root, [""]).tree()
    parent, db_file = os.getpid(), catalog_db.file_of(conn)

    def share(units: Sequence[str]) -> Part:
        if os.getpid() == parent:
            return _walk_units(conn, root, units)
        # The forked helper: its own connection, never the parent's (SQLite forbids a
        # connection crossing a fork; the parent holds no lock then: no transaction is
        # open during the walk). Left to the helper's os._exit.
        return _walk_units(catalog_db.connect(db_file, check_schema=False), root, units)

    split = splitwalk.SplitWalk(root, last, share, head_start=HEAD_START, helper_cost=HELPER_COST)
    try:
        parts = split.shares()
    finally:
        split.close()
    top = Part(split.top)
    cache: dict[str, int] = {}
    true_rows: dict[str, int] = {}
    for lo, hi in gaps(split.units):
        _load_rows(conn, lo, hi, cache, true_rows, top)
    settle = Settle(cache)
    settle_listed(top.walked, settle)
    top.rows = finish(top.walked, settle, true_rows)
    for part in parts:
        top.merge(part)
    return top.tree()


def _walk_units(conn: sqlite3.Connection, root: str, units: Sequence[str]) -> Part:
    out = Part(WalkResult())
    for unit in units:
        cache: dict[str, int] = {}
        true_rows: dict[str, int] = {}
        _load_rows(conn, *unit_range(unit), cache, true_rows, out)
        settle = Settle(cache)
        part = walk(root, start=unit, settle=settle)
        out.rows.update(finish(part, settle, true_rows))
        out.walked.merge(part)
    return out


def _load_rows(
    conn: sqlite3.Connection,
    lo: str,
    hi: str | None,
    cache: dict[str, int],
    true_rows: dict[str, int],
    part: Part,
) -> None:
    """The rows in [lo, hi) into `cache`, the racy and invalid ones marked never to
    settle (-1; their signatures into `true_rows`, their paths and reasons into
    `part`)."""
    cache.update(catalog_files.stat_sigs_between(conn, lo, hi))
    for path, racy, reason in catalog_files.unsettled_between(conn, lo, hi):
        if path in cache:
            true_rows[path] = cache[path]
            cache[path] = -1
        if racy:
            part.racy.add(path)
        if reason is not None:
            part.reasons[path] = reason
