"""Endpoints: models (list, get, delete, a task's versions), starting a training (a
lost answer settled by the task's status) and waiting for it to end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from localrepo.errors import LocalrepoError

from .models import TRAIN_FINISHED, TRAINING, RemoteModel, RemoteTask
from .pagination import Pager

_TRAINING_STATES = set(TRAINING)


class TrainingEndpoints(Pager):
    if TYPE_CHECKING:  # from TaskEndpoints, next to this in RecognitionClient

        def get_task(self, task_id: str) -> RemoteTask: ...

    def iter_models(
        self, *, task: str | None = None, page_size: int | None = None
    ) -> Iterator[RemoteModel]:
        for item in self._items("model/", {"task": task, "page_size": page_size}):
            yield RemoteModel.from_api(item)

    def list_models(self, *, task: str | None = None) -> list[RemoteModel]:
        return list(self.iter_models(task=task))

    def get_model(self, model_id: str) -> RemoteModel:
        return RemoteModel.from_api(self._request("GET", f"model/{model_id}/"))

    def delete_model(self, model_id: str) -> bool:
        """True if deleted, False if it was already gone."""
        return self._delete(f"model/{model_id}/")

    def task_models(self, task_id: str) -> list[RemoteModel]:
        """The task's models (its trained versions, failed ones included), oldest
        version first."""
        models = self.list_models(task=task_id)
        return sorted(models, key=lambda m: (m.version is None, m.version or 0, m.created or ""))

    def train_task(self, task_id: str) -> dict[str, Any]:
        """Queue a training. A lost answer is resolved by reading the task's status."""

        def probe() -> dict[str, Any] | None:
            task = self.get_task(task_id)
            if task.last_train_status in _TRAINING_STATES:
                return {"detail": f"Training is {task.last_train_status}."}
            return None

        path = f"task/{task_id}/train/"
        result = self._call("POST", path, json=self._body({}), idempotent=False, probe=probe)
        if isinstance(result, httpx.Response):
            result = self._parse(result, self._op("POST", path))
        return dict(result) if isinstance(result, Mapping) else {}

    def wait_for_training(
        self,
        task_id: str,
        before: RemoteTask,
        known_models: Iterable[str] = (),
        *,
        timeout: float | None = None,
        on_status: Callable[[str | None, float], None] | None = None,
        interval: float = 0.5,
        max_interval: float = 2.0,
        grace: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> tuple[RemoteTask, RemoteModel | None]:
        """Poll after ``train/`` until that training ended (``TRAINED`` or ``ERROR``);
        returns the task and the model that training made (None when the server shows
        none). `before` is the task as read before ``train/``, and `known_models` the ids
        of its models then.

        A server that makes the model when it queues the job (localrepo-server does)
        shows a model that is not in `known_models`: its own status is followed, so a
        training queued earlier that ends first is not taken for this one. Otherwise
        the task's status is followed, and a finished status counts only once something
        moved (the job was seen running, the production version or the status changed,
        or a finished new model appeared), or after `grace` seconds of no change.
        `on_status(status, elapsed)` is called after every poll. Past `timeout` seconds
        raises `TrainingTimeout` (the server keeps training)."""
        known = set(known_models)
        start = clock()
        seen_running = False
        wait_s = interval
        while True:
            task = self.get_task(task_id)
            new = [m for m in self.task_models(task_id) if m.id not in known]
            elapsed = clock() - start
            ours = new[-1] if new and new[-1].train_status else None
            status = ours.train_status if ours is not None else task.last_train_status
            if on_status is not None:
                on_status(status, elapsed)
            if ours is not None:
                if ours.train_status in TRAIN_FINISHED:
                    return self.get_task(task_id), ours
            elif status in _TRAINING_STATES:
                seen_running = True
            elif status in TRAIN_FINISHED:
                moved = (
                    seen_running
                    or task.production_version != before.production_version
                    or status != before.last_train_status
                )
                if moved or elapsed >= grace:
                    return task, self._trained_model(task)
            if timeout is not None and elapsed >= timeout:
                raise TrainingTimeout(
                    f"the training is still {status or 'queued'} after {elapsed:.0f} s; "
                    "the server keeps training: see 'repo models' later.",
                    status=status,
                )
            sleep(wait_s)
            wait_s = min(max_interval, wait_s * 1.5)

    def _trained_model(self, task: RemoteTask) -> RemoteModel | None:
        """The production model of a task whose training succeeded."""
        if task.last_train_status == "TRAINED" and task.production_version is not None:
            for model in reversed(self.task_models(task.id)):
                if model.version == task.production_version:
                    return model
        return None


class TrainingTimeout(LocalrepoError):
    """`wait_for_training` gave up waiting; the server may still finish the job."""

    def __init__(self, message: str, *, status: str | None) -> None:
        super().__init__(message)
        self.status = status
