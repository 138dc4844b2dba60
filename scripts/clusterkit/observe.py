"""Reading the end state: the server's images (the API, through the proxy, each image's
bytes fetched and hashed), the training jobs (PostgreSQL), the workers' log lines."""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from .checks import Job, ServerImage

MEDIA_SHA = re.compile(r"/media/([0-9a-f]{64})/")
TRAINED = re.compile(r"trained task (\S+) version (\d+) in ")


def _pages(api: httpx.Client, path: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    r = api.get(path, params={"page_size": 1000})
    while True:
        r.raise_for_status()
        page = r.json()
        out += page["results"]
        if not page["next"]:
            return out
        r = api.get(page["next"])


def _bytes_ok(http: httpx.Client, url: str, sha: str) -> bool:
    for _ in range(3):
        try:
            r = http.get(url)
        except httpx.HTTPError:
            continue
        if r.status_code < 500:
            return r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == sha
    return False


def server_images(api: httpx.Client) -> tuple[ServerImage, ...]:
    rows = _pages(api, "training-image/")
    shas = []
    for row in rows:
        found = MEDIA_SHA.search(row["img_path"])
        shas.append(found.group(1) if found else "")
    with httpx.Client(timeout=60.0) as http, ThreadPoolExecutor(8) as pool:
        oks = list(
            pool.map(
                lambda rs: _bytes_ok(http, rs[0]["img_path"], rs[1]), zip(rows, shas, strict=True)
            )
        )
    out = []
    for row, sha, ok in zip(rows, shas, oks, strict=True):
        digest = str((row.get("meta_data") or {}).get("content_hash") or "")
        out.append(
            ServerImage(
                id=row["id"],
                sha256=sha,
                content_hash=digest.split(":", 1)[1] if digest.startswith("xxh3_128:") else None,
                labels=frozenset(lab["name"] for lab in row.get("labels") or []),
                bytes_ok=ok,
            )
        )
    return tuple(out)


def task_labels(api: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    return _pages(api, f"label/?task={task_id}")


# The database is read with a psycopg connection the caller holds (`psycopg.connect`).


def jobs(conn: Any) -> tuple[Job, ...]:
    rows = conn.execute(
        "SELECT j.task_id, m.version, j.status, m.train_status, j.attempts "
        "FROM training_jobs j JOIN models m ON m.id = j.model_id"
    ).fetchall()
    return tuple(Job(str(t), int(v), str(s), str(ms), int(a)) for t, v, s, ms, a in rows)


def unfinished_jobs(conn: Any) -> int:
    row = conn.execute(
        "SELECT count(*) FROM training_jobs WHERE status IN ('queued', 'running')"
    ).fetchone()
    return int(row[0]) if row else 0


def running_workers(conn: Any) -> list[str]:
    """The worker ids (host:pid) holding a running job now."""
    rows = conn.execute("SELECT worker FROM training_jobs WHERE status = 'running'").fetchall()
    return [str(r[0]) for r in rows if r[0]]


def trained_logged(log_texts: list[str]) -> tuple[tuple[str, int], ...]:
    return tuple(
        (m.group(1), int(m.group(2))) for text in log_texts for m in TRAINED.finditer(text)
    )
