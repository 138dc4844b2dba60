"""The images, image, training and evaluation pages at a phone's width (390 x 844) in a
real Chromium: nothing scrolls sideways, and the main action of each page is on the
screen and works there (relabel, train, try it). Then the gallery with the keyboard
alone: tab to an image's checkbox, space selects it, on to the bulk action, Enter.
A server of its own trains with the handcrafted features (as tests/web/test_training.py)."""

from __future__ import annotations

import re
from typing import Any

from support.imagegen import class_image, image_bytes
from support.waiting import until

from .browsing import PHONE, overflow, signed_in_page
from .test_browser import shoot
from .test_images import upload
from .test_training import SERVER_ARGS, SHAPES, TRAIN_LIMIT, api_client, shapes_task
from .webhelp import WebUser, make_task, new_web_user, signed_in_client


def on_screen(page: Any, locator: Any) -> None:
    """`locator` is visible and wholly within the window's width."""
    assert locator.is_visible()
    box = locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box


def fits(page: Any, path: str) -> None:
    page.goto(path)
    wider = overflow(page)
    assert wider <= 0, f"{path} is {wider} px wider than a phone's screen"


def trained(user: WebUser, training_url: str) -> None:
    task_id = training_url.split("/")[5]
    with api_client(user) as api:
        assert api.post(f"task/{task_id}/train/").status_code == 200
        until(
            lambda: api.get(f"task/{task_id}/").json()["production_version"] == 1,
            TRAIN_LIMIT,
            "version 1 trained",
        )


def test_the_task_pages_fit_a_phone_and_their_actions_work_there(
    browser: Any, server_factory: Any
) -> None:
    server = server_factory(*SERVER_ARGS)
    user = new_web_user(server)
    training = shapes_task(user, per_label=5, mislabelled=True)
    trained(user, training)
    base = training.rsplit("/", 1)[0]
    with signed_in_page(browser, server, user) as page:
        page.set_viewport_size(PHONE)

        # The gallery: a relabel with the thumb.
        fits(page, base + "/images")
        on_screen(page, page.get_by_text("Upload images"))
        page.locator("ul.gallery input[type=checkbox]").first.check()
        page.get_by_label("New label").select_option(label="circle")
        relabel = page.get_by_role("button", name="Relabel selected")
        on_screen(page, relabel)
        relabel.click()
        assert page.get_by_role("status").inner_text() == "Labelled 1 image circle."
        assert overflow(page) <= 0
        shoot(page, "images-phone")

        # One image, with its full picture scaled to the screen.
        page.locator("ul.gallery a").first.click()
        page.wait_for_url(re.compile(r"/images/[0-9a-f-]+$"))
        assert overflow(page) <= 0
        on_screen(page, page.locator("img.full-image"))

        # Training: Train works from the phone.
        fits(page, training)
        train = page.get_by_role("button", name="Train", exact=True)
        on_screen(page, train)
        train.click()
        page.locator("#train-status").filter(has_text="Trained: version 2").wait_for(
            timeout=TRAIN_LIMIT * 1000
        )
        assert overflow(page) <= 0  # the versions table too

        # Evaluation: the matrix and the mistakes fit; Try it answers.
        fits(page, base + "/evaluation")
        assert page.get_by_role("heading", name="Confusion matrix").is_visible()
        page.set_input_files(
            "#try-image",
            files=[
                {"name": "phone.jpg", "mimeType": "image/jpeg", "buffer": class_image("square", 5)}
            ],
        )
        page.locator("#try-best").wait_for()
        assert page.locator("#try-best").inner_text() in SHAPES
        assert overflow(page) <= 0
        on_screen(page, page.get_by_role("button", name="Classify", exact=True))


def test_the_gallery_with_the_keyboard_alone(
    browser: Any, live_server: Any, web_user: WebUser
) -> None:
    task = make_task(live_server, web_user)
    base = f"/web/w/{task['workspace']}/tasks/{task['id']}/images"
    with signed_in_client(web_user) as client:
        files = [(f"{name}.jpg", image_bytes(900 + n)) for n, name in enumerate(("one", "two"))]
        assert upload(client, base, files, task["labels"]["cat"]).status_code == 200
    with signed_in_page(browser, live_server, web_user) as page:
        page.goto(base)

        def tab_to(selector: str, most: int = 60) -> None:
            for _ in range(most):
                page.keyboard.press("Tab")
                if page.evaluate(f"document.activeElement.matches({selector!r})"):
                    return
            raise AssertionError(f"Tab never reached {selector}")

        tab_to("ul.gallery input[type=checkbox]")
        first = page.evaluate("document.activeElement.parentElement.innerText").strip()
        page.keyboard.press("Space")
        assert page.get_by_label(first).is_checked()
        # Focus shows where it is: the focused control is outlined or ringed.
        ring = page.evaluate(
            "(() => { const s = getComputedStyle(document.activeElement);"
            " return s.outlineStyle !== 'none' || s.boxShadow !== 'none'; })()"
        )
        assert ring
        tab_to("#bulk-label")
        page.keyboard.press("ArrowDown")  # the first label: cat
        page.keyboard.press("ArrowDown")  # then dog
        assert page.get_by_label("New label").input_value() == task["labels"]["dog"]
        tab_to("button[value=relabel]")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"notice="))
        assert page.get_by_role("status").inner_text() == "Labelled 1 image dog."
        labels = page.locator("ul.gallery li").filter(has_text=first).locator(".image-labels")
        assert labels.inner_text() == "dog"
