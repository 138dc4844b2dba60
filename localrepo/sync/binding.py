"""Binding a local task to a remote one: never a silent takeover (docs/sync.md,
"Joining a task that exists").

A repository's task is bound to a server task at its first sync (or by `repo init
--join`, `repo clone`). A server task of the same name and type that already holds
labels or images belongs to someone's work: binding to it would upload an unrelated
folder tree into it and download all of its images. That happens only when the user
says so (`--join`); otherwise the run stops before anything is written, naming the
task, what it holds, and the safe choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from localrepo.errors import EXIT_SAFETY, LocalrepoError
from localrepo.remote.api import RemoteAPI
from localrepo.sync.snapshot import list_remote_labels


class TakeoverRefused(LocalrepoError):
    exit_code = EXIT_SAFETY


@dataclass(frozen=True)
class TaskContent:
    """What a server task holds: its labels (names) and how many images carry one."""

    task_id: str
    name: str
    type: str
    labels: tuple[str, ...]
    images: int

    @property
    def empty(self) -> bool:
        return not self.labels and not self.images


def task_content(client: RemoteAPI, task: Any) -> TaskContent:
    """Read what the server task `task` (a RemoteTask) holds: two or three requests."""
    attached = [lab for lab in list_remote_labels(client, task.id) if not lab.negative_for_task]
    images = client.count_images(labels=[lab.id for lab in attached]) if attached else 0
    return TaskContent(
        task.id, task.name, task.type, tuple(sorted(lab.name for lab in attached)), images
    )


def refusal(content: TaskContent, *, url: str | None, rename_hint: str) -> str:
    """The message that stops a takeover: the task, its counts, the two safe choices,
    and the flag that joins it on purpose. `rename_hint`: how to pick another name."""
    shown = ", ".join(repr(n) for n in content.labels[:5])
    more = f" and {len(content.labels) - 5} more" if len(content.labels) > 5 else ""
    labels = f" ({shown}{more})" if content.labels else ""
    return (
        f"The server already has a task '{content.name}' ({content.type}, id "
        f"{content.task_id}) with {content.images} images and {len(content.labels)} "
        f"labels{labels}. Syncing would upload this folder's images into it and download "
        "all of its images here, so nothing was changed. Either clone that task into a "
        f"new folder (repo clone {url or 'URL'} --remote-task {content.task_id}), or give this "
        f"folder's task another name ({rename_hint}). To join it on purpose, run again "
        "with --join."
    )


def check_new_binding(
    client: RemoteAPI, name: str, task_type: str, *, join: bool, url: str, rename_hint: str
) -> str | None:
    """The server task a new repository's task `name` binds to now: its id with `join`
    (it must exist), None when the first sync may bind it (there is none, or it holds
    nothing). Raises TakeoverRefused when it holds labels or images and not `join`."""
    found = client.find_task(name, task_type)
    if found is None:
        if join:
            raise LocalrepoError(
                f"--join: the server has no {task_type} task named '{name}' (see 'repo tasks')."
            )
        return None
    if join:
        return str(found.id)
    content = task_content(client, found)
    if content.empty:
        return None
    raise TakeoverRefused(refusal(content, url=url, rename_hint=rename_hint))
