"""A training's live progress (data/training.py ``heartbeat``/``progress_of``, the
worker's reports, the training page's <progress>): the data layer on its own, then a
server whose worker waits after each step (``--train-step-delay``, fault injection) so
the status fragment is seen mid-training with a progress strictly between 0 and 1, over
HTTP and in Chromium, until "Trained". Also the page's ``?done=`` notice: only the
server's own fixed messages are shown, never a text from the link."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from support.waiting import until

from localrepo.server.data import accounts, tasks, training
from localrepo.server.data.db import Database
from localrepo.server.web.trainview import job_status

from .test_training import MIN_IMAGES, SERVER_ARGS, TRAIN_LIMIT, shapes_task
from .webhelp import WebUser, new_web_user, signed_in_client

STEP_DELAY = 1.5  # each progress step waits this long: the tests see it mid-way
PROGRESS = re.compile(r'<progress id="train-progress"[^>]*value="([0-9.]+)"')


@pytest.fixture(scope="module")
def slow_server(live_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    args = [*SERVER_ARGS, "--train-step-delay", str(STEP_DELAY)]
    server = type(live_server)(tmp_path_factory.mktemp("web-progress") / "data", args)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def user(slow_server: Any) -> WebUser:
    return new_web_user(slow_server)


def test_heartbeat_records_progress_and_the_finish_makes_it_whole(tmp_path: Any) -> None:
    db = Database(f"sqlite:///{tmp_path / 'progress.db'}")
    try:
        db.create_all()
        accounts.create_user(db, "ann")
        ws = accounts.list_workspaces(db, "ann")[0].id
        task = tasks.create_task(db, ws, "shapes", "multi_class", "")
        queued = training.queue_training(db, task["id"])
        assert training.progress_of(db, str(queued["model_id"])) == training.Progress(None, "")
        job = training.claim_next(db, "test-worker")
        assert job is not None
        started = training.progress_of(db, job.model_id)
        assert started == training.Progress(0.0, "reading the task's images")
        training.heartbeat(db, job, 0.4, "computing image features: 32 of 80")
        assert training.progress_of(db, job.model_id) == training.Progress(
            0.4, "computing image features: 32 of 80"
        )
        training.heartbeat(db, job)  # a bare heartbeat keeps the figure
        assert training.progress_of(db, job.model_id) == training.Progress(
            0.4, "computing image features: 32 of 80"
        )
        training.heartbeat(db, job, 7.0, "x" * 300)  # clamped, cut to the column
        clamped = training.progress_of(db, job.model_id)
        assert clamped is not None and clamped.progress == 1.0 and len(clamped.stage) == 200
        training.finish_trained(
            db, job, "test-worker", backend="handcrafted", head=b"h", metrics={"accuracy": 1.0}
        )
        assert training.progress_of(db, job.model_id) == training.Progress(1.0, "trained")
        assert training.progress_of(db, "no-such-model") is None
    finally:
        db.dispose()


def test_the_status_text_says_how_far_a_training_is() -> None:
    model = {"version": 3, "train_status": "IN_TRAINING"}
    moving = job_status([model], 0.42, "computing image features: 64 of 150")
    assert moving.state == "training" and moving.active and moving.progress == 0.42
    assert moving.text == "Training version 3 (42%): computing image features: 64 of 150…"
    unknown = job_status([model])
    assert unknown.progress is None and "reading the images and fitting" in unknown.text
    assert job_status([model], -1.0, "x").progress == 0.0
    done = job_status([{**model, "train_status": "TRAINED", "accuracy": 0.9}], 1.0, "trained")
    assert done.state == "trained" and done.progress is None and not done.active


def test_the_status_fragment_shows_progress_then_trained(user: WebUser) -> None:
    url = shapes_task(user, per_label=MIN_IMAGES + 1)
    with signed_in_client(user) as client:
        csrf = re.search(r'name="csrf_token" value="([^"]*)"', client.get(url).text)
        assert csrf
        assert client.post(url + "/train", data={"csrf_token": csrf.group(1)}).status_code == 303
        seen: list[float] = []

        def mid_way() -> bool:
            fragment = client.get(url + "/status").text
            found = PROGRESS.search(fragment)
            if found:
                seen.append(float(found.group(1)))
            assert "Trained: version 1" not in fragment, f"trained before any progress: {seen}"
            return bool(found) and 0 < float(found.group(1)) < 1

        until(mid_way, TRAIN_LIMIT, "a progress strictly between 0 and 1", step=0.2)
        fragment = client.get(url + "/status").text
        assert 'hx-trigger="every 2s"' in fragment or "Trained: version 1" in fragment

        def trained() -> str:
            text = client.get(url + "/status").text
            return text if "Trained: version 1" in text else ""

        done = until(trained, TRAIN_LIMIT, "version 1 trained")
        assert "<progress" not in done and 'hx-trigger="every 2s"' not in done
    assert seen == sorted(seen)  # it only moves forward


def test_the_page_shows_the_progress_bar_then_trained(
    user: WebUser, browser: Any, slow_server: Any
) -> None:
    url = shapes_task(user, per_label=MIN_IMAGES + 2)
    context = browser.new_context(base_url=slow_server.url)
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        page.goto("/web/sign-in")
        page.get_by_label("User name").fill(user.username)
        page.get_by_label("Password").fill(user.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/web/")
        page.goto(url)
        page.get_by_role("button", name="Train").click()
        bar = page.locator("#train-progress")
        # The htmx polling swaps the fragment in: the bar appears with a value mid-way.
        page.wait_for_function(
            "() => { const p = document.querySelector('#train-progress');"
            " return p && p.hasAttribute('value') && p.value > 0 && p.value < 1; }",
            timeout=TRAIN_LIMIT * 1000,
        )
        assert "Training version 1" in page.locator("#train-status").inner_text()
        page.locator("#train-status[data-state=trained]").wait_for(timeout=TRAIN_LIMIT * 1000)
        assert bar.count() == 0
        assert "Trained: version 1" in page.locator("#train-status").inner_text()
    finally:
        context.close()


def test_a_forged_notice_is_not_shown(user: WebUser) -> None:
    url = shapes_task(user, per_label=1)
    forged = "Version 3 is now in production"
    with signed_in_client(user) as client:
        page = client.get(url, params={"done": forged})
        assert page.status_code == 200 and forged not in page.text
        assert 'role="status">Version' not in page.text
        known = client.get(url, params={"done": "queued"})
        assert "Training queued." in known.text
