"""Which images a sync must hold back, and what the folders say of ambiguous ones.

Pure functions over what the catalog knows of one task's files (docs/sync.md, "Damaged
files" and "Label names and folder names"). A held image's local side is taken as
unchanged since the last sync: nothing of it is uploaded, relabelled or deleted on the
remote, and no remote change is written over its files, until the reason goes away.
Holding is what keeps a damaged copy, or a folder name that cannot round-trip, from
ever reading as "the user deleted this image".

- **damaged**: a file that held the image when it was valid and cannot be read or
  decoded now (truncated, emptied, garbage, unreadable, replaced by a symlink);
- **refused folder**: a file of the image sits in a first-level folder whose name the
  naming rule refuses (labelnames.py);
- **no value** (regression): a copy sits in a value folder with no value for it.

A multi_class image with copies in several label folders is not held: its local state
is every one of those labels (`ambiguous_labels`), which the planner makes a conflict
that the user settles (keep one), never a delete.

`hold_back` applies both to the planner's input; the engine (sync/engine.py) reads the
task's files, damaged files and refused folders from the catalog and calls it before it
plans, so a hold lasts across runs until its reason is gone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from localrepo.layout import label_for_folder, relative_to_root
from localrepo.sync.plan import TaskState
from localrepo.vocabulary import MULTI_CLASS, REGRESSION


@dataclass(frozen=True)
class Hold:
    key: str  # the image
    path: str  # the file that causes it
    reason: str  # in the user's words


@dataclass(frozen=True)
class TaskFiles:
    """One task's files as the catalog holds them."""

    task_type: str
    root: str  # the task root, repository-relative ("" the repository)
    files: Mapping[str, Sequence[str]]  # {image key: valid file paths}
    damaged: Mapping[str, tuple[str, str]]  # {path: (image key it held, why it is damaged)}
    refused_folders: Collection[str] = ()  # repository-relative first-level folders


def _label_of(path: str, root: str) -> tuple[str | None, str | None]:
    """(first-level folder, its label) of a path under the task root."""
    head, sep, _rest = relative_to_root(path, root).partition("/")
    if not sep:
        return None, None
    return head, label_for_folder(head)


def held_images(
    task: TaskFiles,
    local: Mapping[str, Mapping[str, float | None]],
    synced: Collection[str],
) -> dict[str, Hold]:
    """{image key: the first reason it is held}; `local` is the LOCAL label state,
    `synced` the images the last sync agreed on. A damaged file or a missing value only
    holds a synced image: one never synced cannot be mistaken for a delete, and takes the
    remote's state (a download puts a good copy beside the damaged one)."""
    holds: dict[str, Hold] = {}
    for path, (key, why) in sorted(task.damaged.items()):
        if key in synced:
            holds.setdefault(key, Hold(key, path, f"damaged ({why})"))
    refused = {relative_to_root(f, task.root) for f in task.refused_folders}
    for key, paths in sorted(task.files.items()):
        if key in holds:
            continue
        for path in paths:
            head, label = _label_of(path, task.root)
            if head is not None and head in refused:
                holds[key] = Hold(key, path, f"its folder '{head}' cannot be a label folder")
                break
            if (
                task.task_type == REGRESSION
                and label is not None
                and label not in local.get(key, {})
                and key in synced
            ):
                holds[key] = Hold(key, path, f"no value for '{label}'")
                break
    return holds


def ambiguous_labels(task: TaskFiles) -> dict[str, frozenset[str]]:
    """multi_class images whose copies sit in several label folders: {key: labels}."""
    if task.task_type != MULTI_CLASS:
        return {}
    out: dict[str, frozenset[str]] = {}
    for key, paths in task.files.items():
        if len(paths) < 2:
            continue
        labels = {label for _head, label in (_label_of(p, task.root) for p in paths) if label}
        if len(labels) > 1:
            out[key] = frozenset(labels)
    return out


def hold_back(state: TaskState, task: TaskFiles) -> tuple[TaskState, list[Hold]]:
    """The planner's input with held images blocked (their local side taken as
    unchanged) and ambiguous ones in all their labels, and the holds, by path."""
    holds = held_images(task, state.local, {k for k, v in state.base.items() if v})
    ambiguous = {k: v for k, v in ambiguous_labels(task).items() if k not in holds}
    local = state.local
    if ambiguous:
        local = {**local, **{k: dict.fromkeys(v) for k, v in ambiguous.items()}}
    state = replace(state, local=local, local_blocked=state.local_blocked | frozenset(holds))
    return state, [holds[k] for k in sorted(holds, key=lambda k: holds[k].path)]
