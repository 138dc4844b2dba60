"""The vendored assets (localrepo/server/web/static/vendor/VENDORED.md) are what
VENDORED.md says, served by the server with cache headers, and `/docs` and `/redoc`
load nothing from another host."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest

from localrepo.server.web.assets import IMMUTABLE, REVALIDATE

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "localrepo" / "server" / "web" / "static" / "vendor"
# src="...", href="...", url: '...' and the like, in the docs pages' HTML.
ASSET_URL = re.compile(r"""(?:src|href|url)\s*[=:]\s*["']([^"']+)["']""", re.I)


def vendored_rows() -> list[tuple[str, str]]:
    """(file, sha256) of every row of VENDORED.md's table."""
    text = (VENDOR / "VENDORED.md").read_text(encoding="utf-8")
    return re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", text, flags=re.M)


def test_vendored_md_lists_every_vendored_file_with_its_sha256() -> None:
    rows = vendored_rows()
    assert {name for name, _ in rows} == {
        str(p.relative_to(VENDOR))
        for p in VENDOR.rglob("*")
        if p.is_file() and p.suffix in (".js", ".css", ".png")
    }
    for name, digest in rows:
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    for folder in ("htmx", "pico", "swagger-ui", "redoc"):
        assert (VENDOR / folder / "LICENSE.txt").is_file(), folder


@pytest.mark.parametrize("page", ["docs", "redoc"])
def test_docs_pages_load_their_assets_from_this_server(live_server, page: str) -> None:
    html = httpx.get(live_server.url + page).text
    urls = ASSET_URL.findall(html)
    assert any(u.endswith(".js") or ".js?" in u for u in urls), html
    external = [u for u in urls if re.match(r"(?i)(https?:)?//", u)]
    assert not external, f"/{page} loads from another host: {external}"
    assert "fonts.googleapis" not in html and "cdn" not in html.lower()
    for url in urls:
        if url.startswith("/static/"):
            answer = httpx.get(live_server.url + url.lstrip("/"))
            assert answer.status_code == 200, url
            assert answer.headers["cache-control"] == IMMUTABLE, url


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("vendor/htmx/htmx.min.js", "text/javascript; charset=utf-8"),
        ("vendor/pico/pico.min.css", "text/css; charset=utf-8"),
        ("vendor/swagger-ui/swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("vendor/swagger-ui/favicon-32x32.png", "image/png"),
    ],
)
def test_assets_are_served_with_type_etag_and_cache_headers(
    live_server, path: str, content_type: str
) -> None:
    body = (VENDOR.parent / path).read_bytes()
    version = hashlib.sha256(body).hexdigest()[:12]
    with httpx.Client(base_url=live_server.url) as client:
        plain = client.get(f"static/{path}")
        assert plain.status_code == 200 and plain.content == body
        assert plain.headers["content-type"] == content_type
        assert plain.headers["cache-control"] == REVALIDATE  # no version: revalidate
        etag = plain.headers["etag"]
        versioned = client.get(f"static/{path}", params={"v": version})
        assert versioned.headers["cache-control"] == IMMUTABLE
        assert versioned.headers["etag"] == etag
        stale = client.get(f"static/{path}", params={"v": "000000000000"})
        assert stale.headers["cache-control"] == REVALIDATE
        again = client.get(f"static/{path}", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag


@pytest.mark.parametrize(
    "path",
    [
        "static/vendor/VENDORED.md",  # not a served suffix
        "static/vendor/htmx/LICENSE.txt",
        "static/nothing.js",
        "static/../assets.py",
        "static/%2e%2e/%2e%2e/app.py",
        "static/vendor/../../assets.py",
    ],
)
def test_only_static_files_are_served(live_server, path: str) -> None:
    answer = httpx.get(live_server.url + path)
    assert answer.status_code == 404, answer.text


def test_favicon_points_at_the_vendored_icon(live_server) -> None:
    answer = httpx.get(live_server.url + "favicon.ico", follow_redirects=True)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/png"
