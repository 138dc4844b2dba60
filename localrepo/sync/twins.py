"""Two labels of one name attached to one task, and how they become one again.

Two clones that create a new label at the same moment each find none and each create
one: the task ends up with two labels named `dog` (a multi_class image may even carry
both, which a model would train as two classes). Every clone settles them the same way:

- the **canonical** label is the oldest (by `created`, then id): all clones agree on it
  without talking to each other;
- the listing reads both as the one name (`sync/snapshot.build_snapshot`), so nothing
  looks deleted meanwhile;
- a sync (not a pull: it changes nothing on the server) moves the images of each twin
  onto the canonical label (one request; value
  labels image by image, keeping each value), and a twin found empty at the start of a
  later sync is detached from the task (and deleted when no other task uses it). The
  two steps are apart so that images a racing clone linked to the twin after the move
  are moved by the next sync, never left on a detached label.

`label_twins` is the pure core; `settle_twins` the shell.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from localrepo.remote.api import RemoteAPI
from localrepo.sync.snapshot import created_order


@dataclass(frozen=True)
class Twins:
    name: str
    canonical: Any  # RemoteLabel-like: id, name, type, raw["created"]
    others: tuple[Any, ...]


def label_twins(attached: Iterable[Any]) -> list[Twins]:
    """The names that two or more attached labels (of one type) share."""
    by_name: dict[tuple[str, str], list[Any]] = {}
    for lab in attached:
        if getattr(lab, "negative_for_task", None):
            continue
        by_name.setdefault((lab.name, lab.type), []).append(lab)
    out = []
    for (name, _type), labs in sorted(by_name.items()):
        if len(labs) > 1:
            ordered = sorted(labs, key=created_order)
            out.append(Twins(name, ordered[0], tuple(ordered[1:])))
    return out


@dataclass
class Settled:
    moved: int = 0  # images moved onto canonical labels
    detached: list[str] | None = None  # twin labels detached (names)


def settle_twins(
    client: RemoteAPI, task_id: str, twins: Sequence[Twins], value_labels: bool
) -> Settled:
    """Move each twin's images onto its canonical label; detach (and, when no other
    task uses it, delete) a twin that was empty already."""
    done = Settled(detached=[])
    for group in twins:
        for twin in group.others:
            moved = _move_images(client, twin.id, group.canonical.id, value_labels)
            done.moved += moved
            if moved == 0:
                client.remove_task_label(task_id, twin.id)
                if (twin.tasks_count or 0) <= 1:
                    client.delete_label(twin.id)
                assert done.detached is not None
                done.detached.append(group.name)
    return done


def _move_images(client: RemoteAPI, twin_id: str, canonical_id: str, value_labels: bool) -> int:
    if not value_labels:  # one request: the server relabels every image of the twin
        return int(
            client.bulk_update_images(
                labels=[twin_id], labels_add=[canonical_id], labels_remove=[twin_id]
            )
        )
    moved = 0
    for image in client.iter_images(labels=[twin_id]):
        ids = {lab.id: lab for lab in image.labels}
        if canonical_id not in ids:
            client.add_image_label(image.id, canonical_id, ids[twin_id].value)
        client.remove_image_label(image.id, twin_id)
        moved += 1
    return moved
