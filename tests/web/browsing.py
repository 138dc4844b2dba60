"""Helpers of the browser tests: a signed-in page on any server (its own context),
files dropped on an element the way a browser delivers them (a DataTransfer of File
objects built in the page from real bytes, then dragenter, dragover and drop), and
the phone-width check."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .webhelp import WebUser

PHONE = {"width": 390, "height": 844}

_FILES_JS = """files => {
  const transfer = new DataTransfer();
  for (const [name, data, type] of files) {
    const text = atob(data);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    transfer.items.add(new File([bytes], name, {type}));
  }
  return transfer;
}"""


def sign_in(page: Any, user: WebUser) -> Any:
    """Sign `page` in as `user` through the sign-in form; it lands on the home page."""
    page.goto("/web/sign-in")
    page.get_by_label("User name").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/web/")
    return page


@contextmanager
def signed_in_page(browser: Any, server: Any, user: WebUser) -> Iterator[Any]:
    """A page of a new browser context on `server`, signed in as `user` (on the home
    page), at desktop width."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    try:
        yield sign_in(context.new_page(), user)
    finally:
        context.close()


def drop_files(
    page: Any,
    selector: str,
    files: list[tuple[str, bytes]],
    events: tuple[str, ...] = ("dragenter", "dragover", "drop"),
) -> None:
    """Drag `files` (name, JPEG bytes) over the element `selector` and drop them (or
    send only `events`)."""
    encoded = [(name, base64.b64encode(data).decode(), "image/jpeg") for name, data in files]
    transfer = page.evaluate_handle(_FILES_JS, encoded)
    try:
        for event in events:
            page.dispatch_event(selector, event, {"dataTransfer": transfer})
    finally:
        transfer.dispose()


def overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than the window (> 0: it scrolls sideways)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))
