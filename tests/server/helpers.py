"""Small helpers for the server tests: real images and common API calls."""

from __future__ import annotations

import base64
import io
import json
import os
import random
from typing import Any

import httpx
from PIL import Image


def image_bytes(
    seed: int, size: tuple[int, int] = (64, 48), fmt: str = "JPEG", mode: str = "RGB"
) -> bytes:
    """Distinct, decodable image bytes (noise seeded by ``seed``)."""
    rng = random.Random(seed)
    w, h = size
    bands = len(mode)
    im = Image.frombytes(mode, (w, h), rng.randbytes(w * h * bands))
    buf = io.BytesIO()
    im.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def smooth_jpeg(seed: int, size: tuple[int, int]) -> bytes:
    """A larger JPEG that stays small on disk (blurred colour blobs)."""
    rng = random.Random(seed)
    small = Image.frombytes("RGB", (8, 6), rng.randbytes(8 * 6 * 3))
    buf = io.BytesIO()
    small.resize(size, Image.Resampling.BILINEAR).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def error_fields(body: dict[str, Any]) -> list[str]:
    """The fields a DRF-style error body names; every error body also sums itself up in
    a ``detail`` string (issue 20 item 5), checked here."""
    assert isinstance(body.get("detail"), str) and body["detail"], body
    return [key for key in body if key != "detail"]


def upload(api: httpx.Client, data: bytes, **fields: Any) -> dict[str, Any]:
    r = api.post("training-image/", json={"base64": b64(data), **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def make_task(
    api: httpx.Client, name: str = "task", type: str = "multi_class", **extra: Any
) -> dict[str, Any]:
    r = api.post("task/", json={"name": name, "type": type, **extra})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def make_label(
    api: httpx.Client, name: str = "label", type: str = "category", **extra: Any
) -> dict[str, Any]:
    r = api.post("label/", json={"name": name, "type": type, **extra})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def attach(api: httpx.Client, image_id: str, label_id: str, **extra: Any) -> dict[str, Any]:
    r = api.post(f"training-image/{image_id}/add-label/", json={"label_id": label_id, **extra})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def all_pages(
    client: httpx.Client, url: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Follow ``next`` (absolute URLs) to the end; returns every result."""
    r = client.get(url, params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    results = list(body["results"])
    while body["next"]:
        assert body["next"].startswith("http://"), body["next"]
        r = client.get(body["next"])
        assert r.status_code == 200, r.text
        body = r.json()
        results.extend(body["results"])
    return results


def account_url(api: httpx.Client, path: str = "workspace/") -> str:
    """An absolute ``account/v2/...`` URL on the same server as ``api``."""
    return str(api.base_url).replace("/recognition/v2/", "/account/v2/") + path


def record_fuzz(examples: int, requests: int, server_errors: int) -> None:
    """Add a fuzz test's counts to the run's stats file; tests/conftest.py prints the
    totals at the end ("fuzz: N examples, ...")."""
    path = os.environ.get("LOCALREPO_SIM_STATS")
    if path:
        line = {"fuzz_examples": examples, "fuzz_requests": requests, "fuzz_5xx": server_errors}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
