"""Helpers for the training and classify tests: labelled tasks of separable images,
training to the end, classify calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from support.imagegen import brightness_image, class_image, tagged_image
from support.waiting import until

from .helpers import attach, b64, make_label, make_task, upload

SHAPES = ("circle", "square", "triangle")
TRAIN_TIMEOUT = 90.0


def multi_class_task(
    api: httpx.Client, per_label: int = 6, *, name: str = "shapes", test_marked: int = 0
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A multi_class task with a label per shape and `per_label` images each; the first
    `test_marked` images of "circle" are marked test_image."""
    task = make_task(api, name, "multi_class")
    labels = {}
    for shape in SHAPES:
        label = make_label(api, f"{name}-{shape}", "category", output_name=shape)
        assert api.post(f"task/{task['id']}/add-label/", json={"label_id": label["id"]}).is_success
        labels[shape] = label
        for i in range(per_label):
            marked = shape == "circle" and i < test_marked
            image = upload(api, class_image(shape, i), test_image=marked)
            attach(api, image["id"], label["id"])
    return task, labels


def multi_label_task(
    api: httpx.Client, per_combo: int = 5
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Tags "red" and "blue"; images with red, blue, both, and none (the negative)."""
    task = make_task(api, "colours", "multi_label")
    labels = {tag: make_label(api, tag, "tag") for tag in ("red", "blue")}
    for label in labels.values():
        assert api.post(f"task/{task['id']}/add-label/", json={"label_id": label["id"]}).is_success
    negative = next(
        x
        for x in api.get("label/", params={"task": task["id"]}).json()["results"]
        if x["negative_for_task"] == task["id"]
    )
    for combo in ({"red"}, {"blue"}, {"red", "blue"}, set()):
        for i in range(per_combo):
            image = upload(api, tagged_image(combo, i))
            for tag in combo or {"negative"}:
                attach(api, image["id"], (labels[tag] if combo else negative)["id"])
    labels["negative"] = negative
    return task, labels


def regression_task(api: httpx.Client, count: int = 12) -> tuple[dict[str, Any], dict[str, Any]]:
    task = make_task(api, "brightness", "regression")
    label = make_label(api, "brightness", "value")
    assert api.post(f"task/{task['id']}/add-label/", json={"label_id": label["id"]}).is_success
    for i in range(count):
        value = i / (count - 1)
        image = upload(api, brightness_image(value, i))
        attach(api, image["id"], label["id"], value=value)
    return task, label


def wait_until(
    check: Callable[[], Any], what: str, timeout: float = TRAIN_TIMEOUT, every: float = 0.1
) -> Any:
    """Poll `check` until it is truthy (tests/support/waiting.py's `until`, a training's limit)."""
    return until(check, timeout, what, step=every)


def finished_model(api: httpx.Client, model_id: str) -> dict[str, Any]:
    """Poll the model until it is TRAINED or ERROR; returns it."""

    def finished() -> dict[str, Any] | None:
        model = api.get(f"model/{model_id}/").json()
        return model if model["train_status"] in ("TRAINED", "ERROR") else None

    return wait_until(finished, f"model {model_id} to be TRAINED or ERROR")  # type: ignore[no-any-return]


def train(api: httpx.Client, task_id: str) -> dict[str, Any]:
    """POST train/ and wait for the model it queued to finish; returns that model."""
    r = api.post(f"task/{task_id}/train/")
    assert r.status_code == 200, r.text
    return finished_model(api, r.json()["model_id"])


def classify(api: httpx.Client, task_id: str, images: list[bytes], **extra: Any) -> dict[str, Any]:
    records = [{"_base64": b64(data), "_id": str(k)} for k, data in enumerate(images)]
    r = api.post("classify/", json={"task_id": task_id, "records": records, **extra})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]
