"""Endpoints: labels (list, find and create by exact NFC name and type with a probe,
the per-task adoption rule of `ensure_task_label`, update, delete)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from localrepo.vocabulary import CATEGORY

from .answers import created_key, nfc, pick_one
from .models import RemoteLabel
from .pagination import Pager


class LabelEndpoints(Pager):
    def iter_labels(
        self,
        *,
        task: str | None = None,
        search: str | None = None,
        type: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[RemoteLabel]:
        params = {"task": task, "search": search, "type": type, "page_size": page_size}
        for item in self._items("label/", params):
            yield RemoteLabel.from_api(item)

    def list_labels(
        self,
        *,
        task: str | None = None,
        search: str | None = None,
        type: str | None = None,
        page_size: int | None = None,
    ) -> list[RemoteLabel]:
        return list(self.iter_labels(task=task, search=search, type=type, page_size=page_size))

    def get_label(self, label_id: str) -> RemoteLabel:
        return RemoteLabel.from_api(self._request("GET", f"label/{label_id}/"))

    def _label_matches(self, name: str, type: str) -> list[RemoteLabel]:
        wanted = nfc(name)
        found = [
            label
            for label in self.iter_labels(search=wanted, type=type)
            if nfc(label.name) == wanted and label.type == type
        ]
        if not found and not wanted.isascii():
            # The server's substring search may not normalise; scan the type's labels.
            found = [
                label
                for label in self.iter_labels(type=type)
                if nfc(label.name) == wanted and label.type == type
            ]
        return found

    def find_label(self, name: str, type: str) -> RemoteLabel | None:
        """The label of exactly this name (case-sensitive, compared in NFC) and type; the
        oldest if there are twins."""
        return pick_one(self._label_matches(name, type), newest=False)

    def create_label(
        self,
        name: str,
        type: str = CATEGORY,
        *,
        description: str = "",
        output_name: str | None = None,
    ) -> RemoteLabel:
        """Create a label. A lost answer is resolved by looking for an exact name+type
        match (and adopting it) before creating again: no twins."""
        name = nfc(name)

        def probe() -> dict[str, Any] | None:
            found = pick_one(self._label_matches(name, type), newest=True)
            return found.raw if found else None

        body: dict[str, Any] = {"name": name, "type": type, "description": description}
        if output_name is not None:
            body["output_name"] = output_name
        return RemoteLabel.from_api(self._post_created("label/", body, probe))

    def ensure_label(
        self,
        name: str,
        type: str = CATEGORY,
        *,
        description: str = "",
        output_name: str | None = None,
    ) -> RemoteLabel:
        """Adopt the label of exactly this name (NFC, case-sensitive) and type, or create
        it."""
        found = self.find_label(name, type)
        if found is not None:
            return found
        return self.create_label(name, type, description=description, output_name=output_name)

    def ensure_task_label(
        self, task_id: str, name: str, type: str = CATEGORY, *, share: bool = False
    ) -> RemoteLabel:
        """The label `name` (NFC, case-sensitive) of `type` for the task `task_id`, not
        attached yet: one of that name attached to no task (say, created by a run that
        crashed before attaching it), or a new one. A label attached to another task is
        never adopted (each task's images stay its own; docs/sync.md, "Tasks sharing a
        workspace") unless `share` says so; one whose task count the server does not
        give is not adopted either."""
        matches = sorted(self._label_matches(name, type), key=created_key)
        attached = {lab.id for lab in self.iter_labels(task=task_id, type=type)}
        for pick in (
            [lab for lab in matches if lab.id in attached],
            [lab for lab in matches if lab.tasks_count == 0],
            matches if share else [],
        ):
            if pick:
                return pick[0]
        wanted = nfc(name)

        def probe() -> dict[str, Any] | None:  # a lost answer: adopt what it made
            free = [
                lab
                for lab in self._label_matches(wanted, type)
                if lab.tasks_count == 0 or lab.id in attached
            ]
            found = pick_one(free, newest=True)
            return found.raw if found else None

        body: dict[str, Any] = {"name": wanted, "type": type, "description": ""}
        return RemoteLabel.from_api(self._post_created("label/", body, probe))

    def update_label(
        self,
        label_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        output_name: str | None = None,
    ) -> RemoteLabel:
        body = {
            k: v
            for k, v in (
                ("name", nfc(name) if name is not None else None),
                ("description", description),
                ("output_name", output_name),
            )
            if v is not None
        }
        return RemoteLabel.from_api(self._request("PATCH", f"label/{label_id}/", json=body))

    def delete_label(self, label_id: str) -> bool:
        """True if deleted, False if it was already gone."""
        return self._delete(f"label/{label_id}/")
