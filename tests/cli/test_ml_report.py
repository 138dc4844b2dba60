"""The pure core of `repo train/models/classify/evaluate` (localrepo/cli/ml_report.py)."""

from __future__ import annotations

import pytest

from localrepo.cli import ml_report as mr
from localrepo.errors import EXIT_DECISION, EXIT_USAGE, LocalrepoError
from localrepo.remote.models import ClassifiedRecord, ClassifyResult, RemoteModel

TASKS = [
    mr.TaskRow(1, "animals", "multi_class", "", "r1"),
    mr.TaskRow(2, "sizes", "regression", "sizes", None),
    mr.TaskRow(3, "deep", "multi_label", "sizes/deep", "r3"),
]


def test_choose_task_by_name_only_task_and_working_folder() -> None:
    assert mr.choose_task(TASKS, "sizes", None).id == 2
    assert mr.choose_task(TASKS[:1], None, None).id == 1
    assert mr.choose_task(TASKS, None, "sizes/deep/x").id == 3  # the deepest root wins
    assert mr.choose_task(TASKS, None, "sizes").id == 2
    assert mr.choose_task(TASKS, None, "other").id == 1  # the root task holds everything
    with pytest.raises(LocalrepoError, match=r"no task 'nope'.*animals, deep, sizes") as err:
        mr.choose_task(TASKS, "nope", "")
    assert err.value.exit_code == EXIT_USAGE
    with pytest.raises(LocalrepoError, match=r"did you mean 'sizes'\?") as err:
        mr.choose_task(TASKS, "sizse", "")
    assert err.value.exit_code == EXIT_USAGE
    with pytest.raises(LocalrepoError, match=r"several tasks.*--task NAME") as err:
        mr.choose_task(TASKS[1:], None, None)
    assert err.value.exit_code == EXIT_USAGE


def test_unsynced_message_names_pending_changes_and_conflicts() -> None:
    task = TASKS[0]
    assert mr.unsynced_message(task, {}, 0) is None
    text = mr.unsynced_message(task, {"added": 2, "moved": 1}, 1)
    assert text is not None
    assert "3 local changes not synced yet (2 added, 1 moved)" in text
    assert "1 open conflict" in text and "repo sync" in text and "--force" in text
    never = mr.unsynced_message(TASKS[1], {}, 0)
    assert never is not None and "never synced" in never
    assert mr.not_synced_error(text).exit_code == EXIT_DECISION


def test_batches_keep_order_and_size() -> None:
    assert mr.batches(list(range(23)), 10) == [
        list(range(10)),
        list(range(10, 20)),
        [20, 21, 22],
    ]
    assert mr.batches([], 10) == []


def test_metrics_lines_read_several_confusion_shapes() -> None:
    nested = {"cat": {"cat": 4, "dog": 1}, "dog": {"dog": 5}}
    lines = mr.metrics_lines({"accuracy": 0.9, "confusion_matrix": nested}, {})
    rows = [line.split() for line in lines]
    assert ["accuracy", "0.900"] in rows
    assert ["cat", "dog"] in rows  # the header of the matrix
    assert ["cat", "4", "1"] in rows and ["dog", "0", "5"] in rows
    listed = mr.metrics_lines(
        {
            "labels": ["x", "y"],
            "confusion_matrix": [[3, 0], [1, 2]],
            "per_label": {
                "x": {"precision": 0.75, "recall": 1.0, "support": 3},
                "y": {"precision": 1.0, "recall": 0.5, "support": 3},
            },
        },
        {"accuracy": 5 / 6},
    )
    rows = [line.split() for line in listed]
    assert ["accuracy", "0.833"] in rows
    assert ["label", "precision", "recall", "support"] in rows
    assert ["x", "0.750", "1.000", "3"] in rows
    assert ["x", "3", "0"] in rows and ["y", "1", "2"] in rows


def test_model_rows_mark_production_and_show_scores() -> None:
    model = RemoteModel.from_api(
        {
            "id": "m2",
            "version": 2,
            "train_status": "TRAINED",
            "created": "2026-11-27T14:00:00+00:00",
            "accuracy": 0.8,
            "metrics": {"backend": "efficientnet-lite0", "mae": 1.5},
        }
    )
    assert model.backend == "efficientnet-lite0"
    row = mr.model_row(model, 2, "multi_class")
    # No image counts from this server: "-".
    assert row[:5] == ["*2", "TRAINED", "2026-11-27 14:00:00", "-", "efficientnet-lite0"]
    assert row[5] == "0.800"
    assert mr.model_row(model, 3, "regression")[0] == "2"
    assert mr.model_row(model, 3, "regression")[5] == "1.500"
    assert mr.model_json(model, 2)["production"] is True
    counted = RemoteModel.from_api(
        {"id": "m3", "version": 3, "metrics": {"train_images": 29, "test_images": 7}}
    )
    assert mr.model_row(counted, 2, "multi_class")[3] == "36"
    assert mr.model_json(counted, 2)["images"] == 36


def test_prediction_text_and_json() -> None:
    result = ClassifyResult.from_api(
        {
            "version": 4,
            "records": [
                {
                    "_status": {"code": 200, "text": "OK"},
                    "best_label": {"name": "dog", "prob": 0.9},
                    "labels": [
                        {"name": "cat", "prob": 0.02},
                        {"name": "dog", "prob": 0.9},
                        {"name": "fox", "prob": 0.08},
                    ],
                },
                {"_status": {"code": 400, "text": "cannot decode the image"}},
                {"labels": [{"name": "weight", "value": 12.345678}]},
            ],
        }
    )
    good, bad, reg = result.records
    assert mr.prediction_text(good, "multi_class", 2) == "dog (0.90), fox (0.08)"
    assert not bad.ok and bad.error == "400 cannot decode the image"
    assert mr.prediction_text(reg, "regression", 1) == "weight=12.35"
    data = mr.prediction_json("a.jpg", good, "multi_label", 1, 4)
    assert data["labels"] == [{"name": "dog", "prob": 0.9}]
    assert data["best_labels"] == [{"name": "dog", "prob": 0.9}]  # prob >= 0.5
    assert data["version"] == 4 and data["ok"] is True
    assert isinstance(ClassifiedRecord.from_api(None), ClassifiedRecord)
