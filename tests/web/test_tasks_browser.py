"""The task pages in a real browser (tests/web/conftest.py): a multi_class task created
with two labels, one renamed in place, the image counts shown; a task made by `repo init`
and `repo sync` in a folder, or through the API with a token, appears in the list with its image count. With LOCALREPO_SCREENSHOTS=1
they write docs/web/tasks.png and docs/web/task.png."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from support.synchelp import World

from .test_browser import shoot
from .test_tasks import api, label_ids, labelled_images
from .webhelp import WebUser


def test_create_a_task_with_two_labels_rename_one_and_see_the_counts(
    signed_in: Any, web_user: WebUser
) -> None:
    page = signed_in
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    page.wait_for_url(re.compile(r"/web/w/[^/]+/tasks$"))
    assert page.locator("#no-tasks").is_visible()
    page.get_by_label("Name").fill("Fruit")
    page.get_by_label("Type").select_option("multi_class")
    page.get_by_role("button", name="Create the task").click()
    page.wait_for_url(re.compile(r"/tasks/[0-9a-f-]+$"))
    assert page.get_by_role("heading", name="Fruit").is_visible()
    for name in ("apple", "pear"):
        page.get_by_label("New label").fill(name)
        page.get_by_role("button", name="Create and attach").click()
        page.get_by_role("status").filter(has_text=f"“{name}” was created").wait_for()
    task_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    ids = label_ids(web_user, task_id)
    assert set(ids) == {"apple", "pear"}

    # Inline rename: the label's name opens its form; htmx swaps the answer in place
    # (the page is not reloaded: what a script left on it is still there).
    page.evaluate("window.stillHere = true")
    page.locator("summary", has_text="pear").click()
    field = page.get_by_label("New name for pear")
    field.fill("quince")
    field.press("Enter")
    page.get_by_role("status").filter(has_text="is now named “quince”").wait_for()
    assert label_ids(web_user, task_id) == {"apple": ids["apple"], "quince": ids["pear"]}
    assert page.evaluate("window.stillHere") is True

    labelled_images(web_user, ids["apple"], 3, seed=300)
    labelled_images(web_user, ids["pear"], 1, seed=310)
    page.reload()
    rows = page.locator("#labels tbody tr")
    assert [r.locator(".label-images").inner_text() for r in rows.all()] == ["3", "1"]
    assert page.locator("#task-images").inner_text() == "4"
    shoot(page, "task")
    page.get_by_role("link", name="Tasks").first.click()
    row = page.get_by_role("row").filter(has_text="Fruit")
    assert row.get_by_role("cell").nth(2).inner_text() == "4"


def test_a_task_made_with_a_token_appears_with_its_image_count(
    signed_in: Any, web_user: WebUser
) -> None:
    with api(web_user) as client:
        task = client.post("task/", json={"name": "From the API", "type": "multi_class"}).json()
        label = client.post("label/", json={"name": "leaf", "type": "category"}).json()
        added = client.post(f"task/{task['id']}/add-label/", json={"label_id": label["id"]})
        assert added.status_code == 200, added.text
    labelled_images(web_user, label["id"], 2, seed=400)
    page = signed_in
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    row = page.get_by_role("row").filter(has_text="From the API")
    cells = row.get_by_role("cell")
    assert cells.nth(1).inner_text() == "multi_class"
    assert cells.nth(2).inner_text() == "2"
    assert cells.nth(3).inner_text() == "none yet"
    shoot(page, "tasks")
    row.get_by_role("link", name="From the API", exact=True).click()
    assert page.locator("#labels").get_by_text("leaf", exact=True).is_visible()


def test_a_task_made_by_repo_init_and_sync_appears_with_its_images(
    signed_in: Any, web_user: WebUser, tmp_path: Path
) -> None:
    world = World(web_user.url, web_user.token, tmp_path)
    clone = world.init("garden", "Garden")
    clone.write("rose/a.jpg", 501)
    clone.write("rose/b.jpg", 502)
    clone.write("tulip/c.jpg", 503)
    clone.sync()
    page = signed_in
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    row = page.get_by_role("row").filter(has_text="Garden")
    assert row.get_by_role("cell").nth(2).inner_text() == "3"
    row.get_by_role("link", name="Garden", exact=True).click()
    page.wait_for_url(re.compile(r"/tasks/[0-9a-f-]+$"))  # .all() below does not wait
    counts = {
        r.locator("summary").inner_text(): r.locator(".label-images").inner_text()
        for r in page.locator("#labels tbody tr").all()
    }
    assert counts == {"rose": "2", "tulip": "1"}


def test_the_task_pages_fit_a_phone_and_work_with_the_keyboard(
    signed_in: Any, web_user: WebUser
) -> None:
    with api(web_user) as client:
        task = client.post("task/", json={"name": "Phone", "type": "multi_class"}).json()
        label = client.post("label/", json={"name": "a rather long label name", "type": "category"})
        client.post(f"task/{task['id']}/add-label/", json={"label_id": label.json()["id"]})
    page = signed_in
    page.set_viewport_size({"width": 375, "height": 740})
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    list_path = urlsplit(page.url).path
    for path in (list_path, f"{list_path}/{task['id']}", f"{list_path}/{task['id']}/delete"):
        page.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow} px wider than a phone's screen"
    # Create a task with the keyboard alone: the fields in order, Enter submits.
    page.goto(list_path)
    page.get_by_label("Name").focus()
    page.keyboard.type("Typed")
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # the type: the next one (multi_label)
    page.keyboard.press("Tab")
    page.keyboard.type("made with keys")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/tasks/[0-9a-f-]+$"))
    assert page.get_by_role("heading", name="Typed").is_visible()
    assert "multi_label" in page.locator("hgroup").inner_text()
