"""The walk against the catalog (scan/statmerge.py): a full scan of a catalogued tree
keeps only what changed, yet records what a scan that holds the whole walk and the
whole stat cache records.

Each scenario is played on two copies of one tree: one scanned with the walk against
the catalog (split with a forked helper, or in one process), one with the whole walk
(the path a first scan takes); their catalogs and reports must agree."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.treebuilder import db, write, write_image

from localrepo.catalog import files as catalog_files
from localrepo.scan import splitwalk, statmerge, statpass
from localrepo.scan.scanner import Scanner
from localrepo.scan.walk import Settle, WalkResult, walk

from .test_split_walk import make_repo, recorded


def test_units_and_gaps_share_out_every_path_once_as_sqlite_orders_them() -> None:
    """Whatever the names (a space or a dash sorts before "/", a non-ASCII letter after
    "0"), every path falls in the range of the unit that holds it, or in a gap when no
    unit does, by SQLite's own comparison."""
    units = ["a", "a b", "a-b", "a.b", "ab", "é", "z/y", "z/y z"]
    paths = [
        "a.jpg", "a/x.jpg", "a/deep/x.jpg", "a b/x.jpg", "a-b/x.jpg", "a.b/x.jpg",
        "ab/x.jpg", "a0/x.jpg", "é/x.jpg", "éa/x.jpg", "z/y/x.jpg", "z/y z/x.jpg",
        "z/x.jpg", "z/y0.jpg", "gone/x.jpg", "", "~/x.jpg", "\U0001f600/x.jpg",
    ]  # fmt: skip
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (path TEXT PRIMARY KEY)")
    conn.executemany("INSERT INTO t VALUES (?)", [(p,) for p in paths])

    def rows(lo: str, hi: str | None) -> set[str]:
        if hi is None:
            return {p for (p,) in conn.execute("SELECT path FROM t WHERE path >= ?", (lo,))}
        q = "SELECT path FROM t WHERE path >= ? AND path < ?"
        return {p for (p,) in conn.execute(q, (lo, hi))}

    owner: dict[str, str] = {}
    for unit in units:
        for p in rows(*statmerge.unit_range(unit)):
            assert p not in owner, (p, unit, owner.get(p))
            owner[p] = unit
    for lo, hi in statmerge.gaps(units):
        for p in rows(lo, hi):
            assert p not in owner, (p, "gap", owner.get(p))
            owner[p] = "gap"
    assert set(owner) == set(paths)
    for p in paths:
        holder = [u for u in units if p.startswith(u + "/")]
        assert owner[p] == (holder[0] if holder else "gap"), p
    assert statmerge.gaps([]) == [("", None)]
    assert statmerge.unit_range("") == ("", None)


def test_a_settled_file_is_counted_and_every_other_row_is_kept(tmp_path: Path) -> None:
    write_image(tmp_path, "a/same.jpg", 1)
    write_image(tmp_path, "a/changed.jpg", 2)
    write_image(tmp_path, "a/new.jpg", 3)
    write_image(tmp_path, "a/racy.jpg", 4)
    stats = walk(str(tmp_path)).images
    cache = {
        "a/same.jpg": hash(stats["a/same.jpg"]),
        "a/changed.jpg": hash(stats["a/changed.jpg"]) + 1,
        "a/racy.jpg": -1,  # marked never to settle
        "a/gone.jpg": 7,
    }
    settle = Settle(dict(cache))
    part = walk(str(tmp_path), settle=settle)
    assert part.settled == 1
    assert set(part.images) == {"a/changed.jpg", "a/new.jpg", "a/racy.jpg"}
    rows = statmerge.finish(part, settle, {"a/racy.jpg": 99})
    assert rows == {"a/changed.jpg": cache["a/changed.jpg"], "a/racy.jpg": 99, "a/gone.jpg": 7}
    # The same, for files listed without settling (a split walk's top).
    listed = WalkResult(images=dict(stats))
    settle = Settle(dict(cache))
    statmerge.settle_listed(listed, settle)
    assert listed.settled == 1 and "a/same.jpg" not in listed.images
    assert statmerge.finish(listed, settle, {"a/racy.jpg": 99}) == rows


Change = Callable[[Path], None]


def _unchanged(root: Path) -> None:
    pass


def _files(root: Path) -> None:
    os.rename(root / "dog/0.jpg", root / "cat/0.jpg")  # a move
    (root / "fish/1.jpg").unlink()  # a delete
    write_image(root, "fish/new.jpg", 999)  # an addition
    write_image(root, "bird/0.jpg", 998)  # new bytes at a known path
    write_image(root, "top.jpg", 997)  # a new file at the root (a split walk's top)


def _folders(root: Path) -> None:
    shutil.move(root / "ant", root / "wasp")  # a renamed label folder
    shutil.rmtree(root / "bird")  # a label folder gone (its rows are in no unit)
    (root / "root.jpg").unlink()  # a root file gone
    write(root, "reg/metadata.jsonl", '{"file_name": "a/r.jpg", "value": 4}\n')


def _invalid(root: Path) -> None:
    (root / "cat/1.jpg").write_bytes(b"not a jpeg")  # a valid file turns invalid
    write(root, "dog/broken.jpg", b"\xff\xd8 broken")  # a new invalid file
    os.symlink(root / "cat/0.jpg", root / "dog/link.jpg")  # skipped


def _ignored(root: Path) -> None:
    write(root, ".localrepoignore", "*.tmp.jpg\nskipme/\nfish/\n")  # a folder ignored now


def _age(root: Path, fresh: str) -> None:
    """Every file written long ago, so that its row is not racy, except `fresh`: its
    row stays racy and a scan reads it again although nothing changed."""
    old = time.time() - 3600
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            if ".localrepo" not in path.parts and path != root / fresh:
                os.utime(path, (old, old), follow_symlinks=False)


# Each change split and in one process, once with a few files (only what changed is
# read back) and once with FEW_FILES at 1 (the settled files put back), crossed so
# that every change meets both ways and both paths.
FEW = statpass.FEW_FILES
CASES = [
    (_unchanged, True, FEW),
    (_files, True, FEW),
    (_files, False, 1),
    (_folders, True, 1),
    (_folders, False, FEW),
    (_invalid, True, FEW),
    (_invalid, False, 1),
    (_ignored, True, 1),
    (_ignored, False, FEW),
]


@pytest.mark.parametrize(
    ("change", "fork", "few"),
    CASES,
    ids=[
        f"{c.__name__.strip('_')}-{'split' if f else 'one-process'}-{'few' if n > 1 else 'many'}"
        for c, f, n in CASES
    ],
)
def test_a_walk_against_the_catalog_records_what_the_whole_walk_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fork: bool, change: Change, few: int
) -> None:
    """`many`: with FEW_FILES at 1, every change takes the path that puts the settled
    files back (statpass.fill_settled) and goes over every file."""
    monkeypatch.setattr(splitwalk, "MIN_FILES", 1)
    monkeypatch.setattr(splitwalk, "can_split", lambda: fork)
    roots = [make_repo(tmp_path / "whole"), make_repo(tmp_path / "merged")]
    for root in roots:
        _age(root, "dog/1.jpg")
    reports = [_scan(root) for root in roots]  # first scans: the whole walk, both
    for root in roots:
        change(root)
    monkeypatch.setattr(statpass, "FEW_FILES", few)
    real_has_files = catalog_files.has_files
    for attempt in range(2):  # the change, then a no-change scan after it
        monkeypatch.setattr(catalog_files, "has_files", lambda conn: False)
        whole = _scan(roots[0])
        monkeypatch.setattr(catalog_files, "has_files", real_has_files)
        merged = _scan(roots[1], expect_settled=True)
        assert recorded(roots[0]) == recorded(roots[1]), attempt
        assert _facts(whole) == _facts(merged), attempt
        reports.append(merged)
    assert reports[-1].changes == []  # the second pass found nothing new


def _scan(root: Path, *, expect_settled: bool = False):  # type: ignore[no-untyped-def]
    conn = db(root)
    settled: list[int] = []
    real = statmerge.walk_against_catalog

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        tree = real(*args, **kwargs)
        settled.append(tree.walked.settled)
        return tree

    try:
        statmerge.walk_against_catalog = spy  # type: ignore[assignment]
        rep = Scanner(root, conn, workers=2).scan()
    finally:
        statmerge.walk_against_catalog = real  # type: ignore[assignment]
        conn.close()
    if expect_settled:
        assert settled and settled[0] > 0, "the walk against the catalog did not run"
    return rep


def _facts(rep) -> tuple:  # type: ignore[no-untyped-def]
    return (
        rep.files,
        rep.hashed,
        sorted(rep.invalid.items()),
        sorted(rep.retry_later),
        sorted(map(repr, rep.changes)),
        sorted(rep.leftovers),
    )


def test_a_units_rows_are_read_from_indexes_not_the_table(tmp_path: Path) -> None:
    """What keeps a no-change status near a bare stat walk at a million files: each
    unit's signatures come from the covering index, and the rows that must not settle
    from their partial index (its condition as written in the migration)."""
    root = make_repo(tmp_path / "r")
    write(root, "dog/broken.jpg", b"\xff\xd8 broken")
    write_image(root, "dog/fresh.jpg", 77, old=False)  # its row is racy
    _scan(root)
    conn = db(root)
    try:
        for sql, args in [
            ("SELECT path, stat_sig FROM file WHERE path >= ? AND path < ?", ("a/", "a0")),
            (
                f"SELECT path FROM file WHERE path >= ? AND {catalog_files.UNSETTLED}",
                ("a/",),
            ),
        ]:
            plan = " ".join(r[-1] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args))
            assert "ix_file_path_stat_sig" in plan or "ix_file_unsettled" in plan, plan
            assert "COVERING INDEX" in plan or "ix_file_unsettled" in plan, plan
        sigs = catalog_files.stat_sigs_between(conn, "cat/", "cat0")
        assert sigs and all(p.startswith("cat/") for p in sigs)
        unsettled = catalog_files.unsettled_between(conn, "", None)
        reasons = catalog_files.load_reasons(conn)
        assert "dog/broken.jpg" in reasons
        assert {p: why for p, _r, why in unsettled if why} == reasons
        racy = {p for p, r, _why in unsettled if r}
        assert "dog/fresh.jpg" in racy
        assert racy == catalog_files.load_racy(conn, catalog_files.RACY_NS)
    finally:
        conn.close()


def test_a_helper_killed_mid_walk_leaves_its_share_to_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forked helper that dies (kill -9, out of memory) sends nothing: its folders are
    walked against the catalog by the command itself, and nothing reads as gone."""
    monkeypatch.setattr(splitwalk, "MIN_FILES", 1)
    monkeypatch.setattr(splitwalk, "can_split", lambda: True)
    root = make_repo(tmp_path / "r")
    _scan(root)
    before = recorded(root)
    parent = os.getpid()
    real = statmerge._walk_units

    def killed_in_the_helper(conn, root_, units):  # type: ignore[no-untyped-def]
        if os.getpid() != parent:
            os.kill(os.getpid(), 9)
        return real(conn, root_, units)

    monkeypatch.setattr(statmerge, "_walk_units", killed_in_the_helper)
    rep = _scan(root, expect_settled=True)
    assert rep.changes == [] and rep.files > 0
    assert recorded(root) == before
