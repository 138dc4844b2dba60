"""`RemoteAPI`: what the sync side calls on a remote client, as one Protocol.

The sync engine (`sync/engine.py`), remote state loading (`sync/snapshot.py`), binding
(`sync/binding.py`), twins (`sync/twins.py`), verify (`sync/verify.py`), the executor
(`sync/execute.py`, which only hands the client on: every request of the executor is
made by its remote side, `sync/remote_side.py`, meant below by "the executor"), the
watcher (`watch/daemon.py`) and the remote commands (`cli/sync_cmds.py`) are typed with
it; `RecognitionClient` satisfies it (`tests/remote/test_remote_protocol.py` compares the
signatures), and so does the test fake `tests/support/fakeremote.py`. The ML commands
(`cli/ml_cmds.py`: train, wait, classify, `map`) use `RecognitionClient` itself.

Closing is not part of it: whoever makes a client closes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any, Protocol, overload

from localrepo.vocabulary import CATEGORY, MULTI_CLASS

from .changes import ImageChanges
from .models import RemoteImage, RemoteLabel, RemoteTask, Workspace


class RemoteAPI(Protocol):
    """The remote client the sync side needs. Each method says who calls it."""

    # -- account and tasks -----------------------------------------------------------------

    def list_workspaces(self) -> list[Workspace]:
        """`repo login` (proves the token)."""
        ...

    def iter_tasks(self, *, page_size: int | None = None) -> Iterator[RemoteTask]:
        """`repo remote tasks`, `repo clone` (a task by name)."""
        ...

    def get_task(self, task_id: str) -> RemoteTask:
        """snapshot (a task's labels, for the engine, binding and the executor), `repo
        clone` (a task by id)."""
        ...

    def find_task(self, name: str, type: str | None = None) -> RemoteTask | None:
        """The engine and binding: a task's first sync looks for one of its name."""
        ...

    def create_task(
        self, name: str, type: str = MULTI_CLASS, *, description: str = ""
    ) -> RemoteTask:
        """The engine: a task's first sync, when the server has none of that name."""
        ...

    def add_task_label(self, task_id: str, label_id: str) -> None:
        """The executor (a new label folder)."""
        ...

    def remove_task_label(self, task_id: str, label_id: str) -> None:
        """The executor (a label folder gone), twins (an empty twin detached)."""
        ...

    # -- labels ----------------------------------------------------------------------------

    def iter_labels(
        self,
        *,
        task: str | None = None,
        search: str | None = None,
        type: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[RemoteLabel]:
        """`repo remote labels`."""
        ...

    def list_labels(
        self,
        *,
        task: str | None = None,
        search: str | None = None,
        type: str | None = None,
        page_size: int | None = None,
    ) -> list[RemoteLabel]:
        """snapshot (the labels attached to a task)."""
        ...

    def ensure_task_label(
        self, task_id: str, name: str, type: str = CATEGORY, *, share: bool = False
    ) -> RemoteLabel:
        """The executor: the label for a folder, adopted by the task's isolation rule."""
        ...

    def delete_label(self, label_id: str) -> bool:
        """Twins: an empty twin no other task uses."""
        ...

    # -- images ----------------------------------------------------------------------------

    def iter_images(
        self,
        *,
        labels: Sequence[str] | None = None,
        not_labels: Sequence[str] | None = None,
        test: bool | None = None,
        page_size: int | None = None,
    ) -> Iterator[RemoteImage]:
        """snapshot (the task's listing), twins (a value twin's images)."""
        ...

    def change_cursor(self) -> str | None:
        """snapshot: the change feed's cursor of now (None: the server has none)."""
        ...

    def image_changes(self, since: str, labels: Sequence[str]) -> ImageChanges | None:
        """snapshot: what changed since the cursor (None: list in full)."""
        ...

    def count_images(self, *, labels: Sequence[str]) -> int:
        """Binding: does the server task have content (the takeover check)."""
        ...

    def get_image(self, image_id: str) -> RemoteImage:
        """The engine (the watcher's push reads changed images), the executor."""
        ...

    def upload_image(
        self,
        data: bytes,
        *,
        meta_data: Mapping[str, Any] | None = None,
        noresize: bool = False,
        test_image: bool = False,
    ) -> tuple[RemoteImage, bool]:
        """The executor: push a new file (the duplicate answer adopts, `created=False`)."""
        ...

    def add_image_label(
        self, image_id: str, label_id: str, value: float | None = None
    ) -> RemoteImage | None:
        """The executor, twins."""
        ...

    def remove_image_label(self, image_id: str, label_id: str) -> RemoteImage | None:
        """The executor, twins."""
        ...

    def update_image_value(self, image_id: str, label_id: str, value: float) -> RemoteImage | None:
        """The executor (a regression value changed)."""
        ...

    def delete_image(self, image_id: str) -> bool:
        """The executor (a file deleted here)."""
        ...

    def bulk_update_images(
        self,
        *,
        images: Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
        labels_add: Sequence[str] = (),
        labels_remove: Sequence[str] = (),
        mark_test: bool = False,
        unmark_test: bool = False,
    ) -> int:
        """The executor (labels of fresh uploads in bulk), twins (a category twin's
        images moved in one request)."""
        ...

    # -- media -----------------------------------------------------------------------------

    @overload
    def download(self, url: str, dest: None = None, *, max_bytes: int | None = None) -> bytes: ...

    @overload
    def download(self, url: str, dest: IO[bytes], *, max_bytes: int | None = None) -> int: ...

    def download(
        self, url: str, dest: IO[bytes] | None = None, *, max_bytes: int | None = None
    ) -> bytes | int:
        """The executor: pull an image's bytes."""
        ...
