"""Drag and drop in a real browser (Chromium, tests/web/conftest.py): files dropped on
the gallery's upload form (a DataTransfer of File objects made in the page from real
JPEG bytes, then dragenter, dragover and drop, as a browser delivers them) are sent
one by one, each with its own progress bar and outcome, and appear in the gallery; a
file dropped again is reported as a duplicate. (Try it's drop: the acceptance test.)"""

from __future__ import annotations

from typing import Any

from support.imagegen import image_bytes

from .browsing import drop_files
from .webhelp import WebUser, make_task

# Records the per-file progress bars images.js shows (each removed once its file is
# answered), so the test sees them however fast the upload goes.
WATCH_PROGRESS = """() => {
  window.progressSeen = [];
  new MutationObserver(changes => {
    for (const change of changes) for (const node of change.addedNodes) {
      const bar = node.querySelector && node.querySelector("progress");
      if (bar) window.progressSeen.push(bar.getAttribute("aria-label"));
    }
  }).observe(document.getElementById("upload-report"), {childList: true, subtree: true});
}"""


def test_files_dropped_on_the_gallery_upload_with_progress_and_duplicates(
    signed_in: Any, live_server: Any, web_user: WebUser
) -> None:
    page = signed_in
    task = make_task(live_server, web_user)
    page.goto(f"/web/w/{task['workspace']}/tasks/{task['id']}/images")
    page.get_by_text("Upload images").click()
    page.get_by_label("Label of the new images").select_option(label="dog")
    form = page.locator("#upload-form")
    drop_files(page, "#upload-form", [("x.jpg", image_bytes(1))], events=("dragenter",))
    assert "dropping" in (form.get_attribute("class") or "")  # shown while dragging
    page.dispatch_event("#upload-form", "dragleave")
    assert "dropping" not in (form.get_attribute("class") or "")

    page.evaluate(WATCH_PROGRESS)
    names = ["first.jpg", "second.jpg", "third.jpg"]
    drop_files(
        page,
        "#upload-form",
        [(name, image_bytes(700 + n, size=(160, 120))) for n, name in enumerate(names)],
    )
    report = page.locator("#upload-report")
    done = report.get_by_role("link", name="Show the gallery with the new images")
    done.wait_for()
    assert page.evaluate("window.progressSeen") == [f"Uploading {name}" for name in names]
    assert [line.inner_text() for line in report.locator(".upload-added").all()] == [
        f"{name}: added" for name in names
    ]
    assert report.locator("progress").count() == 0  # each bar gone with its answer

    # The same bytes dropped again (under another name): a duplicate, not a copy.
    drop_files(page, "#upload-form", [("again.jpg", image_bytes(701, size=(160, 120)))])
    done.wait_for()
    assert (
        report.locator(".upload-duplicate").inner_text() == "again.jpg: already in this workspace"
    )
    assert report.locator(".upload-added").count() == 0

    done.click()
    assert page.locator("#image-count").inner_text() == "3 images."
    for name in names:
        thumb = page.get_by_role("img", name=name)
        thumb.wait_for()
        assert "dog" in page.locator("ul.gallery li").filter(has=thumb).inner_text()
