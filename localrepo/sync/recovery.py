"""Finishing a local relabel that a crash interrupted (docs/reliability.md).

The executor moves a multi_class image to another label folder by linking it into the
new folder and then removing the old name, and trashes copies left in labels the image
no longer has. Its op is journalled (in flight) before it touches the disk. A crash in
between leaves the image in two label folders, which would otherwise read as a
conflict on its category. At the next start, for each op still in flight, this core
says how to complete it, once the image has a copy in every folder of its target (the
op got past its first step); an op that never got that far has nothing to roll back,
and the planner re-derives it.

- a copy outside the target that shares its inode with a copy inside (the old name of
  an interrupted move) is unlinked: the same file keeps its other name, nothing is lost;
- any other copy in a label folder outside the target goes to the trash, as the op
  would have done;
- a copy with no label (under `_unlabeled/`, or in the task root) that is not the old
  name of the move is left alone.

Pure: plain data in, plain data out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class InterruptedRelabel:
    key: str  # the image
    target: frozenset[str]  # the labels it was being given


@dataclass(frozen=True)
class FileAt:
    path: str
    dev: int
    inode: int


@dataclass(frozen=True)
class Completion:
    unlink: tuple[str, ...] = ()  # second names of one file: removing them loses nothing
    trash: tuple[str, ...] = ()  # copies the op was going to trash


def complete_relabels(
    ops: Sequence[InterruptedRelabel],
    files: Mapping[str, Sequence[FileAt]],
    label_of: Callable[[str], str | None],
) -> Completion:
    """What finishes the interrupted relabels `ops`, given each image's files now and
    the label a path stands for (None: no label)."""
    unlink: set[str] = set()
    trash: set[str] = set()
    for op in ops:
        copies = files.get(op.key, ())
        inside = [f for f in copies if label_of(f.path) in op.target]
        if not op.target or {label_of(f.path) for f in inside} != set(op.target):
            continue  # not every target folder has it yet: nothing was half done
        nodes = {(f.dev, f.inode) for f in inside}
        for f in copies:
            label = label_of(f.path)
            if label in op.target:
                continue
            if (f.dev, f.inode) in nodes:
                unlink.add(f.path)
            elif label is not None:
                trash.add(f.path)
    return Completion(tuple(sorted(unlink)), tuple(sorted(trash - unlink)))
