"""The image gallery in a real browser (Chromium through Playwright, tests/web/conftest.py):
several files uploaded through the file picker with a label chosen up front, each with
its outcome, then seen in the gallery with their thumbnails, and two relabelled."""

from __future__ import annotations

from typing import Any

from support.imagegen import image_bytes

from .test_browser import shoot
from .webhelp import WebUser, make_task


def test_upload_through_the_file_picker_then_relabel(
    signed_in: Any, live_server: Any, web_user: WebUser, tmp_path: Any
) -> None:
    page = signed_in
    task = make_task(live_server, web_user)
    files = []
    for n, name in enumerate(("one.jpg", "two.jpg", "three.jpg", "again.jpg")):
        path = tmp_path / name
        path.write_bytes(image_bytes(1 if name == "again.jpg" else n + 1, size=(120, 90)))
        files.append(str(path))
    page.goto(f"/web/w/{task['workspace']}/tasks/{task['id']}/images")
    assert page.get_by_text("No images yet").is_visible()
    page.get_by_text("Upload images").click()
    page.get_by_label("Label of the new images").select_option(label="cat")
    page.get_by_label("Image files").set_input_files(files)
    page.get_by_role("button", name="Upload", exact=True).click()
    report = page.locator("#upload-report")
    report.get_by_role("link", name="Show the gallery with the new images").wait_for()
    assert report.locator(".upload-added").count() == 3
    assert "again.jpg: already in this workspace" in report.inner_text()
    shoot(page, "images-upload")

    report.get_by_role("link", name="Show the gallery with the new images").click()
    page.wait_for_selector("ul.gallery img")
    assert page.locator("#image-count").inner_text() == "3 images."
    thumbs = page.locator("ul.gallery img")
    page.wait_for_function(
        "() => [...document.querySelectorAll('ul.gallery img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    assert thumbs.count() == 3
    page.get_by_label("one.jpg").check()
    page.get_by_label("two.jpg").check()
    page.get_by_label("New label").select_option(label="dog")
    page.get_by_role("button", name="Relabel selected").click()
    assert page.get_by_role("status").inner_text() == "Labelled 2 images dog."
    page.get_by_label("Show").select_option(label="dog")
    page.get_by_role("button", name="Show", exact=True).click()
    assert page.locator("#image-count").inner_text() == "2 images."
    shoot(page, "images-gallery")

    # Delete asks first: dismissed, nothing goes; accepted, the image goes.
    page.get_by_label("one.jpg").check()
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete selected").click()
    assert page.locator("#image-count").inner_text() == "2 images."
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete selected").click()
    assert page.get_by_role("status").inner_text() == "Deleted 1 image."
    assert page.locator("#image-count").inner_text() == "2 images."  # all images now
