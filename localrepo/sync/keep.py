"""`repo resolve --keep LABEL`: settle a category conflict by keeping one label folder.

The user names the category an image in conflict keeps; the disk is made to say exactly
that (one copy in that label's folder, copies in other label folders to the trash), and
the resolution then takes the local side. Copies under `_unlabeled/` or the task root
are no label and stay.

`keep_one` is the pure core; `keep_label` the shell that moves and trashes, after
checking each file still is what the catalog recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from localrepo.errors import LocalrepoError
from localrepo.sync.localfs import LocalFS


@dataclass(frozen=True)
class KeepPlan:
    move: str | None  # a copy to move into the kept label's folder (none is there yet)
    trash: tuple[str, ...]  # copies in other label folders


def keep_one(paths: Sequence[str], label: str, label_of: Callable[[str], str | None]) -> KeepPlan:
    """What makes the files `paths` of one image say exactly `label`."""
    kept = [p for p in paths if label_of(p) == label]
    others = [p for p in sorted(paths) if label_of(p) not in (label, None)]
    if kept:
        return KeepPlan(None, tuple(others))
    if others:
        return KeepPlan(others[0], tuple(others[1:]))
    unlabelled = sorted(paths)
    return KeepPlan(unlabelled[0] if unlabelled else None, ())


def keep_label(
    fs: LocalFS,
    files: Sequence[str],
    label: str,
    folder: str,
    label_of: Callable[[str], str | None],
    stats: dict[str, tuple[int, int, int, int, int]],
) -> list[str]:
    """Carry out `keep_one` on disk through a LocalFS; returns what was done, in words."""
    if not files:
        raise LocalrepoError(f"no local file holds this image; nothing to keep in '{label}'")
    plan = keep_one(files, label, label_of)
    done: list[str] = []
    for path in ([plan.move] if plan.move else []) + list(plan.trash):
        fs.check(path, stats.get(path))
    if plan.move:
        moved = fs.move(plan.move, folder, plan.move.rsplit("/", 1)[-1])
        done.append(f"moved {plan.move} to {moved.path}")
    for path in plan.trash:
        where = fs.trash(path)
        done.append(f"moved {path} to the trash ({where})")
    return done
