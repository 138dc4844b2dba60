"""Endpoints: the account's workspaces, and tasks (list, find, create with a probe,
update, delete, label links)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from localrepo.vocabulary import MULTI_CLASS

from .answers import pick_one
from .models import RemoteTask, Workspace
from .pagination import Pager


class TaskEndpoints(Pager):
    def list_workspaces(self) -> list[Workspace]:
        """``GET account/v2/workspace/`` (a plain array; a page is accepted too)."""
        op = "GET account/v2/workspace/"
        url = self.account_url + "workspace/"
        body = self._parse(self._call("GET", url, op=op), op)
        if isinstance(body, Mapping):
            body = body.get("results", [])
        return [Workspace.from_api(w) for w in body or [] if isinstance(w, Mapping)]

    # -- tasks -----------------------------------------------------------------------------

    def iter_tasks(self, *, page_size: int | None = None) -> Iterator[RemoteTask]:
        for item in self._items("task/", {"page_size": page_size}):
            yield RemoteTask.from_api(item)

    def list_tasks(self, *, page_size: int | None = None) -> list[RemoteTask]:
        return list(self.iter_tasks(page_size=page_size))

    def get_task(self, task_id: str) -> RemoteTask:
        return RemoteTask.from_api(self._request("GET", f"task/{task_id}/"))

    def find_task(self, name: str, type: str | None = None) -> RemoteTask | None:
        """A task of exactly this name (and type); the oldest if there are twins."""
        matches = [
            t for t in self.iter_tasks() if t.name == name and (type is None or t.type == type)
        ]
        return pick_one(matches, newest=False)

    def create_task(
        self, name: str, type: str = MULTI_CLASS, *, description: str = ""
    ) -> RemoteTask:
        """Create a task. A lost answer is resolved by looking for it (name + type)."""

        def probe() -> dict[str, Any] | None:
            matches = [t for t in self.iter_tasks() if t.name == name and t.type == type]
            found = pick_one(matches, newest=True)
            return found.raw if found else None

        body = {"name": name, "type": type, "description": description}
        return RemoteTask.from_api(self._post_created("task/", body, probe))

    def update_task(
        self, task_id: str, *, name: str | None = None, description: str | None = None
    ) -> RemoteTask:
        body = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
        return RemoteTask.from_api(self._request("PATCH", f"task/{task_id}/", json=body))

    def set_production_version(self, task_id: str, version: int) -> RemoteTask:
        """Make a trained version the one ``classify/`` uses (``PATCH task/`` with
        ``production_version``, as the SDK sends it). A version that does not exist or
        did not train is a `BadRequestError` naming ``production_version``."""
        body = {"production_version": version}
        return RemoteTask.from_api(self._request("PATCH", f"task/{task_id}/", json=body))

    def delete_task(self, task_id: str) -> bool:
        """True if deleted, False if it was already gone."""
        return self._delete(f"task/{task_id}/")

    def add_task_label(self, task_id: str, label_id: str) -> None:
        self._request("POST", f"task/{task_id}/add-label/", json={"label_id": label_id})

    def remove_task_label(self, task_id: str, label_id: str) -> None:
        self._request("POST", f"task/{task_id}/remove-label/", json={"label_id": label_id})
