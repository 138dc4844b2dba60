"""A test fake of `localrepo.remote.api.RemoteAPI`: a remote that cannot be reached.

Every method fails with `RemoteUnavailableError`, as `RecognitionClient` does once its
retries are spent with the network down (an iterator method fails when called, not on
the first `next`). `calls` lists the methods called, in order.
`tests/remote/test_remote_protocol.py` checks that it implements the whole Protocol
with the Protocol's signatures, so a method added there must be added here too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any, NoReturn, overload

from localrepo.remote.changes import ImageChanges
from localrepo.remote.errors import RemoteUnavailableError
from localrepo.remote.models import RemoteImage, RemoteLabel, RemoteTask, Workspace


class UnreachableRemote:
    def __init__(self, reason: str = "connection refused (injected)") -> None:
        self.reason = reason
        self.calls: list[str] = []

    def _down(self, method: str) -> NoReturn:
        self.calls.append(method)
        raise RemoteUnavailableError(self.reason)

    def list_workspaces(self) -> list[Workspace]:
        self._down("list_workspaces")

    def iter_tasks(self, *, page_size: int | None = None) -> Iterator[RemoteTask]:
        self._down("iter_tasks")

    def get_task(self, task_id: str) -> RemoteTask:
        self._down("get_task")

    def find_task(self, name: str, type: str | None = None) -> RemoteTask | None:
        self._down("find_task")

    def create_task(
        self, name: str, type: str = "multi_class", *, description: str = ""
    ) -> RemoteTask:
        self._down("create_task")

    def add_task_label(self, task_id: str, label_id: str) -> None:
        self._down("add_task_label")

    def remove_task_label(self, task_id: str, label_id: str) -> None:
        self._down("remove_task_label")

    def change_cursor(self) -> str | None:
        self._down("change_cursor")

    def image_changes(self, since: str, labels: Sequence[str]) -> ImageChanges | None:
        self._down("image_changes")

    def iter_labels(
        self,
        *,
        task: str | None = None,
        search: str | None = None,
        type: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[RemoteLabel]:
        self._down("iter_labels")

    def list_labels(
        self,
        *,
        task: str | None = None,
        search: str | None = None,
        type: str | None = None,
        page_size: int | None = None,
    ) -> list[RemoteLabel]:
        self._down("list_labels")

    def ensure_task_label(
        self, task_id: str, name: str, type: str = "category", *, share: bool = False
    ) -> RemoteLabel:
        self._down("ensure_task_label")

    def delete_label(self, label_id: str) -> bool:
        self._down("delete_label")

    def iter_images(
        self,
        *,
        labels: Sequence[str] | None = None,
        not_labels: Sequence[str] | None = None,
        test: bool | None = None,
        page_size: int | None = None,
    ) -> Iterator[RemoteImage]:
        self._down("iter_images")

    def count_images(self, *, labels: Sequence[str]) -> int:
        self._down("count_images")

    def get_image(self, image_id: str) -> RemoteImage:
        self._down("get_image")

    def upload_image(
        self,
        data: bytes,
        *,
        meta_data: Mapping[str, Any] | None = None,
        noresize: bool = False,
        test_image: bool = False,
    ) -> tuple[RemoteImage, bool]:
        self._down("upload_image")

    def add_image_label(
        self, image_id: str, label_id: str, value: float | None = None
    ) -> RemoteImage | None:
        self._down("add_image_label")

    def remove_image_label(self, image_id: str, label_id: str) -> RemoteImage | None:
        self._down("remove_image_label")

    def update_image_value(self, image_id: str, label_id: str, value: float) -> RemoteImage | None:
        self._down("update_image_value")

    def delete_image(self, image_id: str) -> bool:
        self._down("delete_image")

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
        self._down("bulk_update_images")

    @overload
    def download(self, url: str, dest: None = None, *, max_bytes: int | None = None) -> bytes: ...

    @overload
    def download(self, url: str, dest: IO[bytes], *, max_bytes: int | None = None) -> int: ...

    def download(
        self, url: str, dest: IO[bytes] | None = None, *, max_bytes: int | None = None
    ) -> bytes | int:
        self._down("download")
