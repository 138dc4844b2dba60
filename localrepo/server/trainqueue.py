"""Queueing a training of a task: the checks the API's ``task/{id}/train/`` and the web's
Train button share (api/tasks.py, web/training.py), so both refuse the same things with
the same words, then the job queued (``data/training.queue_training``) and the worker
woken. Beside ``uploads.py``: a service both front ends call, below them.
"""

from __future__ import annotations

from .context import ServerContext
from .data import tasks, training
from .errors import bad_request, not_found
from .ml.heads import too_few_problems
from .ml.train import load_task_data


def queue_task_training(ctx: ServerContext, ws: str, task_id: str) -> dict[str, object]:
    """Queue a training of the workspace's task (404 when it is not there; 400 naming
    the labels with too few images); answers what ``train/`` answers."""
    if tasks.get_task(ctx.db, ws, task_id) is None:
        raise not_found("Task not found.")
    data = load_task_data(ctx.db, task_id)
    if data is None:
        raise not_found("Task not found.")
    problem = too_few_problems(
        data.type, data.labels, data.samples, ctx.settings.min_images_per_label
    )
    if problem:
        raise bad_request(problem)
    answer = training.queue_training(ctx.db, task_id)
    ctx.ml.on_queued()
    return answer
