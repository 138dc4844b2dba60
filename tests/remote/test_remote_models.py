"""Lenient parsing of the API's objects: missing, extra and odd fields never crash."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from localrepo.remote.client import duplicate_image_id
from localrepo.remote.models import (
    RemoteImage,
    RemoteImageLabel,
    RemoteLabel,
    RemoteModel,
    RemoteTask,
    Workspace,
    number,
)

UUID = "0b9f7c3e-4a5d-4e6f-8a7b-9c0d1e2f3a4b"


def test_missing_fields_get_neutral_defaults() -> None:
    task = RemoteTask.from_api({"id": "t"})
    assert task == RemoteTask("t", "", "multi_class", "", None, None, None, ())
    label = RemoteLabel.from_api({})
    assert (label.type, label.output_name, label.images_count) == ("category", None, None)
    image = RemoteImage.from_api({"id": "i"})
    assert (image.img_path, image.meta_data, image.test_image, image.labels) == ("", {}, False, ())
    model = RemoteModel.from_api({"id": "m"})
    assert (model.version, model.metrics, model.accuracy) == (None, {}, None)
    assert Workspace.from_api(None) == Workspace("", "", False)


def test_extra_fields_are_kept_in_raw() -> None:
    data = {"id": "t", "name": "n", "type": "regression", "labels": ["a", {"id": "b"}], "x": 1}
    task = RemoteTask.from_api(data)
    assert task.labels == ("a", "b") and task.raw == data
    assert "raw" not in repr(task)


def test_image_fields_and_value_labels() -> None:
    image = RemoteImage.from_api(
        {
            "id": "i",
            "img_path": "http://h/media/x.jpg",
            "img_width": 640,
            "img_height": "480",
            "meta_data": '{"a": 1}',
            "test_image": "True",
            "labels": [
                {"id": "l1", "name": "dog", "type": "category"},
                {"id": "l2", "name": "h", "type": "value", "value": 2},
                {"id": "l3", "name": "w", "type": "value", "value": "NaN"},
                {"id": "l4", "name": "d", "type": "value", "value": "0.50"},
                "junk",
            ],
        }
    )
    assert (image.width, image.height, image.meta_data, image.test_image) == (
        640,
        480,
        {"a": 1},
        True,
    )
    values = {lb.id: (lb.value, lb.value_invalid) for lb in image.labels}
    assert values == {
        "l1": (None, False),
        "l2": (2.0, False),
        "l3": (None, True),
        "l4": (0.5, False),
    }


def test_number() -> None:
    assert number(1) == 1.0 and number("2.5") == 2.5 and number(-0.0) == 0.0
    for bad in (None, True, float("nan"), float("inf"), "-inf", "abc", [], {}):
        assert number(bad) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "id",
                "name",
                "type",
                "description",
                "workspace",
                "production_version",
                "last_train_status",
                "labels",
                "img_path",
                "img_width",
                "img_height",
                "meta_data",
                "test_image",
                "value",
                "output_name",
                "negative_for_task",
                "images_count",
                "task",
                "version",
                "accuracy",
                "metrics",
                "created",
                "is_default",
                "thumb_img_path",
            ]
        ),
        json_values,
    ),
    json_values,
)
def test_any_json_parses(data: dict[str, Any], other: Any) -> None:
    for cls in (RemoteTask, RemoteLabel, RemoteImage, RemoteImageLabel, RemoteModel, Workspace):
        for value in (data, other):
            parsed = cls.from_api(value)
            assert isinstance(parsed.id, str)
    value = RemoteImageLabel.from_api(data).value
    assert value is None or math.isfinite(value)


def test_duplicate_answer_id() -> None:
    detail = f"Image already exists in workspace with image ID '{UUID}'."
    assert duplicate_image_id({"detail": detail}) == UUID
    assert duplicate_image_id([detail]) == UUID
    assert duplicate_image_id({"non_field_errors": [detail.upper()]}) == UUID
    assert duplicate_image_id({"detail": "Upload a valid image."}) is None
    assert duplicate_image_id({"detail": f"Label '{UUID}' does not exist."}) is None
    assert duplicate_image_id(None) is None
