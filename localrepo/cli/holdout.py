"""Pure core of `repo evaluate --holdout DIR`: what a folder tree the model never saw
says about its images, by the repository's own layout rules (layout.py).

Contract: no I/O. `holdout_truth` takes the task's type and label names, every image
file under DIR as (path relative to DIR, content key: equal for copies of one image)
and the sidecar rows of DIR (`layout.resolve_sidecars`), and returns the truth of each
image ({path: [(label, value)]}, one path per image content, as `evaluation` takes it)
and the files it skipped with the reason. DIR stands for a task root: the first-level
folder is the label (multi_class), the tag (multi_label, or a sidecar's `labels`), or
the value label whose value a sidecar gives (regression); copies of one image are
merged as the scanner merges them (`layout.merge_image_labels`). A file whose label is
not one of the task's, or that says no label, is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from localrepo.layout import TaskBinding, merge_image_labels, place, sidecar_for
from localrepo.sidecars import SidecarRow
from localrepo.vocabulary import TaskType


@dataclass(frozen=True)
class Holdout:
    truth: dict[str, tuple[tuple[str, float | None], ...]]  # path -> ((label, value), ...)
    skipped: tuple[tuple[str, str], ...]  # (path, why), by path


def holdout_truth(
    task_type: TaskType,
    names: Sequence[str],
    files: Sequence[tuple[str, str]],
    sidecars: Mapping[str, SidecarRow],
) -> Holdout:
    """The truth of the images under DIR and the files skipped (see the module)."""
    binding = TaskBinding(0, "holdout", task_type, "")
    known = set(names)
    groups: dict[str, list[str]] = {}
    for path, key in files:
        groups.setdefault(key, []).append(path)
    truth: dict[str, tuple[tuple[str, float | None], ...]] = {}
    skipped: list[tuple[str, str]] = []
    for paths in groups.values():
        placements = [place(p, binding, sidecar_for(sidecars, p)) for p in sorted(paths)]
        labelled = [p for p in placements if p.labels]
        for p in placements:
            if not p.labels:
                why = _strip(p.problems[-1], p.path) if p.problems else "not in a label folder"
                skipped.append((p.path, why))
        if not labelled:
            continue
        merged, problems = merge_image_labels(task_type, labelled)
        unknown = sorted(set(merged) - known)
        first = labelled[0].path
        if problems or not merged:
            skipped += [(p.path, problems[0] if problems else "no label") for p in labelled]
        elif unknown:
            said = ", ".join(repr(u) for u in unknown)
            why = (
                f"{said} {'is not a label' if len(unknown) == 1 else 'are not labels'} of the "
                f"task (its labels: {', '.join(sorted(known)) or 'none'}); skipped"
            )
            skipped += [(p.path, why) for p in labelled]
        else:
            truth[first] = tuple(sorted(merged.items()))
    return Holdout(dict(sorted(truth.items())), tuple(sorted(skipped)))


def _strip(problem: str, path: str) -> str:
    """A layout problem without the path it starts with (the caller names the file)."""
    return problem.removeprefix(f"{path}: ")
