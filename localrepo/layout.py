"""Layout rules: the folder tree is the labelling interface (design section 2).

Pure functions only: no disk, no clock. The scanner feeds them relative paths and parsed
sidecar rows, and gets back which task a file belongs to and what it says about labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

TaskType = Literal["multi_class", "multi_label", "regression"]
TASK_TYPES: tuple[TaskType, ...] = ("multi_class", "multi_label", "regression")

IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff"})
SIDECAR_NAMES = ("metadata.jsonl", "metadata.csv")  # jsonl preferred when both exist
UNLABELED_DIR = "_unlabeled"


@dataclass(frozen=True)
class TaskBinding:
    """A task bound to a folder of the repository ("task root")."""

    task_id: int
    name: str
    type: TaskType
    root: str  # posix path relative to the repository root; "" is the root itself


@dataclass(frozen=True)
class SidecarRow:
    """One row of a metadata.jsonl / metadata.csv, resolved to a repository path."""

    path: str  # posix path relative to the repository root (folder + file_name)
    source: str  # the sidecar file it came from, relative to the repository root
    label: str | None = None
    labels: tuple[str, ...] | None = None
    value: float | None = None
    meta_data: dict = field(default_factory=dict)
