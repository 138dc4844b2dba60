"""The capped `repo status` (the first STATUS_LINES files of each kind, then how many
more) is the `--all` listing cut short: on a clone with more than that many changes of
every kind pending (new, relabelled, moved, modified, deleted, conflicts: real ones,
from two clones synced through the server), each list is the first lines of the full
one and the count of the rest is what the full one has beyond them. The capped status
reads its changes a slice at a time and builds only those it prints (cli/pending.py),
so this is what proves it prints what listing them all prints."""

from __future__ import annotations

import json
import re

from support.synchelp import Clone, World

from localrepo.cli.report import STATUS_LINES

from .test_sync_two_clones import two_clones

N = STATUS_LINES + 3  # of each kind: more than the cap
HINT = "'repo status --all' lists them all"
MORE = re.compile(r"  \.\.\. and (\d+) more \(" + re.escape(HINT) + r"\)")


def _sections(out: str) -> list[tuple[str, list[str]]]:
    """(heading, its lines) of each part of a status, in order; the lines of the
    changes section grouped by kind (each kind's its own section)."""
    out_sections: list[tuple[str, list[str]]] = []
    for block in out.split("\n\n"):
        heading, *lines = block.splitlines()
        if heading.startswith("Changes not yet synced"):
            for line in lines:
                kind = None if MORE.fullmatch(line) else line[2:].split(":", 1)[0]
                if kind is not None and out_sections[-1][0] != kind:
                    out_sections.append((kind, []))
                out_sections[-1][1].append(line)  # a "... and N more" line: its kind's
        else:
            out_sections.append((heading, lines))
    return out_sections


def _capped(sections: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """What a status capped at STATUS_LINES shows of a full one's sections."""
    out = []
    for heading, lines in sections:
        if heading.startswith("Task ") or len(lines) <= STATUS_LINES:
            out.append((heading, lines))
        else:
            more = f"  ... and {len(lines) - STATUS_LINES} more ({HINT})"
            out.append((heading, [*lines[:STATUS_LINES], more]))
    return out


def _pending_clone(world: World) -> Clone:
    """Clone b with N of each kind of change pending, and N open conflicts (two of
    them decided). The files it changes are its own (written there, so its journal
    knows where a deleted one was)."""
    a, b = two_clones(world, {f"dog/x{i:02}.jpg": 100 + i for i in range(N)})
    for i in range(N):
        b.write(f"cats/gone{i:02}.jpg", 200 + i)  # deleted
        b.write(f"cats/m{i:02}.jpg", 300 + i)  # moved, keeping the label
        b.write(f"cats/r{i:02}.jpg", 400 + i)  # relabelled
        b.write(f"cats/w{i:02}.jpg", 500 + i)  # modified: new content
    b.sync()
    for i in range(N):
        a.move(f"dog/x{i:02}.jpg", f"cat/x{i:02}.jpg")
        b.move(f"dog/x{i:02}.jpg", f"bird/x{i:02}.jpg")
    a.sync()
    assert b.sync(expect=3)["conflicts"] == N
    b.run("resolve", "bird/x03.jpg", "--take", "local")
    b.run("resolve", "bird/x07.jpg", "--take", "local")
    for i in range(N):
        (b.root / f"cats/gone{i:02}.jpg").unlink()
        b.move(f"cats/m{i:02}.jpg", f"cats/sub/m{i:02}.jpg")
        b.move(f"cats/r{i:02}.jpg", f"dogs/r{i:02}.jpg")
        b.write(f"cats/w{i:02}.jpg", 600 + i)
        b.write(f"fish/n{i:02}.jpg", 700 + i)  # new, labelled
        b.write(f"loose{i:02}.jpg", 800 + i)  # new, no label
        (b.root / f"cats/bad{i:02}.jpg").write_bytes(b"not an image")  # not valid
    return b


def test_the_capped_status_is_the_full_one_cut_short(world: World) -> None:
    b = _pending_clone(world)
    full = b.run("status", "--all").stdout
    capped = b.run("status").stdout
    sections = _sections(full)
    kinds = {heading: len(lines) for heading, lines in sections if not heading.endswith(":")}
    assert {k: n for k, n in kinds.items() if not k.startswith("Task ")} == {
        "new": 2 * N,
        "relabelled": 2 * N,  # the conflicts' images too: relabelled here
        "moved": N,
        "modified": N,
        "deleted": N,
    }, full
    assert f"Conflicts: {N}, 2 decided" in full
    assert f"Not valid images ({N})" in full
    assert _sections(capped) == _capped(sections), capped
    assert len(MORE.findall(capped)) == 7  # five kinds of change, conflicts, not valid
    assert "more (" not in full
    assert b.run("status", "--exit-code", expect=3).stdout == capped

    # --json and --porcelain list every change, as --all does.
    st = json.loads(b.run("status", "--json").stdout)
    assert len(st["file_changes"]) == 7 * N + N  # the conflicts too
    assert {c["path"] for c in st["file_changes"] if c["kind"] == "modified"} == {
        f"cats/w{i:02}.jpg" for i in range(N)
    }
    porcelain = b.run("status", "--porcelain").stdout.splitlines()
    assert sum(1 for line in porcelain if line.startswith("C ")) == N
