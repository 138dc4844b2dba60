"""docs/api.md lists every route the server has (issue 21): each method and path of the
live server's OpenAPI document appears in it, written as the guide writes paths
(`task/<id>/`, relative to its prefix), with its method on the same line."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
_PREFIX = re.compile(r"^/(recognition|annotate)/v2/")


def _doc_path(path: str) -> str:
    """`/recognition/v2/task/{task_id}/add-label/` -> `task/<id>/add-label/`; account
    routes keep their full path, as the guide writes them."""
    short = path if path.startswith("/account/") else _PREFIX.sub("", path)
    return re.sub(r"\{[a-z_]+\}", "<id>", short)


def test_every_route_is_in_the_api_guide(live_server) -> None:
    doc = API_DOC.read_text(encoding="utf-8")
    lines = doc.splitlines()
    paths = httpx.get(live_server.url + "openapi.json").json()["paths"]
    missing = []
    for path, operations in paths.items():
        if not _PREFIX.match(path) and not path.startswith("/account/"):
            continue
        written = _doc_path(path)
        forms = {written, written.rstrip("/")}
        # A route listed as an alias of its neighbour ("`add-task/`, `remove-task/`").
        forms.add(written.rsplit("/", 2)[-2] + "/" if written.count("/") >= 2 else written)
        for method in operations:
            if method in ("head", "options"):
                continue
            found = any(
                method.upper() in line
                and any(f"`{form}" in line or f" {form}`" in line for form in forms)
                for line in lines
            )
            if not found:
                missing.append(f"{method.upper()} {written}")
    assert not missing, "routes missing from docs/api.md: " + ", ".join(sorted(missing))
