"""Training over real HTTP: queueing, job states, versions, metrics, the embedding cache,
too-few-images errors, and a restart in the middle of a training.

The session server runs with the default backend: the pretrained EfficientNet-Lite0
when the ml extra is installed (it is in CI: make installs '.[dev,ml]').
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
from support.imagegen import brightness_image, class_image, tagged_image

from localrepo.server.data.tables import SCHEMA_VERSION

from .helpers import attach, make_label, make_task, upload
from .trainhelp import (
    SHAPES,
    classify,
    finished_model,
    multi_class_task,
    multi_label_task,
    regression_task,
    train,
    wait_until,
)


def test_multi_class_trains_with_the_pretrained_backend_and_versions(api: httpx.Client) -> None:
    # 8 per label: measured 0 misclassified of 600 over random splits (6: 13 of 600).
    task, labels = multi_class_task(api, per_label=8, test_marked=3)
    r = api.post(f"task/{task['id']}/train/")
    assert r.status_code == 200, r.text
    queued = r.json()
    assert queued["version"] == 1 and queued["queued"] is True
    # Queued, training, or (features cached by an earlier test of the same images, on a
    # quick worker) already done; never the status of no training.
    status = api.get(f"task/{task['id']}/").json()["last_train_status"]
    assert status in ("WAITING", "IN_TRAINING", "TRAINED"), status
    # A second request while the first still waits adds nothing; once the first has
    # started, it queues the next version (which then becomes production: the model
    # checked below is the newest one either way).
    again = api.post(f"task/{task['id']}/train/").json()
    if again["queued"] is False:
        assert again["model_id"] == queued["model_id"]
        newest = queued["model_id"]
    else:
        assert again["version"] == 2 and again["model_id"] != queued["model_id"]
        assert finished_model(api, queued["model_id"])["train_status"] == "TRAINED"
        newest = again["model_id"]

    model = finished_model(api, newest)
    assert model["train_status"] == "TRAINED", model
    assert model["backend"] == "efficientnet-lite0"
    metrics = model["metrics"]
    assert metrics["backend"] == "efficientnet-lite0"
    # 8 per label: two test images each by the 20% rule, but circle has 3 marked test.
    assert metrics["test_images"] == 7 and metrics["train_images"] == 17
    matrix = metrics["confusion_matrix"]
    assert sorted(matrix["labels"]) == sorted(SHAPES)
    assert sum(map(sum, matrix["matrix"])) == 7
    assert model["accuracy"] == metrics["accuracy"] == 1.0
    assert {p["name"] for p in metrics["per_label"]} == set(SHAPES)
    assert model["precision"] == 1.0 and model["recall"] == 1.0

    task_now = api.get(f"task/{task['id']}/").json()
    assert task_now["production_version"] == model["version"]
    assert task_now["last_train_status"] in ("TRAINED", "WAITING")
    assert task_now["accuracy"] == 1.0

    answer = classify(api, task["id"], [class_image(s, 100 + k) for k, s in enumerate(SHAPES)])
    assert answer["version"] == model["version"]
    assert "efficientnet-lite0" in answer["model_format"]
    assert answer["status"]["code"] == 200 and "processing time" in answer["statistics"]
    for k, (shape, record) in enumerate(zip(SHAPES, answer["records"], strict=True)):
        assert record["_id"] == str(k) and "_base64" not in record
        assert record["_status"] == {"code": 200, "text": "OK"}
        assert (record["_width"], record["_height"]) == (48, 48)
        assert record["best_label"]["name"] == shape  # the output_name
        assert record["best_label"]["id"] == labels[shape]["id"]
        probs = [x["prob"] for x in record["labels"]]
        assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-3

    # Retrain: a new version becomes production; features come from the cache.
    second = train(api, task["id"])
    assert second["train_status"] == "TRAINED" and second["version"] > model["version"]
    assert second["metrics"]["embeddings_computed"] == 0
    assert second["metrics"]["embeddings_cached"] == 24
    # Same data, same split.
    assert second["metrics"]["confusion_matrix"] == metrics["confusion_matrix"]
    # The version in production when it started, scored on the new version's test part.
    assert second["metrics"]["baseline"] == {
        "version": model["version"],
        "accuracy": 1.0,
        "precision": 1.0,
        "recall": 1.0,
        "test_images": 7,
    }
    if model["version"] == 1:
        assert "baseline" not in metrics  # nothing was in production before version 1
    assert api.get(f"task/{task['id']}/").json()["production_version"] == second["version"]
    models = api.get("model/", params={"task": task["id"]}).json()["results"]
    assert [m["version"] for m in models if m["train_status"] == "TRAINED"][-2:] == [
        model["version"],
        second["version"],
    ]

    old = classify(api, task["id"], [class_image("square", 200)], version=model["version"])
    assert old["version"] == model["version"]
    assert old["records"][0]["best_label"]["name"] == "square"

    # A rollback, as the SDK sends it (PATCH task/): the older version is production
    # again and classify/ answers with it; a version that does not exist is a 400 that
    # changes nothing; then forward again.
    r = api.patch(f"task/{task['id']}/", json={"production_version": model["version"]})
    assert r.status_code == 200 and r.json()["production_version"] == model["version"], r.text
    assert classify(api, task["id"], [class_image("square", 201)])["version"] == model["version"]
    for wrong in (second["version"] + 100, 0, "two"):
        r = api.patch(f"task/{task['id']}/", json={"production_version": wrong})
        assert r.status_code == 400 and "production_version" in r.json(), r.text
    assert api.get(f"task/{task['id']}/").json()["production_version"] == model["version"]
    r = api.put(
        f"task/{task['id']}/", json={"name": task["name"], "production_version": second["version"]}
    )
    assert r.status_code == 200 and r.json()["production_version"] == second["version"], r.text

    # The production version cannot be deleted; an older one can, and is then gone.
    assert api.delete(f"model/{second['id']}/").status_code == 400
    assert api.delete(f"model/{model['id']}/").status_code == 204
    r = api.post(
        "classify/",
        json={"task_id": task["id"], "version": model["version"], "records": [{"_url": "x"}]},
    )
    assert r.status_code == 400 and "version" in r.json()
    assert str(second["version"]) in r.json()["version"][0]


def test_too_few_images_answers_400_naming_the_labels(api: httpx.Client) -> None:
    task = make_task(api, "few")
    rich, poor = make_label(api, "rich"), make_label(api, "poor-label")
    for label in (rich, poor):
        api.post(f"task/{task['id']}/add-label/", json={"label_id": label["id"]})
    for i in range(6):
        attach(api, upload(api, class_image("circle", 300 + i))["id"], rich["id"])
    attach(api, upload(api, class_image("square", 300))["id"], poor["id"])
    r = api.post(f"task/{task['id']}/train/")
    assert r.status_code == 400
    message = r.json()["detail"]
    assert "'poor-label' (1)" in message and "rich" not in message and "at least 5" in message
    assert api.get(f"task/{task['id']}/").json()["last_train_status"] is None
    assert api.get("model/", params={"task": task["id"]}).json()["count"] == 0

    lonely = make_task(api, "lonely")
    r = api.post(f"task/{lonely['id']}/train/")
    assert r.status_code == 400 and "two category labels" in r.json()["detail"]
    missing = "00000000-0000-4000-8000-000000000000"
    assert api.post(f"task/{missing}/train/").status_code == 404


def test_multi_label_per_tag_classifiers(api: httpx.Client) -> None:
    task, _ = multi_label_task(api, per_combo=8)  # 5 per combination: 1 split in 30 erred
    model = train(api, task["id"])
    assert model["train_status"] == "TRAINED", model
    metrics = model["metrics"]
    assert metrics["threshold"] == 0.5
    assert {p["name"] for p in metrics["per_label"]} == {"red", "blue"}  # not the negative
    assert metrics["test_images"] == 8  # two of each tag combination
    images = [
        tagged_image({"red"}, 50),
        tagged_image({"blue"}, 50),
        tagged_image({"red", "blue"}, 50),
        tagged_image(set(), 50),
    ]
    answer = classify(api, task["id"], images)
    got = [{x["name"] for x in r["best_labels"]} for r in answer["records"]]
    assert got == [{"red"}, {"blue"}, {"red", "blue"}, set()]
    for record in answer["records"]:
        assert record["best_label"] == record["labels"][0]
        assert all(0 <= x["prob"] <= 1 for x in record["labels"])
        assert {x["name"] for x in record["labels"]} == {"red", "blue"}


def test_regression_predicts_values(api: httpx.Client) -> None:
    task, label = regression_task(api, count=12)
    model = train(api, task["id"])
    assert model["train_status"] == "TRAINED", model
    metrics = model["metrics"]
    assert {"mae", "rmse", "r2"} <= set(metrics)
    assert metrics["per_label"][0]["name"] == "brightness"
    assert model["accuracy"] is None
    answer = classify(api, task["id"], [brightness_image(v, 99) for v in (0.1, 0.5, 0.9)])
    values = [r["best_label"]["value"] for r in answer["records"]]
    assert values == sorted(values)  # brighter -> larger
    assert values[0] < 0.5 < values[2]
    for record in answer["records"]:
        assert record["labels"][0]["id"] == label["id"] and "prob" not in record["labels"][0]


def children(pid: int | None) -> list[int]:
    """The processes that `pid` started (from any of its threads)."""
    threads = Path(f"/proc/{pid}/task").iterdir()
    return [int(c) for t in threads for c in (t / "children").read_text().split()]


def test_a_restart_requeues_an_interrupted_training_and_a_dead_worker_restarts(
    server_factory,
) -> None:
    # Fault injection: the training sits IN_TRAINING for a minute, and is killed there.
    server = server_factory(
        "--backend", "handcrafted", "--min-images-per-label", "3", "--train-delay", "60"
    )
    assert children(server.pid) == []  # no worker process until there is work
    api = server.client()
    task, _ = multi_class_task(api, per_label=4)
    queued = api.post(f"task/{task['id']}/train/").json()
    wait_until(
        lambda: api.get(f"model/{queued['model_id']}/").json()["train_status"] == "IN_TRAINING",
        "the training to be IN_TRAINING",
    )
    assert api.get(f"task/{task['id']}/").json()["last_train_status"] == "IN_TRAINING"
    assert api.delete(f"model/{queued['model_id']}/").status_code == 400  # still training
    server.stop(kill=True)  # the worker dies with it, mid-training
    server.extra_args = server.extra_args[:-2]  # no delay from now on
    server.start()
    api = server.client()
    model = finished_model(api, queued["model_id"])
    assert model["train_status"] == "TRAINED", model
    assert model["version"] == 1
    assert api.get(f"task/{task['id']}/").json()["production_version"] == 1
    assert "requeued 1 interrupted training" in server.log_text()

    # A worker that dies (the server lives on) is restarted, and trains.
    [worker] = children(server.pid)
    os.kill(worker, signal.SIGKILL)
    again = train(api, task["id"])
    assert again["train_status"] == "TRAINED" and again["version"] == 2, again
    assert "training worker exited with -9; restarting it" in server.log_text()

    # Deleting an image drops its cached features with its bytes.
    from sqlalchemy import create_engine, text

    engine = create_engine(server.database_url)
    with engine.connect() as conn:
        cached = conn.execute(text("SELECT count(*) FROM embeddings")).scalar_one()
    first = api.get("training-image/", params={"page_size": 1}).json()["results"][0]
    assert api.delete(f"training-image/{first['id']}/").status_code == 204
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM embeddings")).scalar_one() == cached - 1
    engine.dispose()


def test_a_version_1_database_is_upgraded_on_start(tmp_path) -> None:
    from sqlalchemy import text

    from localrepo.server.data.db import Database

    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    db.create_all()
    with db.write() as session:  # the schema as session 1 left it
        session.execute(text("DROP TABLE model_heads"))
        session.execute(text("DROP TABLE embeddings"))
        session.execute(text("ALTER TABLE models DROP COLUMN backend"))
        session.execute(text("DROP INDEX ix_image_labels_image_created"))
        session.execute(text("DROP TABLE web_sessions"))
        session.execute(text("ALTER TABLE users DROP COLUMN password_hash"))
        session.execute(text("DROP TABLE image_events"))
        session.execute(text("ALTER TABLE training_jobs DROP COLUMN progress"))
        session.execute(text("ALTER TABLE training_jobs DROP COLUMN stage"))
        session.execute(text("UPDATE schema_info SET value = '1' WHERE key = 'schema_version'"))
    db.dispose()
    db = Database(url)
    db.create_all()
    with db.read() as session:
        conn = session.connection()
        columns = {r[1] for r in conn.execute(text("PRAGMA table_info(models)"))}
        user_columns = {r[1] for r in conn.execute(text("PRAGMA table_info(users)"))}
        job_columns = {r[1] for r in conn.execute(text("PRAGMA table_info(training_jobs)"))}
        tables = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master"))}
        version = conn.execute(
            text("SELECT value FROM schema_info WHERE key = 'schema_version'")
        ).scalar_one()
    db.dispose()
    assert "backend" in columns and {"model_heads", "embeddings"} <= tables
    assert "ix_image_labels_image_created" in tables  # (sqlite_master lists indexes too)
    assert {"image_docs", "image_doc_insert"} <= tables  # (and triggers)
    assert "password_hash" in user_columns and "web_sessions" in tables  # version 4
    assert {"progress", "stage"} <= job_columns and "image_events" in tables  # version 5
    assert version == str(SCHEMA_VERSION)


def test_a_version_that_has_not_trained_cannot_be_production(server_factory) -> None:
    # No worker: the queued version stays WAITING for as long as the test needs.
    server = server_factory("--no-worker")
    with server.new_account().client() as api:
        task, _labels = multi_class_task(api, per_label=6)
        queued = api.post(f"task/{task['id']}/train/").json()
        r = api.patch(f"task/{task['id']}/", json={"production_version": queued["version"]})
        assert r.status_code == 400, r.text
        assert "has not trained (trained versions: none)" in r.json()["production_version"][0]
        assert api.get(f"task/{task['id']}/").json()["production_version"] is None
