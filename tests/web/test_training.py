"""The training page: Train (queued as the API's train/ queues, refused with its words),
the live status fragment, versions, promote and roll back (the API's PATCH rules), CSRF
and other users' tasks; over HTTP, then the whole loop in Chromium. A server of its own
trains with the handcrafted features and a small minimum of images per label (as
tests/cli/test_ml_cli.py's SERVER_ARGS), so a training takes a second or two."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from server.helpers import attach, upload
from server.trainhelp import multi_label_task
from support.imagegen import brightness_image, class_image, tagged_image
from support.waiting import until

from .browsing import signed_in_page
from .webhelp import (
    SCREENSHOTS,
    WebUser,
    hidden,
    new_web_user,
    screenshots_wanted,
    signed_in_client,
)

MIN_IMAGES = 4
SERVER_ARGS = ("--min-images-per-label", str(MIN_IMAGES), "--backend", "handcrafted")
SHAPES = ("circle", "square")
TRAIN_LIMIT = 90.0


@pytest.fixture(scope="module")
def train_server(live_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = type(live_server)(tmp_path_factory.mktemp("web-train") / "data", list(SERVER_ARGS))
    server.start()
    yield server
    server.stop()


def api_client(user: WebUser) -> httpx.Client:
    return httpx.Client(
        base_url=user.url + "recognition/v2/",
        headers={"Authorization": f"Token {user.token}"},
        timeout=30.0,
    )


def shapes_task(user: WebUser, per_label: int, *, mislabelled: bool = False) -> str:
    """A multi_class task of `user` with `per_label` images of each shape; its URL.
    `mislabelled`: one more test image, a circle labelled square."""
    with api_client(user) as api:
        task = api.post("task/", json={"name": "shapes", "type": "multi_class"}).json()
        for shape in SHAPES:
            label = api.post("label/", json={"name": shape, "type": "category"}).json()
            api.post(f"task/{task['id']}/add-label/", json={"label_id": label["id"]})
            looks = [(shape, i, False) for i in range(per_label)]
            if mislabelled and shape == "square":
                looks.append(("circle", 500, True))
            for look, i, test in looks:
                data = base64.b64encode(class_image(look, i)).decode()
                image = api.post(
                    "training-image/", json={"base64": data, "test_image": test}
                ).json()
                added = api.post(
                    f"training-image/{image['id']}/add-label/", json={"label_id": label["id"]}
                )
                assert added.status_code == 200, added.text
    return f"/web/w/{task['workspace']}/tasks/{task['id']}/training"


def production(user: WebUser, url: str) -> Any:
    with api_client(user) as api:
        return api.get(f"task/{url.split('/')[5]}/").json()["production_version"]


def wait_trained(client: httpx.Client, url: str, version: int) -> str:
    """Poll the status fragment as the page does until `version` has trained."""

    def trained() -> str:
        text = client.get(url + "/status").text
        return text if f"Trained: version {version}" in text else ""

    return until(trained, TRAIN_LIMIT, f"version {version} trained")


def post(client: httpx.Client, url: str, **data: str) -> httpx.Response:
    csrf = hidden(client.get(url.rsplit("/", 1)[0]).text, "csrf_token")
    return client.post(url, data={"csrf_token": csrf, **data})


@pytest.fixture
def user(train_server: Any) -> WebUser:
    return new_web_user(train_server)


def test_train_queues_and_the_status_polls_until_trained(user: WebUser) -> None:
    url = shapes_task(user, per_label=6)
    with signed_in_client(user) as client:
        empty = client.get(url)
        assert empty.status_code == 200 and "Not trained yet" in empty.text
        assert 'hx-trigger="every 2s"' not in empty.text  # nothing moves: no polling
        queued = post(client, url + "/train")
        assert queued.status_code == 303 and queued.headers["location"] == url + "?done=queued"
        moving = client.get(url + "/status").text
        assert 'hx-trigger="every 2s"' in moving or "Trained: version 1" in moving
        done = wait_trained(client, url, 1)
        assert 'hx-trigger="every 2s"' not in done  # polling stops when the job is done
        assert re.search(r'data-version="1">\s*<td>1 <mark>production</mark>', done)
        assert "<td>12</td>" in done  # images of the version (training + test)
        assert "Accuracy " in done
    assert production(user, url) == 1


def test_too_few_images_shows_the_apis_message_next_to_the_button(user: WebUser) -> None:
    url = shapes_task(user, per_label=2)
    with signed_in_client(user) as client:
        refused = post(client, url + "/train")
        assert refused.status_code == 400
        error = re.search(
            r'<small id="train-error" class="error" role="alert">([^<]*)<', refused.text
        )
        assert error and "circle" in error.group(1) and str(MIN_IMAGES) in error.group(1)
        assert "Not trained yet" in client.get(url + "/status").text  # nothing was queued


def test_promote_and_roll_back_change_production(user: WebUser) -> None:
    url = shapes_task(user, per_label=5)
    with signed_in_client(user) as client:
        post(client, url + "/train")
        wait_trained(client, url, 1)
        post(client, url + "/train")
        page = wait_trained(client, url, 2)
        assert production(user, url) == 2
        assert "Roll back to version 1" in page
        rolled = post(client, url + "/rollback")
        assert rolled.status_code == 303 and rolled.headers["location"] == url + "?done=promoted"
        assert production(user, url) == 1
        after = client.get(url).text
        assert 'aria-label="Promote version 2 to production"' in after
        assert "Roll back" not in after  # nothing older than version 1
        promoted = post(client, url + "/promote", version="2")
        assert promoted.status_code == 303
        assert production(user, url) == 2
        # A version that never trained: the API's 400, on the page.
        bad = post(client, url + "/promote", version="9")
        assert bad.status_code == 400
        assert "Version 9 of this task does not exist or has not trained" in bad.text
        assert 'id="versions-error"' in bad.text
        junk = post(client, url + "/promote", version="two")
        assert junk.status_code == 400 and "Choose a version" in junk.text
        assert production(user, url) == 2


def test_posts_without_the_csrf_token_are_refused(user: WebUser) -> None:
    url = shapes_task(user, per_label=5)
    with signed_in_client(user) as client:
        for action in ("/train", "/rollback", "/promote"):
            refused = client.post(url + action, data={"version": "1"})
            assert refused.status_code == 403, action
            assert "security token" in refused.text
        assert "Not trained yet" in client.get(url + "/status").text


def test_another_users_task_is_not_found(user: WebUser, train_server: Any) -> None:
    url = shapes_task(user, per_label=5)
    other = new_web_user(train_server)
    with signed_in_client(other) as client:
        csrf = hidden(client.get("/web/").text, "csrf_token")
        for path in (url, url + "/status"):
            assert client.get(path).status_code == 404, path
        for action in ("/train", "/rollback", "/promote"):
            answer = client.post(url + action, data={"csrf_token": csrf, "version": "1"})
            assert answer.status_code == 404, action
        assert client.get("/web/w/not-an-id/tasks/nor-this/training").status_code == 404
    assert production(user, url) is None
    with signed_in_client(user) as client:
        assert "Not trained yet" in client.get(url + "/status").text


# -- in the browser --------------------------------------------------------------------------


@pytest.fixture
def train_page(browser: Any, train_server: Any, user: WebUser) -> Iterator[Any]:
    """A Chromium page on the training server, signed in as `user`."""
    with signed_in_page(browser, train_server, user) as page:
        yield page


def production_row(page: Any) -> str:
    return str(page.locator("#versions tr:has(mark)").get_attribute("data-version"))


def test_train_in_the_browser_then_promote_and_roll_back(train_page: Any, user: WebUser) -> None:
    page = train_page
    url = shapes_task(user, per_label=5)
    page.goto(url)
    assert page.locator("#train-status").inner_text().startswith("Not trained yet")
    polls: list[str] = []
    page.on(
        "request", lambda request: polls.append(request.url) if "/status" in request.url else None
    )
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_url(f"**{url}?done=queued")
    page.evaluate("window.stillTheSamePage = true")  # gone if anything reloads the page
    status = page.locator("#train-status")
    # Read before the first poll (2 s on): the page as the server sent it, still moving.
    assert status.get_attribute("data-state") in ("waiting", "training")
    status.filter(has_text="Trained: version 1").wait_for(timeout=TRAIN_LIMIT * 1000)
    assert page.evaluate("window.stillTheSamePage") is True  # htmx swapped it in
    assert polls  # by polling the status fragment
    assert production_row(page) == "1"
    shoot_training(page, "training")

    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_url(f"**{url}?done=queued")
    status.filter(has_text="Trained: version 2").wait_for(timeout=TRAIN_LIMIT * 1000)
    assert production_row(page) == "2"
    assert page.locator("#versions tbody tr").count() == 2

    page.get_by_role("button", name="Roll back to version 1").click()
    page.wait_for_url(f"**{url}?done=promoted")
    assert production_row(page) == "1"
    assert production(user, url) == 1
    page.get_by_role("button", name="Promote version 2 to production").click()
    page.wait_for_url(f"**{url}?done=promoted")
    assert production_row(page) == "2"
    assert production(user, url) == 2


def shoot_training(page: Any, name: str) -> None:
    if screenshots_wanted():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


# -- evaluation ------------------------------------------------------------------------------


def evaluation_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/evaluation"


def trained_task(client: httpx.Client, user: WebUser, *, mislabelled: bool = False) -> str:
    url = shapes_task(user, per_label=6, mislabelled=mislabelled)
    post(client, url + "/train")
    wait_trained(client, url, 1)
    return url


def try_image(
    client: httpx.Client, url: str, data: bytes, name: str = "probe.jpg"
) -> httpx.Response:
    csrf = hidden(client.get(url).text, "csrf_token")
    return client.post(
        url + "/try",
        data={"csrf_token": csrf},
        files={"image": (name, data, "image/jpeg")},
    )


def test_evaluation_shows_per_label_figures_and_the_confusion_matrix(user: WebUser) -> None:
    with signed_in_client(user) as client:
        url = evaluation_url(trained_task(client, user))
        shown = client.get(url)
        assert shown.status_code == 200
        assert "Version 1 on its test images" in shown.text
        table = shown.text.split('id="per-label"')[1].split("</table>")[0]
        for shape in SHAPES:
            assert f'<th scope="row">{shape}</th>' in table
        assert '<th scope="col">F1</th>' in table
        matrix = shown.text.split('id="confusion"')[1].split("</table>")[0]
        counts = [int(c) for c in re.findall(r'data-count="(\d+)"', matrix)]
        tested = re.search(r"on (\d+) test images", shown.text)
        assert len(counts) == len(SHAPES) ** 2 and tested and sum(counts) == int(tested.group(1))
        assert client.get(url, params={"version": "7"}).status_code == 404
        assert client.get(url, params={"version": "x"}).status_code == 404


def test_try_it_classifies_with_the_production_version(user: WebUser) -> None:
    with signed_in_client(user) as client:
        url = evaluation_url(trained_task(client, user))
        answer = try_image(client, url, class_image("square", 99))
        assert answer.status_code == 200, answer.text
        best = re.search(r'<strong id="try-best">(\w+)</strong> \((\d+\.\d)%\)', answer.text)
        assert best and best.group(1) in SHAPES
        assert all(f"<td>{shape}</td>" in answer.text for shape in SHAPES)
        broken = try_image(client, url, b"not an image at all", name="notes.jpg")
        assert broken.status_code == 400
        assert re.search(r'id="try-error"[^>]*>notes.jpg: [^<]*image', broken.text)
        refused = client.post(url + "/try", files={"image": ("a.jpg", class_image("square", 1))})
        assert refused.status_code == 403


def test_evaluation_before_any_training_and_for_another_user(
    user: WebUser, train_server: Any
) -> None:
    url = evaluation_url(shapes_task(user, per_label=5))
    with signed_in_client(user) as client:
        empty = client.get(url)
        assert empty.status_code == 200 and 'id="no-version"' in empty.text
        nothing = try_image(client, url, class_image("circle", 1))
        assert nothing.status_code == 400 and "train the task first" in nothing.text
    with signed_in_client(new_web_user(train_server)) as other:
        assert other.get(url).status_code == 404
        csrf = hidden(other.get("/web/").text, "csrf_token")
        answer = other.post(
            url + "/try",
            data={"csrf_token": csrf},
            files={"image": ("a.jpg", class_image("circle", 1))},
        )
        assert answer.status_code == 404


def test_evaluation_and_try_it_in_the_browser(train_page: Any, user: WebUser) -> None:
    page = train_page
    with signed_in_client(user) as client:
        url = evaluation_url(trained_task(client, user, mislabelled=True))
    page.goto(url)
    assert page.get_by_role("heading", name="Confusion matrix").is_visible()
    assert page.locator("#confusion td").count() == len(SHAPES) ** 2
    # The circle filed as square is among the mistakes (the split, seeded by the task's
    # id, may put another hard image in the test part too).
    shots = page.locator("figure.shot")
    assert shots.count() >= 1
    mistake = shots.filter(has_text="true square").filter(has_text="predicted circle").first
    assert mistake.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    page.get_by_role("link", name=re.compile(r"^\d+ square predicted circle: show them$")).click()
    assert page.get_by_role("heading", name="Test images of square predicted circle").is_visible()
    page.get_by_role("link", name="show the misclassified ones").click()
    assert page.get_by_role("heading", name="Misclassified test images").is_visible()
    page.evaluate("window.stillTheSamePage = true")
    page.set_input_files(
        "#try-image",
        files=[
            {"name": "probe.jpg", "mimeType": "image/jpeg", "buffer": class_image("circle", 77)}
        ],
    )
    best = page.locator("#try-best")
    best.wait_for()
    assert best.inner_text() in SHAPES
    assert page.locator("#try-labels tbody tr").count() == len(SHAPES)
    assert page.evaluate("window.stillTheSamePage") is True  # the answer came in by htmx
    shoot_training(page, "evaluation")


def test_the_misclassified_gallery_and_a_cell_of_the_matrix(user: WebUser) -> None:
    with signed_in_client(user) as client:
        url = evaluation_url(trained_task(client, user, mislabelled=True))
        shown = client.get(url).text
        gallery = shown.split('id="gallery"')[1]
        captions = re.findall(r"<figcaption>(.*?)</figcaption>", gallery, re.S)
        assert any(
            re.search(
                r"true <strong>square</strong><br>predicted <strong>circle</strong> \(\d+\.\d%\)",
                caption,
            )
            for caption in captions
        ), captions
        thumb = re.search(r'<img src="(/media/[^"]+_thumb\.jpg)"', gallery)
        assert thumb and client.get(thumb.group(1)).status_code == 200
        cell = re.search(
            r'href="([^"]+)"\s+aria-label="(\d+) square predicted circle: show them"', shown
        )
        assert cell, shown
        opened = client.get(cell.group(1).replace("&amp;", "&")).text
        assert "Test images of square predicted circle" in opened
        assert len(re.findall(r'<figure class="shot"', opened)) == int(cell.group(2))
        # Every cell with images opens exactly those: its count, its true and predicted
        # label (which cells have images varies with the split, seeded by the task id).
        cells = re.findall(
            r'href="([^"]+)"\s+aria-label="(\d+) (\w+) predicted (\w+): show them"', shown
        )
        assert cells, shown
        for href, count, true, predicted in cells:
            opened = client.get(href.replace("&amp;", "&")).text.split('id="gallery"')[1]
            assert re.findall(r"true <strong>(\w+)</strong>", opened) == [true] * int(count)
            said = re.findall(r"predicted <strong>(\w+)</strong>", opened)
            assert said == [predicted] * int(count)


def brightness_task(user: WebUser, count: int = 12) -> str:
    """A regression task of `user`: `count` images, each with its brightness as value."""
    with api_client(user) as api:
        task = api.post("task/", json={"name": "brightness", "type": "regression"}).json()
        label = api.post("label/", json={"name": "brightness", "type": "value"}).json()
        api.post(f"task/{task['id']}/add-label/", json={"label_id": label["id"]})
        for i in range(count):
            value = i / (count - 1)
            data = base64.b64encode(brightness_image(value, i)).decode()
            image = api.post("training-image/", json={"base64": data}).json()
            added = api.post(
                f"training-image/{image['id']}/add-label/",
                json={"label_id": label["id"], "value": value},
            )
            assert added.status_code == 200, added.text
    return f"/web/w/{task['workspace']}/tasks/{task['id']}/training"


def test_a_regression_version_shows_mae_rmse_and_predicted_against_actual(user: WebUser) -> None:
    url = brightness_task(user)
    with signed_in_client(user) as client:
        post(client, url + "/train")
        wait_trained(client, url, 1)
        shown = client.get(evaluation_url(url)).text
    assert re.search(r"<strong>MAE</strong> \d\.\d{3}", shown)
    assert re.search(r"<strong>RMSE</strong> \d\.\d{3}", shown)
    assert '<th scope="col">MAE</th>' in shown and 'id="confusion"' not in shown
    tested = re.search(r"on (\d+) test images", shown)
    points = re.findall(r'<circle class="point" cx="([\d.]+)" cy="([\d.]+)"', shown)
    assert tested and len(points) == int(tested.group(1)) > 0
    assert all(0 <= float(x) <= 100 and 0 <= float(y) <= 100 for x, y in points)


def test_a_multi_label_version_shows_the_images_whose_tags_it_gets_wrong(user: WebUser) -> None:
    """A clearly red test image tagged only "blue" (``test_image``: always in the test
    part) is a mistake whatever the split: the version sees red and no blue bar."""
    with api_client(user) as api:
        task, labels = multi_label_task(api)
        wrong = upload(api, tagged_image({"red"}, 900), test_image=True)
        attach(api, wrong["id"], labels["blue"]["id"])
    url = f"/web/w/{task['workspace']}/tasks/{task['id']}/training"
    with signed_in_client(user) as client:
        post(client, url + "/train")
        wait_trained(client, url, 1)
        shown = client.get(evaluation_url(url)).text
    assert re.search(r"<strong>Exact match</strong> \d\.\d{3}", shown)
    assert 'id="confusion"' not in shown and "Confusion matrix" not in shown
    gallery = shown.split('id="gallery"')[1].split("<h2>")[0]
    assert "Misclassified test images" in gallery
    figure = re.search(
        rf'<figure class="shot" data-image="{wrong["id"]}".*?</figure>', gallery, re.S
    )
    assert figure, gallery
    assert re.search(
        r"true <strong>blue</strong><br>predicted <strong>red</strong> \((red|blue) \d+\.\d%\)",
        figure.group(0),
    ), figure.group(0)
    assert 'alt="Test image tagged blue"' in figure.group(0)
