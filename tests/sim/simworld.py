"""The seeded multi-clone simulation (issue 7).

One real localrepo-server, two or three clones (real folder trees, real catalogs), and a
schedule drawn from `random.Random(seed)`: user edits on each clone (add, delete, move,
unlabel, byte edit, label folder rename, new label folder, the same bytes added on two
clones), edits on the server through the API (upload, relabel, delete an image, rename,
create or delete a label), and syncs. A sync runs the engine in-process, through the
fault proxy (tests/faultproxy.py) in chaos mode, maybe with a crash at a random crash
point of the executor (localrepo.sync.faults.hooks: nothing after it commits, the next
sync restarts from disk and catalog) and with the executor's completions reordered.

At the end every clone syncs (no faults) until a round where no clone has anything to
do, and then: every clone holds what the server holds (same images by content hash, same
labels per image), `repo verify` agrees, no two remote images share bytes, no two remote
labels share a name, and every image that was added and that no side removed is there.

Everything is a function of the seed: the syncs run one request at a time (`jobs=1`),
so the proxy's faults arrive in the same order, and a failure message names its seed.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import random
import shutil
import sqlite3
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from faultproxy import Chaos, FaultProxy
from imagegen import image_bytes
from inproc import engine_sync, sim_client

from localrepo.errors import LocalrepoError
from localrepo.repository import Repository, init_repository
from localrepo.scan.hashing import hash_bytes
from localrepo.sync import faults
from localrepo.sync.state import HASH_PREFIX, LABEL_TYPE, META_HASH, META_NAME
from localrepo.sync.verify import verify

SEED_ENV = "LOCALREPO_SIM_SEED"
NAMES = ("cat", "dog", "owl", "fox", "elk", "yak")
SIZE = (12, 9)
TASK = "sim"
STEPS = int(os.environ.get("LOCALREPO_SIM_STEPS", "12"))  # schedule steps per seed
# Requests at a time within a sync. Above 1 a seed no longer reruns identically (thread
# timing decides which request meets which fault): for soaks that look for races.
JOBS = int(os.environ.get("LOCALREPO_SIM_JOBS", "1"))
QUIET_ROUNDS = 5  # the bound on the final rounds of syncs
STATS_FIELDS = ("seeds", "steps", "edits", "server_edits", "syncs", "crashes", "faults")


class Crash(BaseException):
    """Raised at a crash point: like kill -9, nothing after it commits (a BaseException:
    no `except Exception` of the engine catches it)."""


def img(n: int) -> bytes:
    return image_bytes(n, size=SIZE, fmt="PNG")


@dataclass
class Stats:
    seeds: int = 0
    steps: int = 0
    edits: int = 0
    server_edits: int = 0
    syncs: int = 0
    crashes: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    crash_points: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seeds": self.seeds,
            "steps": self.steps,
            "edits": self.edits,
            "server_edits": self.server_edits,
            "syncs": self.syncs,
            "crashes": self.crashes,
            "faults": sum(self.faults.values()),
            "fault_kinds": dict(self.faults),
            "crash_points": dict(self.crash_points),
        }


_TEMPLATES: dict[tuple[str, str], Path] = {}


def _template(task_type: str, url: str) -> Path:
    """A new repository, made once per process and copied for each clone (running the
    catalog's migrations costs ~0.3 s a repository)."""
    key = (task_type, url)
    if key not in _TEMPLATES:
        base = Path(tempfile.mkdtemp(prefix="localrepo-sim-template-"))
        atexit.register(shutil.rmtree, base, True)
        _TEMPLATES[key] = init_repository(
            base / "repo", task=TASK, task_type=task_type, remote=url
        ).root
    return _TEMPLATES[key]


class CrashHook:
    """Crashes the n-th time a crash point is passed; once crashed, every later point of
    the run (in any worker thread) crashes too."""

    def __init__(self, nth: int) -> None:
        self.nth = nth
        self.count = 0
        self.crashed: str | None = None

    def __call__(self, point: str) -> None:
        if self.crashed is not None:
            raise Crash(point)
        self.count += 1
        if self.count == self.nth:
            self.crashed = point
            raise Crash(point)


@dataclass
class SimClone:
    name: str
    root: Path

    @property
    def repo(self) -> Repository:
        return Repository(self.root)

    def image_paths(self) -> list[str]:
        out = []
        for path in self.root.rglob("*"):
            rel = path.relative_to(self.root)
            if rel.parts[0] == ".localrepo" or not path.is_file() or path.suffix != ".png":
                continue
            out.append(rel.as_posix())
        return sorted(out)

    def label_dirs(self) -> list[str]:
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
        )

    def state(self) -> dict[str, frozenset[str]]:
        """{content hash: labels} of every labelled image in the folder tree."""
        out: dict[str, set[str]] = {}
        for rel in self.image_paths():
            parts = rel.split("/")
            digest = hash_bytes((self.root / rel).read_bytes())
            if len(parts) > 1 and not parts[0].startswith(("_", ".")):
                out.setdefault(digest, set()).add(parts[0])
        return {h: frozenset(v) for h, v in out.items()}


class Simulation:
    def __init__(self, seed: int, server_url: str, token: str, tmp: Path, stats: Stats) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.server_url = server_url
        self.token = token
        self.tmp = tmp
        self.stats = stats
        self.trace: list[str] = []
        self.task_type = self.rng.choice(("multi_class", "multi_label"))
        self.label_type = LABEL_TYPE[self.task_type]
        self.clones = [SimClone(f"c{i}", tmp / f"c{i}") for i in range(self.rng.choice((2, 2, 3)))]
        self.proxy = FaultProxy(server_url)
        self.api = httpx.Client(
            base_url=server_url + "recognition/v2/",
            headers={"Authorization": f"Token {token}"},
            timeout=30.0,
        )
        self.task_id = ""
        self.next_image = seed * 1000  # image seeds: distinct bytes per simulation
        self.added: set[str] = set()  # hashes ever added (anywhere)
        self.removed: set[str] = set()  # hashes some side removed from the task

    # -- the schedule -------------------------------------------------------------------------

    def run(self, steps: int = STEPS) -> None:
        self.proxy.start()
        try:
            self._setup()
            for _ in range(steps):
                self.stats.steps += 1
                roll = self.rng.random()
                if roll < 0.45:
                    self.local_edit(self.rng.choice(self.clones))
                elif roll < 0.65:
                    self.server_edit()
                else:
                    self.sync(self.rng.choice(self.clones), chaotic=True)
            self.quiesce()
            self.check()
        finally:
            self.proxy.stop()
            self.api.close()

    def _setup(self) -> None:
        first = self.clones[0]
        template = _template(self.task_type, self.server_url)
        for clone in self.clones:
            shutil.copytree(template, clone.root, symlinks=True)
        for _ in range(self.rng.randint(2, 4)):
            self.add_file(first, self.rng.choice(NAMES[:3]))
        self.sync(first, chaotic=False)
        conn = sqlite3.connect(first.root / ".localrepo" / "catalog.db")
        try:
            [(self.task_id,)] = conn.execute("SELECT remote_id FROM task").fetchall()
        finally:
            conn.close()
        for clone in self.clones[1:]:
            clone.repo.bind_root_task(self.task_id)  # a clone of the task, as `repo clone`
            self.sync(clone, chaotic=False)

    def log(self, text: str) -> None:
        self.trace.append(text)

    # -- syncs ----------------------------------------------------------------------------------

    def sync(self, clone: SimClone, *, chaotic: bool, policy: str | None = None) -> Any:
        """One in-process sync of `clone`; with `chaotic`, maybe faults, a crash and
        reordered completions. Returns the report, or None when the run stopped."""
        rng = random.Random(self.rng.getrandbits(64))
        policy = policy or rng.choice(("manual", "manual", "local", "remote"))
        crash = CrashHook(rng.randint(1, 6)) if chaotic and rng.random() < 0.4 else None
        rate = rng.choice((0.0, 0.05, 0.15, 0.3)) if chaotic else 0.0
        self.proxy.chaos = Chaos(random.Random(rng.getrandbits(64)), rate) if rate else None
        reorder = random.Random(rng.getrandbits(64)) if chaotic and rng.random() < 0.5 else None
        # Some chaotic syncs are the watcher's push: planned without a listing.
        view = "catalog" if chaotic and rng.random() < 0.4 else "listing"
        before = len(self.proxy.seen)
        faults.hooks.crash = crash
        faults.hooks.reorder = self._shuffler(reorder) if reorder else None
        outcome = "ok"
        report = None
        try:
            # A calm sync (the setup, the final rounds) talks to the server directly.
            url = self.proxy.url if chaotic else self.server_url
            report = engine_sync(clone.root, url, self.token, policy, JOBS, view)
        except Crash as exc:
            outcome = f"crash at {exc}"
            self.stats.crashes += 1
            self.stats.crash_points[str(exc)] += 1
        except LocalrepoError as exc:
            outcome = f"stopped: {exc}"
        finally:
            faults.hooks.crash = None
            faults.hooks.reorder = None
            self.proxy.chaos = None
        injected = [a for _m, _p, a in self.proxy.seen[before:] if a != "forward"]
        self.stats.faults.update(injected)
        self.stats.syncs += 1
        if report is not None and report.outcome.failed:
            outcome = f"partial: {report.outcome.failed[:3]}"
        self.log(
            f"sync {clone.name} policy={policy} view={view} faults={rate}:{injected} "
            f"crash@{crash.nth if crash else '-'} reorder={bool(reorder)} -> {outcome}"
        )
        return report

    @staticmethod
    def _shuffler(rng: random.Random) -> Any:
        def shuffle(items: list[Any]) -> list[Any]:
            items = list(items)
            rng.shuffle(items)
            return items

        return shuffle

    def quiesce(self) -> None:
        """Sync every clone, round after round, until no clone has anything to do."""
        for n in range(QUIET_ROUNDS):
            busy = []
            for clone in self.clones:
                report = self.sync(clone, chaotic=False, policy="remote")
                assert report is not None, self.fail(f"the final sync of {clone.name} stopped")
                [task] = report.tasks
                if task.plan is None or task.plan.ops or task.conflicts or report.outcome.failed:
                    ops = [(op.kind, (op.key or "")[:8], op.label) for op in task.plan.ops]
                    busy.append(f"{clone.name}: ops {ops} failed {report.outcome.failed}")
            if not busy:
                self.log(f"quiet after {n + 1} rounds")
                return
        raise AssertionError(self.fail(f"still busy after {QUIET_ROUNDS} rounds: {busy}"))

    # -- user edits on a clone ------------------------------------------------------------------

    def new_bytes(self) -> bytes:
        self.next_image += 1
        data = img(self.next_image)
        self.added.add(hash_bytes(data))
        return data

    def add_file(self, clone: SimClone, label: str, data: bytes | None = None) -> str:
        data = data if data is not None else self.new_bytes()
        folder = clone.root / label
        if self.rng.random() < 0.2:
            folder = folder / "sub"  # deeper folders inherit the label
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"i{hash_bytes(data)[:8]}.png"
        path.write_bytes(data)
        rel = path.relative_to(clone.root).as_posix()
        if self.task_type == "multi_label" and self.rng.random() < 0.3:
            other = self.rng.choice([n for n in NAMES if n != label])
            (clone.root / other).mkdir(exist_ok=True)
            os.link(path, clone.root / other / path.name)
            rel += f" +{other}"
        return rel

    def local_edit(self, clone: SimClone) -> None:
        self.stats.edits += 1
        rng = self.rng
        paths = [p for p in clone.image_paths() if not p.startswith("_")]
        kind = rng.choice(
            ("add", "add", "delete", "move", "unlabel", "bytes", "rename", "mkdir", "twin")
        )
        if kind in ("delete", "move", "unlabel", "bytes") and not paths:
            kind = "add"
        if kind == "rename" and not clone.label_dirs():
            kind = "add"
        if kind == "add":
            rel = self.add_file(clone, rng.choice(NAMES))
            self.log(f"{clone.name}: add {rel}")
        elif kind == "twin":  # the same bytes, added on two clones
            data = self.new_bytes()
            others = [c for c in self.clones if c is not clone]
            a = self.add_file(clone, rng.choice(NAMES), data)
            b = self.add_file(rng.choice(others), rng.choice(NAMES), data)
            self.log(f"{clone.name}: twin {a} / {b}")
        elif kind == "mkdir":
            name = rng.choice(NAMES)
            (clone.root / name).mkdir(exist_ok=True)
            self.log(f"{clone.name}: mkdir {name}")
        elif kind == "rename":
            old = rng.choice(clone.label_dirs())
            free = [n for n in NAMES if not (clone.root / n).exists()]
            if not free:
                return
            new = rng.choice(free)
            os.rename(clone.root / old, clone.root / new)
            self.log(f"{clone.name}: rename folder {old} -> {new}")
        else:
            rel = rng.choice(paths)
            path = clone.root / rel
            digest = hash_bytes(path.read_bytes())
            if kind == "delete":
                path.unlink()
                self.removed.add(digest)
            elif kind == "bytes":
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(self.new_bytes())
                os.replace(tmp, path)
                self.removed.add(digest)
            else:
                dest = "_unlabeled" if kind == "unlabel" else rng.choice(NAMES)
                if kind == "unlabel":
                    self.removed.add(digest)
                (clone.root / dest).mkdir(exist_ok=True)
                target = clone.root / dest / path.name
                if target.exists():
                    return
                os.rename(path, target)
                rel += f" -> {dest}/"
            self.log(f"{clone.name}: {kind} {rel}")

    # -- edits on the server, through the API ---------------------------------------------------

    def _get_all(self, path: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        url: str | None = path
        query: dict[str, Any] | None = {"page_size": 1000, **params}
        while url:
            r = self.api.get(url, params=query)
            r.raise_for_status()
            page = r.json()
            out += page["results"]
            url, query = page["next"], None
        return out

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        r = self.api.post(path, json=body)
        assert r.status_code < 300, self.fail(f"POST {path}: {r.status_code} {r.text}")
        return r.json() if r.content else None

    def task_labels(self) -> dict[str, str]:
        """{name: id} of the labels attached to the task (not the negative one)."""
        task = self.api.get(f"task/{self.task_id}/").json()
        attached = set(task.get("labels") or [])
        return {
            lab["name"]: lab["id"]
            for lab in self._get_all("label/")
            if lab["id"] in attached and not lab.get("negative_for_task")
        }

    def task_images(self) -> list[dict[str, Any]]:
        ids = list(self.task_labels().values())
        return self._get_all("training-image/", labels=",".join(ids)) if ids else []

    def server_edit(self) -> None:
        self.stats.server_edits += 1
        rng = self.rng
        labels = self.task_labels()
        images = sorted(self.task_images(), key=lambda i: i["meta_data"].get(META_HASH, ""))
        kind = rng.choice(("upload", "upload", "relabel", "delete", "rename", "new", "drop"))
        if kind in ("relabel", "delete") and not images:
            kind = "upload"
        if kind in ("rename", "drop") and not labels:
            kind = "new"
        if kind == "upload" and not labels:
            kind = "new"
        if kind == "upload":
            data = self.new_bytes()
            digest = hash_bytes(data)
            body = {
                "base64": base64.b64encode(data).decode(),
                "noresize": True,
                "meta_data": {META_HASH: HASH_PREFIX + digest, META_NAME: f"r{digest[:8]}.png"},
            }
            image = self._post("training-image/", body)
            k = 1 if self.task_type == "multi_class" else min(2, len(labels))
            names = rng.sample(sorted(labels), k)
            for name in names:
                self._post(f"training-image/{image['id']}/add-label/", {"label_id": labels[name]})
            self.log(f"server: upload {digest[:8]} {names}")
        elif kind == "relabel":
            image = rng.choice(images)
            digest = image["meta_data"][META_HASH].split(":", 1)[1]
            mine = [lab["name"] for lab in image["labels"] if lab["name"] in labels]
            name = rng.choice(sorted(labels))
            if self.task_type == "multi_class":
                for old in mine:
                    self._post(
                        f"training-image/{image['id']}/remove-label/", {"label_id": labels[old]}
                    )
                self._post(f"training-image/{image['id']}/add-label/", {"label_id": labels[name]})
            elif name in mine:
                self._post(
                    f"training-image/{image['id']}/remove-label/", {"label_id": labels[name]}
                )
                if len(mine) == 1:
                    self.removed.add(digest)
            else:
                self._post(f"training-image/{image['id']}/add-label/", {"label_id": labels[name]})
            self.log(f"server: relabel {digest[:8]} {mine} ~ {name}")
        elif kind == "delete":
            image = rng.choice(images)
            self.removed.add(image["meta_data"][META_HASH].split(":", 1)[1])
            r = self.api.delete(f"training-image/{image['id']}/")
            assert r.status_code == 204, self.fail(r.text)
            self.log(f"server: delete image {image['meta_data'][META_HASH][9:17]}")
        elif kind in ("rename", "drop"):
            name = rng.choice(sorted(labels))
            if kind == "rename":
                taken = {lab["name"] for lab in self._get_all("label/")}
                free = [n for n in NAMES if n not in taken]
                if not free:
                    return
                new = rng.choice(free)
                r = self.api.patch(f"label/{labels[name]}/", json={"name": new})
                assert r.status_code < 300, self.fail(r.text)
                self.log(f"server: rename label {name} -> {new}")
            else:
                for image in images:
                    if any(lab["name"] == name for lab in image["labels"]):
                        self.removed.add(image["meta_data"][META_HASH].split(":", 1)[1])
                r = self.api.delete(f"label/{labels[name]}")
                assert r.status_code == 204, self.fail(r.text)
                self.log(f"server: delete label {name}")
        else:  # a new label, attached to the task
            taken = {lab["name"] for lab in self._get_all("label/")}
            free = [n for n in NAMES if n not in taken]
            if not free:
                return
            name = rng.choice(free)
            lab = self._post("label/", {"name": name, "type": self.label_type})
            self._post(f"task/{self.task_id}/add-label/", {"label_id": lab["id"]})
            self.log(f"server: new label {name}")

    # -- the checks -----------------------------------------------------------------------------

    def server_state(self) -> dict[str, frozenset[str]]:
        """{content hash of the served bytes: task labels} of the task's images."""
        names = set(self.task_labels())
        out: dict[str, frozenset[str]] = {}
        for image in self.task_images():
            data = self.api.get(image["img_path"]).content
            digest = hash_bytes(data)
            assert digest not in out, self.fail(f"two remote images hold {digest}")
            out[digest] = frozenset(lab["name"] for lab in image["labels"]) & names
        return out

    def check(self) -> None:
        every_label = [lab["name"] for lab in self._get_all("label/")]
        dupes = [n for n, c in Counter(every_label).items() if c > 1]
        assert not dupes, self.fail(f"duplicate remote labels {dupes}")
        hashes = Counter(
            (i.get("meta_data") or {}).get(META_HASH) for i in self._get_all("training-image/")
        )
        dupes = [h for h, c in hashes.items() if c > 1]
        assert not dupes, self.fail(f"duplicate remote images {dupes}")
        server = self.server_state()
        for clone in self.clones:
            local = clone.state()
            if local != server:
                diff = {
                    h[:8]: (sorted(local.get(h, ())), sorted(server.get(h, ())))
                    for h in set(local) | set(server)
                    if local.get(h) != server.get(h)
                }
                raise AssertionError(
                    self.fail(f"{clone.name} differs from the server (local, server): {diff}")
                )
            client = sim_client(self.server_url, self.token)
            try:
                report = verify(clone.repo, client)
            finally:
                client.close()
            assert report.ok, self.fail(f"verify {clone.name}: {report.drift} {report.pending}")
        lost = sorted(h[:8] for h in self.added - self.removed - set(server))
        assert not lost, self.fail(f"images nobody removed are gone: {lost}")

    def fail(self, message: str) -> str:
        trace = "\n  ".join(self.trace)
        return (
            f"simulation seed {self.seed}: {message}\n"
            f"rerun: {SEED_ENV}={self.seed} pytest tests/sim\n"
            f"schedule ({self.task_type}, {len(self.clones)} clones):\n  {trace}"
        )


def record(stats: Stats) -> None:
    """Append the counts to LOCALREPO_SIM_STATS (one JSON line), if it is set."""
    path = os.environ.get("LOCALREPO_SIM_STATS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(stats.as_dict()) + "\n")
