"""Browser fixtures: Debian's Chromium driven by Playwright, against the real server of
tests/conftest.py (`live_server`).

    browser      session-scoped: one Chromium per xdist worker
    web_user     a fresh user with a password (and an API token) on live_server
    page         a new browser context's page, signed out
    signed_in    a page signed in as `web_user`, on the home page

Chromium is the system's (`chromium` package; .ci/run installs it), launched through
its executable path: nothing here downloads a browser (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD,
and never `playwright install`). LOCALREPO_CHROMIUM names another executable.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .browsing import sign_in
from .webhelp import WebUser, new_web_user

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


def chromium_path() -> str:
    found = os.environ.get("LOCALREPO_CHROMIUM") or shutil.which("chromium")
    if not found or not Path(found).exists():
        pytest.fail(
            "the browser tests need Debian's Chromium: apt-get install chromium "
            "(.ci/run installs it), or LOCALREPO_CHROMIUM=/path/to/chromium"
        )
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def web_user(live_server: Any) -> WebUser:
    return new_web_user(live_server)


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def signed_in(page: Any, web_user: WebUser) -> Any:
    return sign_in(page, web_user)
