"""web/trainview.py (pure): the training status of the newest version, the versions
table and the roll back target, from model rows as the API lists them."""

from __future__ import annotations

from typing import Any

from localrepo.server.web.trainview import job_status, rollback_target, version_rows


def model(version: int, status: str = "TRAINED", **extra: Any) -> dict[str, Any]:
    return {
        "version": version,
        "train_status": status,
        "created": f"2026-12-0{version}T10:00:00Z",
        "accuracy": extra.pop("accuracy", None),
        "detail": extra.pop("detail", None),
        "metrics": extra.pop("metrics", {}),
    }


def test_the_status_follows_the_newest_version() -> None:
    assert job_status([]).state == "none" and not job_status([]).active
    assert job_status([model(1), model(2, "WAITING")]).state == "waiting"
    assert job_status([model(2, "IN_TRAINING"), model(1)]).active
    trained = job_status([model(1, "ERROR"), model(2, accuracy=0.875)])
    assert (trained.state, trained.active) == ("trained", False)
    assert trained.text == "Trained: version 2, accuracy 0.875 on its test images."
    regression = job_status([model(1, metrics={"mae": 0.0123})])
    assert regression.text == "Trained: version 1, MAE 0.012 on its test images."
    failed = job_status([model(1), model(2, "ERROR", detail="label 'a' has 1 image")])
    assert failed.state == "failed" and "label 'a' has 1 image" in failed.text


def test_versions_newest_first_with_images_metrics_and_who_can_be_promoted() -> None:
    metrics = {"accuracy": 0.9, "precision": 0.8, "recall": None, "train_images": 8}
    rows = version_rows(
        [
            model(1, metrics={**metrics, "test_images": 4}),
            model(2, metrics=metrics),  # no test count: images unknown
            model(3, "WAITING"),
        ],
        production=1,
    )
    assert [r.version for r in rows] == [3, 2, 1]
    assert [r.images for r in rows] == [None, None, 12]
    assert rows[2].metrics == (("Accuracy", "0.900"), ("Precision", "0.800"))
    assert [r.production for r in rows] == [False, False, True]
    assert [r.can_promote for r in rows] == [False, True, False]


def test_roll_back_goes_to_the_newest_trained_version_older_than_production() -> None:
    models = [model(1), model(2, "ERROR"), model(3), model(4)]
    assert rollback_target(models, 4) == 3
    assert rollback_target(models, 3) == 1  # version 2 never trained
    assert rollback_target(models, 1) is None
    assert rollback_target(models, None) is None
