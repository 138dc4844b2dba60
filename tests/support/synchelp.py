"""Helpers for the sync scenario tests: real CLI subprocesses against a real server.

`Clone` is one folder tree (a localrepo repository) driven through `repo` in a
subprocess with its own token and credentials folder; `Remote` reads what the server
holds over plain HTTP (httpx). The fault-injecting proxy is tests/support/faultproxy.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from localrepo.scan.hashing import hash_bytes
from support.imagegen import image_bytes
from support.treebuilder import age
from support.waiting import limit

SIZE = (32, 24)
IMAGE_EXT = (".jpg", ".jpeg", ".png")


def img(seed: int) -> bytes:
    return image_bytes(seed, size=SIZE)


def image_hash(seed: int) -> str:
    return hash_bytes(img(seed))


# -- one repository driven through the real CLI ----------------------------------------------


@dataclass
class Clone:
    root: Path
    env: dict[str, str]

    def run(
        self, *args: str, expect: int | None = 0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "localrepo", "-C", str(self.root), *args],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=limit(180),
        )
        if expect is not None:
            assert proc.returncode == expect, (
                f"repo {' '.join(args)} exited {proc.returncode}, expected {expect}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        for stream in (proc.stdout, proc.stderr):
            assert "Traceback" not in stream, stream
        return proc

    def sync(self, *args: str, cmd: str = "sync", expect: int = 0) -> dict[str, Any]:
        """`repo sync --json ARGS`; returns the JSON summary."""
        proc = self.run(cmd, "--json", *args, expect=expect)
        return json.loads(proc.stdout)

    def verify(self) -> dict[str, Any]:
        proc = self.run("verify", "--json", expect=None)
        report = json.loads(proc.stdout)
        assert proc.returncode == 0 and report["ok"], (
            f"verify failed in {self.root}:\n{proc.stdout}\n{proc.stderr}"
        )
        return report

    def status(self) -> dict[str, Any]:
        return json.loads(self.run("status", "--json").stdout)

    def labels(self) -> dict[str, int]:
        """Images per label of the (only) task, from `repo status --json`."""
        return self.status()["tasks"][0]["labels"]

    def conflicts(self) -> list[dict[str, Any]]:
        return json.loads(self.run("conflicts", "--json").stdout)

    def remote_task_id(self) -> str:
        import sqlite3

        conn = sqlite3.connect(self.root / ".localrepo" / "catalog.db")
        try:
            [(tid,)] = conn.execute("SELECT remote_id FROM task").fetchall()
        finally:
            conn.close()
        assert tid
        return tid

    # -- the folder tree --------------------------------------------------------------------

    def write(self, rel: str, seed: int) -> str:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(img(seed))
        age(path)
        return image_hash(seed)

    def move(self, src: str, dest: str) -> None:
        target = self.root / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.root / src, target)

    def tree(self) -> dict[str, str]:
        """{relative path: content hash} of every image file (state folder excluded)."""
        return tree_of(self.root)

    def files_of(self, h: str) -> list[str]:
        return sorted(p for p, d in self.tree().items() if d == h)

    def sidecar_values(self) -> dict[str, float]:
        """{folder/file_name: value} from every metadata.jsonl."""
        out: dict[str, float] = {}
        for side in self.root.rglob("metadata.jsonl"):
            if ".localrepo" in side.relative_to(self.root).parts:
                continue
            folder = side.parent.relative_to(self.root).as_posix()
            for line in side.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    if "value" in row:
                        out[f"{folder}/{row['file_name']}"] = float(row["value"])
        return out

    def snapshot(self) -> dict[str, bytes]:
        """Every file under the root except the state folder: {path: bytes}."""
        return snapshot_of(self.root)


def tree_of(root: Path) -> dict[str, str]:
    out = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if rel.parts[0] == ".localrepo" or not path.is_file():
            continue
        if path.suffix.lower() in IMAGE_EXT:
            out[rel.as_posix()] = hash_bytes(path.read_bytes())
    return out


def snapshot_of(root: Path) -> dict[str, bytes]:
    out = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if rel.parts[0] == ".localrepo" or not path.is_file():
            continue
        out[rel.as_posix()] = path.read_bytes()
    return out


# -- what the server holds ------------------------------------------------------------------


@dataclass
class RemoteImageRow:
    id: str
    hash: str | None
    labels: dict[str, float | None]
    meta: dict[str, Any]


class Remote:
    """The server's state for one account, read (and written, to simulate other users)
    over plain HTTP."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=url + "recognition/v2/",
            headers={"Authorization": f"Token {token}"},
            timeout=30.0,
        )

    def close(self) -> None:
        self.http.close()

    def _get(self, url: str, **kw: Any) -> httpx.Response:
        """GET, waiting out the 503/429 of a server started with fault knobs."""
        for _ in range(20):
            r = self.http.get(url, **kw)
            if r.status_code not in (429, 503):
                r.raise_for_status()
                return r
            time.sleep(float(r.headers.get("Retry-After") or 0.2))
        raise AssertionError(f"GET {url}: still {r.status_code}")

    def _all(self, path: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        r = self._get(path, params={"page_size": 1000, **params})
        while True:
            page = r.json()
            out += page["results"]
            if not page["next"]:
                return out
            r = self._get(page["next"])

    def images(self) -> list[RemoteImageRow]:
        """Every training image of the workspace."""
        rows = []
        for item in self._all("training-image/"):
            meta = item.get("meta_data") or {}
            digest = meta.get("content_hash", "")
            rows.append(
                RemoteImageRow(
                    item["id"],
                    digest.split(":", 1)[1] if digest.startswith("xxh3_128:") else None,
                    {lab["name"]: lab.get("value") for lab in item.get("labels") or []},
                    meta,
                )
            )
        return rows

    def by_hash(self) -> dict[str, RemoteImageRow]:
        out: dict[str, RemoteImageRow] = {}
        for row in self.images():
            assert row.hash not in out, f"two remote images hold {row.hash}"
            if row.hash:
                out[row.hash] = row
        return out

    def labels(self) -> list[dict[str, Any]]:
        return self._all("label/")

    def label_id(self, name: str) -> str:
        [lab] = [lab for lab in self.labels() if lab["name"] == name]
        return lab["id"]

    def tasks(self) -> list[dict[str, Any]]:
        return self._all("task/")

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post(path, json=body)
        assert r.status_code < 300, r.text
        return r.json() if r.content else {}

    def relabel(
        self, image_id: str, remove: str | None, add: str | None, value: float | None = None
    ) -> None:
        if remove:
            self.post(
                f"training-image/{image_id}/remove-label/", {"label_id": self.label_id(remove)}
            )
        if add:
            body: dict[str, Any] = {"label_id": self.label_id(add)}
            if value is not None:
                body["value"] = value
            self.post(f"training-image/{image_id}/add-label/", body)


def api_requests(log_text: str) -> list[tuple[str, str, int]]:
    """[(method, path, status)] from uvicorn's access log lines."""
    out = []
    for m in re.finditer(r'"(GET|POST|PUT|PATCH|DELETE) (\S+) HTTP/[\d.]+" (\d{3})', log_text):
        out.append((m.group(1), m.group(2), int(m.group(3))))
    return out


# -- a test's world: one account, its clones, its remote view --------------------------------


class World:
    def __init__(self, url: str, token: str, tmp: Path) -> None:
        self.url = url
        self.token = token
        self.tmp = tmp
        self.config_dir = tmp / "user-config"
        self.remote = Remote(url, token)

    def env(self, token: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCALREPO_")}
        env.update(
            PYTHONUNBUFFERED="1",
            LOCALREPO_TOKEN=self.token if token is None else token,
            LOCALREPO_CONFIG_DIR=str(self.config_dir),
        )
        return env

    def init(self, name: str, task: str, task_type: str = "multi_class") -> Clone:
        root = self.tmp / name
        root.mkdir(parents=True, exist_ok=True)
        clone = Clone(root, self.env())
        clone.run("init", "--task", task, "--type", task_type, "--remote", self.url)
        return clone

    def clone(self, name: str, task_id: str, *, expect: int = 0) -> Clone:
        root = self.tmp / name
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "localrepo",
                "-C",
                str(self.tmp),
                "clone",
                self.url,
                "--remote-task",
                task_id,
                name,
            ],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=limit(180),
        )
        assert proc.returncode == expect, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
        return Clone(root, self.env())
