"""The seeded multi-clone simulation (issues 7 and 16).

Over 500 lines because one Simulation is the model: every edit updates what its check expects.

One real localrepo-server, two or three clones (real folder trees, real catalogs), and a
schedule drawn from `random.Random(seed)`: user edits on each clone (add, delete, move,
unlabel, byte edit, label folder rename, new label folder, the same bytes added on two
clones, damage a file and repair or delete it later, rename a label folder to a name the
scanner refuses and back), edits on the server through the API (upload, relabel, delete
an image, rename, create or delete a label; names from arbitrary Unicode), and syncs. A
sync runs the engine in-process, through a fault proxy (tests/support/faultproxy.py, one per
clone) in chaos mode, maybe with a crash at a random crash point of the executor
(localrepo.sync.faults.hooks: nothing after it commits, the next sync restarts from disk
and catalog) and with the executor's completions reordered. Some steps sync two or three
clones at once, interleaved one HTTP request at a time by a seeded scheduler
(simturns.py); some relabel on the server and then crash a sync while it moves files
(the `mid_move` and `mid_relabel` points). Some seeds add a second task of the same
type whose labels have the first task's names, edited on the server (and maybe synced
by a clone of its own).

Before the end the simulated user repairs every damaged file, renames every refused
folder, and renames every server label that has no folder. Then every clone syncs (no
faults, policy `remote`) until a round where every sync is in sync and planned nothing,
at most QUIET_ROUNDS rounds, and: every clone holds what the server holds (same images by
content hash, same labels per image), `repo verify` agrees, no two remote images share
bytes, no two labels of a task share a name, no multi_class image has two categories,
every image that was added and that no side removed is there, and the second task holds
exactly what its own edits made, none of it on the first task's clones.

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
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from support.faultproxy import Chaos, FaultProxy
from support.imagegen import image_bytes
from support.inproc import engine_sync, sim_client

from localrepo.errors import LocalrepoError
from localrepo.labelnames import folder_verdict
from localrepo.repository import Repository, init_repository
from localrepo.scan.hashing import hash_bytes
from localrepo.sync import faults
from localrepo.sync.snapshot import HASH_PREFIX, META_HASH, META_NAME
from localrepo.sync.verify import verify
from localrepo.vocabulary import LABEL_TYPE

from .simnames import accepted_folder, has_folder, is_odd, refused_folder, server_name
from .simturns import TurnScheduler, turn_summary

SEED_ENV = "LOCALREPO_SIM_SEED"
NAMES = ("cat", "dog", "owl", "fox", "elk", "yak")
SIZE = (12, 9)
TASK = "sim"
OTHER_TASK = "sim-other"  # the second task of a workspace (same type, same label names)
STEPS = int(os.environ.get("LOCALREPO_SIM_STEPS", "12"))  # schedule steps per seed
# Requests at a time within a sync. Above 1 a seed no longer reruns identically (thread
# timing decides which request meets which fault): for soaks that look for races.
JOBS = int(os.environ.get("LOCALREPO_SIM_JOBS", "1"))
QUIET_ROUNDS = 3  # the bound on the final rounds of syncs
LOCAL_POINTS = frozenset({"mid_move", "mid_relabel"})  # crash points of local file ops
DAMAGE_KINDS = ("truncate", "zero", "garbage", "fifo", "symlink")
# The edits drawn (twice as likely when listed twice): on a clone, on a clone's damaged
# files and refused folders, on the server, on the server's second task.
LOCAL_EDIT_KINDS = ("add", "add", "delete", "move", "unlabel", "bytes", "rename", "mkdir", "twin")
HELD_EDIT_KINDS = ("damage", "damage", "repair", "repair", "rm_damaged", "refuse", "unrefuse")
SERVER_EDIT_KINDS = ("upload", "upload", "relabel", "delete", "rename", "new", "drop")
OTHER_EDIT_KINDS = ("upload", "relabel", "delete", "share", "share", "new", "rename")
STATS_FIELDS = ("seeds", "steps", "edits", "server_edits", "syncs", "crashes", "faults")


class Crash(BaseException):
    """Raised at a crash point: like kill -9, nothing after it commits (a BaseException:
    no `except Exception` of the engine catches it)."""


def img(n: int) -> bytes:
    return image_bytes(n, size=SIZE, fmt="PNG")


def _digest(image: dict[str, Any]) -> str:
    return str((image.get("meta_data") or {}).get(META_HASH, "")).split(":", 1)[-1]


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
    concurrent_steps: int = 0  # steps that synced 2 or 3 clones at once
    concurrent_syncs: int = 0  # the syncs of those steps
    turns: int = 0  # requests (and starts) the turn scheduler released
    damaged: Counter[str] = field(default_factory=Counter)  # by kind
    damage_ends: Counter[str] = field(default_factory=Counter)  # repaired / deleted / final
    odd_names: Counter[str] = field(default_factory=Counter)  # clone / server / no_folder
    refused_renames: int = 0
    refused_fixed: int = 0
    task2_seeds: int = 0
    task2_edits: int = 0
    task2_clone_syncs: int = 0
    local_crash_steps: int = 0  # server relabels followed by a sync crashing mid-move
    shared_deletes: int = 0  # first-task deletes of an image the second task labels too

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
            "concurrent_steps": self.concurrent_steps,
            "concurrent_syncs": self.concurrent_syncs,
            "turns": self.turns,
            "damaged": dict(self.damaged),
            "damage_ends": dict(self.damage_ends),
            "odd_names": dict(self.odd_names),
            "refused_renames": self.refused_renames,
            "refused_fixed": self.refused_fixed,
            "task2_seeds": self.task2_seeds,
            "task2_edits": self.task2_edits,
            "task2_clone_syncs": self.task2_clone_syncs,
            "local_crash_steps": self.local_crash_steps,
            "shared_deletes": self.shared_deletes,
        }


_TEMPLATES: dict[tuple[str, str, str], Path] = {}


def _template(task_type: str, url: str, task: str = TASK) -> Path:
    """A new repository, made once per process and copied for each clone (running the
    catalog's migrations costs ~0.3 s a repository)."""
    key = (task_type, url, task)
    if key not in _TEMPLATES:
        base = Path(tempfile.mkdtemp(prefix="localrepo-sim-template-"))
        atexit.register(shutil.rmtree, base, True)
        _TEMPLATES[key] = init_repository(
            base / "repo", task=task, task_type=task_type, remote=url
        ).root
    return _TEMPLATES[key]


class CrashHook:
    """Crashes the n-th time a crash point (of `points`, if given) is passed; once
    crashed, every later point of the run (in any worker thread) crashes too."""

    def __init__(self, nth: int, points: frozenset[str] | None = None) -> None:
        self.nth = nth
        self.points = points
        self.count = 0
        self.crashed: str | None = None

    def __call__(self, point: str) -> None:
        if self.crashed is not None:
            raise Crash(point)
        if self.points is not None and point not in self.points:
            return
        self.count += 1
        if self.count == self.nth:
            self.crashed = point
            raise Crash(point)

    def __str__(self) -> str:
        where = "/".join(sorted(self.points)) if self.points else ""
        return f"{self.nth}{'@' + where if where else ''}"


@dataclass
class SyncDraw:
    """What one sync meets, drawn from the schedule's generator."""

    policy: str
    crash: CrashHook | None
    rate: float
    chaos_rng: random.Random
    reorder: random.Random | None
    view: str


@dataclass
class SimClone:
    name: str
    root: Path
    task: str = TASK
    # {path: (its good bytes, how it was damaged)}: damaged files not yet repaired.
    damaged: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    # {refused folder name: the accepted name it had}
    refused: dict[str, str] = field(default_factory=dict)
    # Images on the server when a file of theirs was damaged or its folder refused.
    guarded: set[str] = field(default_factory=set)

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

    def editable_paths(self) -> list[str]:
        """Files a user edit may pick: valid, and not in a refused folder."""
        return [
            p
            for p in self.image_paths()
            if not p.startswith("_")
            and p not in self.damaged
            and p.split("/")[0] not in self.refused
        ]

    def label_dirs(self) -> list[str]:
        """The first-level folders the scanner reads as labels."""
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and folder_verdict(p.name).label is not None
        )

    def state(self) -> dict[str, frozenset[str]]:
        """{content hash: labels} of every labelled image in the folder tree."""
        out: dict[str, set[str]] = {}
        for rel in self.image_paths():
            parts = rel.split("/")
            label = folder_verdict(parts[0]).label if len(parts) > 1 else None
            if label is not None:
                digest = hash_bytes((self.root / rel).read_bytes())
                out.setdefault(digest, set()).add(label)
        return {h: frozenset(v) for h, v in out.items()}

    def held_hashes(self) -> set[str]:
        """The images this clone's damaged files and refused folders hold back."""
        out = {hash_bytes(data) for data, _how in self.damaged.values()}
        for folder in self.refused:
            for path in (self.root / folder).rglob("*"):
                if path.is_file() and str(path.relative_to(self.root)) not in self.damaged:
                    out.add(hash_bytes(path.read_bytes()))
        return out

    def rename_folder(self, old: str, new: str) -> None:
        """A user's folder rename; the damaged files below it move along."""
        os.rename(self.root / old, self.root / new)
        prefix = old + "/"
        self.damaged = {
            (new + "/" + p[len(prefix) :] if p.startswith(prefix) else p): v
            for p, v in self.damaged.items()
        }


@dataclass
class TaskView:
    """What an edit on the server sees of a task: its labels ({name: id} and
    {id: name}) and its images."""

    labels: dict[str, str]
    ids: dict[str, str]
    images: list[dict[str, Any]]


@dataclass
class OtherTask:
    """The second task: its id, and what its own edits made ({hash: label names})."""

    task_id: str
    images: dict[str, set[str]] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    clone: SimClone | None = None


class Simulation:
    def __init__(
        self,
        seed: int,
        server_url: str,
        token: str,
        tmp: Path,
        stats: Stats,
        steps: int = STEPS,
    ) -> None:
        self.seed = seed
        self.steps = steps
        self.rng = random.Random(seed)
        self.server_url = server_url
        self.token = token
        self.tmp = tmp
        self.stats = stats
        self.trace: list[str] = []
        self.task_type = self.rng.choice(("multi_class", "multi_label"))
        self.label_type = LABEL_TYPE[self.task_type]
        self.clones = [SimClone(f"c{i}", tmp / f"c{i}") for i in range(self.rng.choice((2, 2, 3)))]
        self.proxies: dict[str, FaultProxy] = {}
        self.api = httpx.Client(
            base_url=server_url + "recognition/v2/",
            headers={"Authorization": f"Token {token}"},
            timeout=30.0,
        )
        self.task_id = ""
        self.next_image = seed * 1000  # image seeds: distinct bytes per simulation
        self.added: set[str] = set()  # hashes ever added (anywhere)
        self.removed: set[str] = set()  # hashes some side removed from the task
        self.other: OtherTask | None = None

    # -- the schedule -------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._setup()
            for _ in range(self.steps):
                self.stats.steps += 1
                roll = self.rng.random()
                if roll < 0.42:
                    self.local_edit(self.rng.choice(self.clones))
                elif roll < 0.6:
                    if self.other is not None and self.rng.random() < 0.4:
                        self.other_edit()
                    else:
                        self.server_edit()
                elif roll < 0.68:
                    self.sync_together()
                elif roll < 0.74:
                    self.relabel_then_crash()
                elif self.other is not None and self.other.clone and self.rng.random() < 0.15:
                    self.stats.task2_clone_syncs += 1
                    self.sync(self.other.clone, chaotic=True)
                else:
                    self.sync(self.rng.choice(self.clones), chaotic=True)
            self.tidy()
            self.quiesce()
            self.check()
        finally:
            for proxy in self.proxies.values():
                proxy.stop()
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
        if self.rng.random() < 0.3:
            self._setup_other()

    def _setup_other(self) -> None:
        """A second task of the same type whose labels have the first task's names."""
        self.stats.task2_seeds += 1
        task = self._post("task/", {"name": OTHER_TASK, "type": self.task_type})
        self.other = other = OtherTask(task["id"])
        for name in sorted(self.task_labels()):
            self._other_new_label(name)
        for _ in range(self.rng.randint(1, 3)):
            self._other_upload()
        if self.rng.random() < 0.5:
            clone = SimClone("o0", self.tmp / "o0", task=OTHER_TASK)
            template = _template(self.task_type, self.server_url, OTHER_TASK)
            shutil.copytree(template, clone.root, symlinks=True)
            other.clone = clone
            clone.repo.bind_root_task(other.task_id)  # a clone of the task, as `repo clone`
            self.sync(clone, chaotic=False)
        self.log(f"other task: labels {sorted(other.names)} clone={other.clone is not None}")

    def log(self, text: str) -> None:
        self.trace.append(text)

    # -- syncs ----------------------------------------------------------------------------------

    def proxy_for(self, clone: SimClone) -> FaultProxy:
        """Each clone talks through a proxy of its own: concurrent syncs draw their faults
        from their own generators."""
        if clone.name not in self.proxies:
            self.proxies[clone.name] = FaultProxy(self.server_url).start()
        return self.proxies[clone.name]

    def _draw(self, chaotic: bool, policy: str | None) -> SyncDraw:
        rng = random.Random(self.rng.getrandbits(64))
        policy = policy or rng.choice(("manual", "manual", "local", "remote"))
        crash = CrashHook(rng.randint(1, 6)) if chaotic and rng.random() < 0.4 else None
        rate = rng.choice((0.0, 0.05, 0.15, 0.3)) if chaotic else 0.0
        chaos_rng = random.Random(rng.getrandbits(64))
        reorder = random.Random(rng.getrandbits(64)) if chaotic and rng.random() < 0.5 else None
        # Some chaotic syncs are the watcher's push: planned without a listing.
        view = "catalog" if chaotic and rng.random() < 0.4 else "listing"
        return SyncDraw(policy, crash, rate, chaos_rng, reorder, view)

    def _engine(
        self, clone: SimClone, draw: SyncDraw, url: str, gate: Callable[[], None] | None = None
    ) -> tuple[Any, str]:
        """(report or None, outcome) of one in-process sync."""
        try:
            report = engine_sync(clone.root, url, self.token, draw.policy, JOBS, draw.view, gate)
        except Crash as exc:
            self.stats.crashes += 1
            self.stats.crash_points[str(exc)] += 1
            return None, f"crash at {exc}"
        except LocalrepoError as exc:
            return None, f"stopped: {exc}"
        if report.outcome.failed:
            return report, f"partial: {report.outcome.failed[:3]}"
        return report, "ok"

    def _account(
        self, clone: SimClone, draw: SyncDraw, before: int, outcome: str, head: str = "sync"
    ) -> None:
        proxy = self.proxy_for(clone)
        injected = [a for _m, _p, a in proxy.seen[before:] if a != "forward"]
        self.stats.faults.update(injected)
        self.stats.syncs += 1
        self.log(
            f"{head} {clone.name} policy={draw.policy} view={draw.view} "
            f"faults={draw.rate}:{injected} crash@{draw.crash or '-'} "
            f"reorder={bool(draw.reorder)} -> {outcome}"
        )

    def sync(
        self,
        clone: SimClone,
        *,
        chaotic: bool,
        policy: str | None = None,
        crash: CrashHook | None = None,
        view: str | None = None,
    ) -> Any:
        """One in-process sync of `clone`; with `chaotic`, maybe faults, a crash and
        reordered completions. Returns the report, or None when the run stopped."""
        draw = self._draw(chaotic, policy)
        if crash is not None:
            draw.crash = crash
        draw.view = view or draw.view
        proxy = self.proxy_for(clone)
        proxy.chaos = Chaos(draw.chaos_rng, draw.rate) if draw.rate else None
        before = len(proxy.seen)
        faults.hooks.crash = draw.crash
        faults.hooks.reorder = self._shuffler(draw.reorder) if draw.reorder else None
        try:
            # A calm sync (the setup, the final rounds) talks to the server directly.
            url = proxy.url if chaotic else self.server_url
            report, outcome = self._engine(clone, draw, url)
        finally:
            faults.hooks.crash = None
            faults.hooks.reorder = None
            proxy.chaos = None
        self._account(clone, draw, before, outcome)
        if chaotic:
            self.check_held()
        return report

    def sync_together(self) -> None:
        """Two (sometimes three) clones sync at once, each in its own thread, one HTTP
        request at a time in an order the seed decides (simturns.py)."""
        n = 3 if len(self.clones) == 3 and self.rng.random() < 0.4 else 2
        clones = self.rng.sample(self.clones, n)
        draws = {c.name: self._draw(True, None) for c in clones}
        sched = TurnScheduler(random.Random(self.rng.getrandbits(64)), [c.name for c in clones])
        self.stats.concurrent_steps += 1
        self.stats.concurrent_syncs += n
        before = {}
        for clone in clones:
            proxy = self.proxy_for(clone)
            draw = draws[clone.name]
            proxy.chaos = Chaos(draw.chaos_rng, draw.rate) if draw.rate else None
            before[clone.name] = len(proxy.seen)
        # One global hook each; the scheduler hands a call to the sync that holds the turn.
        faults.hooks.crash = sched.dispatch({k: d.crash for k, d in draws.items()})
        faults.hooks.reorder = sched.dispatch(
            {k: self._shuffler(d.reorder) if d.reorder else None for k, d in draws.items()}
        )
        outcomes: dict[str, str] = {}
        errors: list[BaseException] = []

        # With JOBS > 1 a sync has several requests in flight, so "every sync waits at
        # the gate" has no meaning: the syncs run free (a race soak, not reproducible),
        # and with no turn holder the crash and reorder hooks do nothing.
        gated = JOBS == 1

        def run(clone: SimClone) -> None:
            try:
                if gated:
                    sched.gate(clone.name)  # the start is a turn too: scans run one at a time
                _report, outcomes[clone.name] = self._engine(
                    clone,
                    draws[clone.name],
                    self.proxy_for(clone).url,
                    (lambda: sched.gate(clone.name)) if gated else None,
                )
            except BaseException as exc:  # a harness or engine bug: reported below
                outcomes[clone.name] = f"error {exc!r}"
                errors.append(exc)
            finally:
                sched.finish(clone.name)

        threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in clones]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=300)
            stuck = [c.name for c, t in zip(clones, threads, strict=True) if t.is_alive()]
            assert not stuck, self.fail(f"concurrent syncs stuck: {stuck}")
        finally:
            faults.hooks.crash = None
            faults.hooks.reorder = None
            for clone in clones:
                self.proxy_for(clone).chaos = None
        self.stats.turns += len(sched.turns)
        self.log(f"together {[c.name for c in clones]} turns: {turn_summary(sched.turns)}")
        for clone in clones:
            self._account(
                clone, draws[clone.name], before[clone.name], outcomes[clone.name], "  sync"
            )
        self.check_held()
        if errors:
            raise AssertionError(self.fail(f"a concurrent sync raised {errors[0]!r}")) from errors[
                0
            ]

    def relabel_then_crash(self) -> None:
        """Remote relabels (or a label rename), then a sync of a clone that must move its
        files, killed at `mid_move` / `mid_relabel`."""
        self.stats.local_crash_steps += 1
        if self.rng.random() < 0.3:
            self.server_edit("rename")
        else:
            for _ in range(self.rng.randint(1, 3)):
                self.server_edit("relabel", prefer_drop=True)
        clone = self.rng.choice(self.clones)
        crash = CrashHook(self.rng.randint(1, 2), LOCAL_POINTS)
        # A listing: the watcher's push (catalog view) would not pull the relabels.
        self.sync(clone, chaotic=True, crash=crash, view="listing")

    @staticmethod
    def _shuffler(rng: random.Random) -> Callable[[list[Any]], list[Any]]:
        def shuffle(items: list[Any]) -> list[Any]:
            items = list(items)
            rng.shuffle(items)
            return items

        return shuffle

    def all_clones(self) -> list[SimClone]:
        extra = [self.other.clone] if self.other is not None and self.other.clone else []
        return self.clones + extra

    def quiesce(self) -> None:
        """Sync every clone, round after round, until every sync is in sync and plans
        nothing; at most QUIET_ROUNDS rounds."""
        busy: list[str] = []
        for n in range(QUIET_ROUNDS):
            busy = []
            for clone in self.all_clones():
                report = self.sync(clone, chaotic=False, policy="remote")
                assert report is not None, self.fail(f"the final sync of {clone.name} stopped")
                [task] = report.tasks
                ops = (
                    [(op.kind, (op.key or "")[:8], op.label) for op in task.plan.ops]
                    if (task.plan)
                    else ["no plan"]
                )
                if ops or not report.in_sync:
                    held = [(h.path, h.reason) for h in task.held]
                    busy.append(
                        f"{clone.name}: ops {ops} failed {report.outcome.failed} "
                        f"conflicts {report.conflicts} held {held} stop {task.stop}"
                    )
            if not busy:
                self.log(f"quiet after {n + 1} rounds")
                return
        raise AssertionError(self.fail(f"still busy after {QUIET_ROUNDS} rounds: {busy}"))

    # -- user edits on a clone ------------------------------------------------------------------

    def new_bytes(self, count: bool = True) -> bytes:
        self.next_image += 1
        data = img(self.next_image)
        if count:
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

    def clone_folder(self, clone: SimClone, fresh: bool = False) -> str:
        """A label folder name for a user edit: mostly a plain name, sometimes one of the
        clone's label folders (escaped server names among them), sometimes arbitrary
        Unicode. `fresh`: one that does not exist on the clone."""
        taken = {p.name for p in clone.root.iterdir()}
        roll = self.rng.random()
        if roll < 0.15:
            name = accepted_folder(self.rng, taken)
            if name is not None:
                self.stats.odd_names["clone"] += 1
                return name
        dirs = [d for d in clone.label_dirs() if not fresh]
        if roll < 0.35 and dirs:
            return self.rng.choice(dirs)
        free = [n for n in NAMES if n not in taken] if fresh else list(NAMES)
        return self.rng.choice(free) if free else (accepted_folder(self.rng, taken) or "zzz")

    def local_edit(self, clone: SimClone) -> None:
        self.stats.edits += 1
        paths = clone.editable_paths()
        kind = self._local_edit_kind(clone, paths)
        edit = _LOCAL_EDITS.get(kind)
        if edit is not None:
            edit(self, clone, paths)
        else:  # delete, bytes, move, unlabel: an edit of one file
            self._local_file_edit(clone, paths, kind)

    def _local_edit_kind(self, clone: SimClone, paths: list[str]) -> str:
        """Draw the kind of a clone edit; one with nothing to act on becomes another."""
        rng = self.rng
        kind = rng.choice(LOCAL_EDIT_KINDS)
        if rng.random() < 0.3:
            kind = rng.choice(HELD_EDIT_KINDS)
        if kind in ("repair", "rm_damaged") and not clone.damaged:
            kind = "damage"
        if kind == "unrefuse" and not clone.refused:
            kind = "refuse"
        if kind in ("delete", "move", "unlabel", "bytes", "damage") and not paths:
            kind = "add"
        if kind in ("rename", "refuse") and not clone.label_dirs():
            kind = "add"
        return kind

    def _local_add(self, clone: SimClone, paths: list[str]) -> None:
        rel = self.add_file(clone, self.clone_folder(clone))
        self.log(f"{clone.name}: add {rel}")

    def _local_twin(self, clone: SimClone, paths: list[str]) -> None:
        """The same bytes, added on two clones."""
        data = self.new_bytes()
        others = [c for c in self.clones if c is not clone]
        other = self.rng.choice(others)
        a = self.add_file(clone, self.clone_folder(clone), data)
        b = self.add_file(other, self.clone_folder(other), data)
        self.log(f"{clone.name}: twin {a} / {b}")

    def _local_mkdir(self, clone: SimClone, paths: list[str]) -> None:
        name = self.clone_folder(clone)
        (clone.root / name).mkdir(exist_ok=True)
        self.log(f"{clone.name}: mkdir {name!r}")

    def _local_rename(self, clone: SimClone, paths: list[str]) -> None:
        old = self.rng.choice(clone.label_dirs())
        new = self.clone_folder(clone, fresh=True)
        if (clone.root / new).exists():
            return
        clone.rename_folder(old, new)
        self.log(f"{clone.name}: rename folder {old!r} -> {new!r}")

    def _local_refuse(self, clone: SimClone, paths: list[str]) -> None:
        """Rename a label folder to a name the scanner refuses."""
        old = self.rng.choice(clone.label_dirs())
        new = refused_folder(self.rng, old, {p.name for p in clone.root.iterdir()})
        if new is None:
            return
        clone.rename_folder(old, new)
        clone.refused[new] = old
        clone.guarded |= clone.held_hashes() & self.server_hashes()
        self.stats.refused_renames += 1
        self.log(f"{clone.name}: rename folder {old!r} -> {new!r} (refused)")

    def _local_unrefuse(self, clone: SimClone, paths: list[str]) -> None:
        self.unrefuse(clone, self.rng.choice(sorted(clone.refused)))

    def _local_damage(self, clone: SimClone, paths: list[str]) -> None:
        self.damage(clone, self.rng.choice(paths))

    def _local_repair(self, clone: SimClone, paths: list[str]) -> None:
        self.repair(clone, self.rng.choice(sorted(clone.damaged)))

    def _local_rm_damaged(self, clone: SimClone, paths: list[str]) -> None:
        rel = self.rng.choice(sorted(clone.damaged))
        self._check_still_damaged(clone, rel)
        data, how = clone.damaged.pop(rel)
        (clone.root / rel).unlink()
        self.removed.add(hash_bytes(data))
        self.stats.damage_ends["deleted"] += 1
        self.log(f"{clone.name}: delete damaged ({how}) {rel}")

    def _local_file_edit(self, clone: SimClone, paths: list[str], kind: str) -> None:
        """Delete a file, change its bytes, move it to another folder or to _unlabeled."""
        rel = self.rng.choice(paths)
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
            dest = "_unlabeled" if kind == "unlabel" else self.clone_folder(clone)
            if kind == "unlabel":
                self.removed.add(digest)
            (clone.root / dest).mkdir(exist_ok=True)
            target = clone.root / dest / path.name
            if target.exists():
                return
            os.rename(path, target)
            rel += f" -> {dest}/"
        self.log(f"{clone.name}: {kind} {rel}")

    def damage(self, clone: SimClone, rel: str) -> None:
        """Break a file: truncated, emptied, garbage, or unreadable (as root, chmod does
        not stop reads: a FIFO or a dangling symlink takes its place)."""
        path = clone.root / rel
        data = path.read_bytes()
        how = self.rng.choice(DAMAGE_KINDS)
        if how in ("truncate", "zero", "garbage"):
            bad = {
                "truncate": data[: len(data) // 2],
                "zero": b"",
                "garbage": self.rng.randbytes(len(data)),
            }[how]
            if path.stat().st_nlink == 1:
                path.write_bytes(bad)  # in place: the same inode, as an editor would
            else:  # a hard-linked tag copy: only this name is damaged
                tmp = path.with_name(path.name + ".dmg")
                tmp.write_bytes(bad)
                os.replace(tmp, path)
        else:
            path.unlink()
            if how == "fifo":
                os.mkfifo(path)
            else:
                os.symlink(f"gone-{path.name}", path)
        clone.damaged[rel] = (data, how)
        clone.guarded |= {hash_bytes(data)} & self.server_hashes()
        self.stats.damaged[how] += 1
        self.log(f"{clone.name}: damage ({how}) {rel}")

    def _check_still_damaged(self, clone: SimClone, rel: str) -> None:
        # A held file is never moved, replaced or trashed by a sync.
        assert os.path.lexists(clone.root / rel), self.fail(
            f"{clone.name}: the damaged file {rel} is gone (a sync moved or removed it)"
        )

    def repair(self, clone: SimClone, rel: str, why: str = "repaired") -> None:
        """Restore the exact original bytes."""
        self._check_still_damaged(clone, rel)
        data, how = clone.damaged.pop(rel)
        path = clone.root / rel
        if how in ("fifo", "symlink"):
            path.unlink()
        path.write_bytes(data)
        self.stats.damage_ends[why] += 1
        self.log(f"{clone.name}: repair ({how}) {rel}")

    def unrefuse(self, clone: SimClone, folder: str) -> None:
        """Rename a refused folder to an accepted name (its old one, when free)."""
        old = clone.refused.pop(folder)
        taken = {p.name for p in clone.root.iterdir()}
        new = old if old not in taken and self.rng.random() < 0.6 else None
        new = new or self.clone_folder(clone, fresh=True)
        if new in taken:
            new = accepted_folder(self.rng, taken) or f"fixed{len(taken)}"
        clone.rename_folder(folder, new)
        self.stats.refused_fixed += 1
        self.log(f"{clone.name}: rename refused folder {folder!r} -> {new!r}")

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

    def label_ids_of(self, task_id: str) -> dict[str, str]:
        """{id: name} of the labels attached to a task (not the negative one); two may
        share a name (an engine bug, that the checks report)."""
        task = self.api.get(f"task/{task_id}/").json()
        attached = set(task.get("labels") or [])
        return {
            lab["id"]: lab["name"]
            for lab in self._get_all("label/")
            if lab["id"] in attached and not lab.get("negative_for_task")
        }

    def labels_of(self, task_id: str) -> dict[str, str]:
        """{name: id} of the labels attached to a task (not the negative one)."""
        return {name: label_id for label_id, name in self.label_ids_of(task_id).items()}

    def task_labels(self) -> dict[str, str]:
        return self.labels_of(self.task_id)

    def images_of(self, label_ids: list[str]) -> list[dict[str, Any]]:
        images = self._get_all("training-image/", labels=",".join(label_ids)) if label_ids else []
        return sorted(images, key=_digest)

    def task_images(self) -> list[dict[str, Any]]:
        return self.images_of(list(self.task_labels().values()))

    def free_names(self) -> set[str]:
        """Names a new first-task label may take: any but those of labels outside the
        second task (the second task's names are fair game: that is the point)."""
        other = set(self.label_ids_of(self.other.task_id)) if self.other else set()
        return {lab["name"] for lab in self._get_all("label/") if lab["id"] not in other}

    def server_label_name(self, taken: set[str]) -> str:
        if self.rng.random() < 0.35:
            name = server_name(self.rng, taken)
            self.stats.odd_names["server"] += is_odd(name)
            self.stats.odd_names["no_folder"] += not has_folder(name)
            return name
        free = [n for n in NAMES if n not in taken]
        return self.rng.choice(free) if free else server_name(self.rng, taken)

    def _upload(self, data: bytes) -> dict[str, Any]:
        digest = hash_bytes(data)
        body = {
            "base64": base64.b64encode(data).decode(),
            "noresize": True,
            "meta_data": {META_HASH: HASH_PREFIX + digest, META_NAME: f"r{digest[:8]}.png"},
        }
        image: dict[str, Any] = self._post("training-image/", body)
        return image

    def server_edit(self, force: str | None = None, prefer_drop: bool = False) -> None:
        self.stats.server_edits += 1
        labels = self.task_labels()
        ids = {v: k for k, v in labels.items()}
        images = self.task_images()
        kind = force or self.rng.choice(SERVER_EDIT_KINDS)
        if prefer_drop and self.task_type == "multi_label":
            # A dropped tag whose copy must leave its folder: the mid_relabel point.
            images = [
                i for i in images if sum(lab["id"] in ids for lab in i["labels"]) > 1
            ] or images
        if kind in ("relabel", "delete") and not images:
            kind = "upload"
        if kind in ("rename", "drop") and not labels:
            kind = "new"
        if kind == "upload" and not labels:
            kind = "new"
        edit = _SERVER_EDITS.get(kind, _SERVER_EDITS["new"])
        edit(self, TaskView(labels, ids, images), prefer_drop)

    def _server_upload(self, view: TaskView, prefer_drop: bool) -> None:
        labels = view.labels
        data = self.new_bytes()
        image = self._upload(data)
        k = 1 if self.task_type == "multi_class" else min(2, len(labels))
        names = self.rng.sample(sorted(labels), k)
        for name in names:
            self._post(f"training-image/{image['id']}/add-label/", {"label_id": labels[name]})
        self.log(f"server: upload {hash_bytes(data)[:8]} {names}")

    def _server_relabel(self, view: TaskView, prefer_drop: bool) -> None:
        rng, labels, ids = self.rng, view.labels, view.ids
        image = rng.choice(view.images)
        digest = _digest(image)
        mine = sorted(ids[lab["id"]] for lab in image["labels"] if lab["id"] in ids)
        name = rng.choice(sorted(labels))
        if prefer_drop and self.task_type == "multi_label" and len(mine) > 1:
            name = rng.choice(mine)  # a tag dropped: its copy leaves (mid_relabel)
        elif prefer_drop and self.task_type == "multi_class" and len(labels) > 1:
            name = rng.choice(sorted(set(labels) - set(mine)))  # a move (mid_move)
        if self.task_type == "multi_class":
            for old in mine:
                self._post(f"training-image/{image['id']}/remove-label/", {"label_id": labels[old]})
            self._post(f"training-image/{image['id']}/add-label/", {"label_id": labels[name]})
        elif name in mine:
            self._post(f"training-image/{image['id']}/remove-label/", {"label_id": labels[name]})
            if len(mine) == 1:
                self.removed.add(digest)
        else:
            self._post(f"training-image/{image['id']}/add-label/", {"label_id": labels[name]})
        self.log(f"server: relabel {digest[:8]} {mine} ~ {name!r}")

    def _server_delete(self, view: TaskView, prefer_drop: bool) -> None:
        image = self.rng.choice(view.images)
        self.removed.add(_digest(image))
        r = self.api.delete(f"training-image/{image['id']}/")
        assert r.status_code == 204, self.fail(r.text)
        if self.other is not None:  # a shared image goes from the second task too
            self.other.images.pop(_digest(image), None)
        self.log(f"server: delete image {_digest(image)[:8]}")

    def _server_rename(self, view: TaskView, prefer_drop: bool) -> None:
        name = self.rng.choice(sorted(view.labels))
        new = self.server_label_name(self.free_names())
        self.rename_label(view.labels[name], name, new)

    def _server_drop(self, view: TaskView, prefer_drop: bool) -> None:
        labels = view.labels
        name = self.rng.choice(sorted(labels))
        for image in view.images:
            if any(lab["id"] == labels[name] for lab in image["labels"]):
                self.removed.add(_digest(image))
        r = self.api.delete(f"label/{labels[name]}")
        assert r.status_code == 204, self.fail(r.text)
        self.log(f"server: delete label {name!r}")

    def _server_new(self, view: TaskView, prefer_drop: bool) -> None:
        """A new label, attached to the task."""
        name = self.server_label_name(self.free_names())
        lab = self._post("label/", {"name": name, "type": self.label_type})
        self._post(f"task/{self.task_id}/add-label/", {"label_id": lab["id"]})
        self.log(f"server: new label {name!r}")

    def rename_label(self, label_id: str, old: str, new: str) -> None:
        r = self.api.patch(f"label/{label_id}/", json={"name": new})
        assert r.status_code < 300, self.fail(r.text)
        self.log(f"server: rename label {old!r} -> {new!r}")

    # -- the second task ------------------------------------------------------------------------

    def _other_new_label(self, name: str) -> None:
        assert self.other is not None
        lab = self._post("label/", {"name": name, "type": self.label_type})
        self._post(f"task/{self.other.task_id}/add-label/", {"label_id": lab["id"]})
        self.other.names.add(name)

    def _other_upload(self) -> None:
        assert self.other is not None
        labels = self.labels_of(self.other.task_id)
        if not labels:
            return
        data = self.new_bytes(count=False)  # not the first task's: never "lost" there
        image = self._upload(data)
        k = 1 if self.task_type == "multi_class" else self.rng.randint(1, min(2, len(labels)))
        names = self.rng.sample(sorted(labels), k)
        for name in names:
            self._post(f"training-image/{image['id']}/add-label/", {"label_id": labels[name]})
        self.other.images[hash_bytes(data)] = set(names)
        self.log(f"other: upload {hash_bytes(data)[:8]} {names}")

    def other_edit(self) -> None:
        """An edit of the second task on the server (its model follows)."""
        other = self.other
        assert other is not None
        self.stats.task2_edits += 1
        labels = self.labels_of(other.task_id)
        ids = {v: k for k, v in labels.items()}
        first = self.task_labels()
        view = TaskView(labels, ids, self.images_of(list(labels.values())))
        kind = self.rng.choice(OTHER_EDIT_KINDS)
        if kind in ("relabel", "delete") and not view.images:
            kind = "upload"
        if kind in ("upload", "share", "rename") and not labels:
            kind = "new"
        _OTHER_EDITS[kind](self, other, view, first)

    def _other_edit_upload(self, other: OtherTask, view: TaskView, first: dict[str, str]) -> None:
        self._other_upload()

    def _other_edit_relabel(self, other: OtherTask, view: TaskView, first: dict[str, str]) -> None:
        labels, ids = view.labels, view.ids
        image = self.rng.choice(view.images)
        digest = _digest(image)
        mine = sorted(ids[lab["id"]] for lab in image["labels"] if lab["id"] in ids)
        name = self.rng.choice(sorted(labels))
        if self.task_type == "multi_class" or name not in mine:
            drop = mine if self.task_type == "multi_class" else []
            for old in drop:
                self._post(f"training-image/{image['id']}/remove-label/", {"label_id": labels[old]})
            self._post(f"training-image/{image['id']}/add-label/", {"label_id": labels[name]})
            now = (set(mine) - set(drop)) | {name}
        else:
            self._post(f"training-image/{image['id']}/remove-label/", {"label_id": labels[name]})
            now = set(mine) - {name}
        if now:
            other.images[digest] = now
        else:
            other.images.pop(digest, None)
        self.log(f"other: relabel {digest[:8]} {mine} ~ {name!r}")

    def _other_edit_delete(self, other: OtherTask, view: TaskView, first: dict[str, str]) -> None:
        """Delete an image only the second task has."""
        firsts = set(first.values())
        alone = [i for i in view.images if not any(lab["id"] in firsts for lab in i["labels"])]
        if not alone:
            return
        image = self.rng.choice(alone)
        r = self.api.delete(f"training-image/{image['id']}/")
        assert r.status_code == 204, self.fail(r.text)
        other.images.pop(_digest(image), None)
        self.log(f"other: delete image {_digest(image)[:8]}")

    def _other_edit_share(self, other: OtherTask, view: TaskView, first: dict[str, str]) -> None:
        """A first-task image gets a label of the second task."""
        theirs = {_digest(i) for i in view.images}
        candidates = [i for i in self.task_images() if _digest(i) not in theirs]
        if not candidates:
            return
        image = self.rng.choice(candidates)
        name = self.rng.choice(sorted(view.labels))
        self._post(f"training-image/{image['id']}/add-label/", {"label_id": view.labels[name]})
        digest = _digest(image)
        other.images[digest] = {name}
        self.log(f"other: share {digest[:8]} +{name!r}")
        if self.rng.random() < 0.7:
            self._delete_everywhere_on(digest)

    def _other_label_name(self, labels: dict[str, str], first: dict[str, str]) -> str:
        """A name for a second-task label: preferably one the first task has and this
        one lacks."""
        names = sorted(n for n in first if n not in labels)
        return self.rng.choice(names) if names else self.server_label_name(set(labels))

    def _other_edit_new(self, other: OtherTask, view: TaskView, first: dict[str, str]) -> None:
        name = self._other_label_name(view.labels, first)
        self._other_new_label(name)
        self.log(f"other: new label {name!r}")

    def _other_edit_rename(self, other: OtherTask, view: TaskView, first: dict[str, str]) -> None:
        labels = view.labels
        name = self.rng.choice(sorted(labels))
        new = self._other_label_name(labels, first)
        r = self.api.patch(f"label/{labels[name]}/", json={"name": new})
        assert r.status_code < 300, self.fail(r.text)
        other.names = (other.names - {name}) | {new}
        for tags in other.images.values():
            if name in tags:
                tags.discard(name)
                tags.add(new)
        self.log(f"other: rename label {name!r} -> {new!r}")

    def server_hashes(self) -> set[str]:
        return {_digest(i) for i in self.task_images()}

    def check_held(self) -> None:
        """A damaged file or a refused folder never deletes its image: every image a clone
        holds back, that was on the server then and that no side removed since, is still
        there."""
        guarded = set()
        for clone in self.clones:
            clone.guarded &= clone.held_hashes()
            guarded |= clone.guarded
        guarded -= self.removed
        if not guarded:
            return
        gone = sorted(h[:8] for h in guarded - self.server_hashes())
        assert not gone, self.fail(f"held-back images deleted from the server: {gone}")

    def _delete_everywhere_on(self, digest: str) -> None:
        """The user deletes every copy of an image on a clone of the first task that has
        it: its sync may unlink only the first task's labels (the image carries the
        second's) and must not delete the image."""
        for clone in self.rng.sample(self.clones, len(self.clones)):
            paths = [
                p
                for p in clone.editable_paths()
                if hash_bytes((clone.root / p).read_bytes()) == digest
            ]
            if paths:
                break
        else:
            return
        for rel in paths:
            (clone.root / rel).unlink()
        self.removed.add(digest)
        self.stats.shared_deletes += 1
        self.log(f"{clone.name}: delete shared {digest[:8]} ({len(paths)} files)")

    # -- before the final rounds ----------------------------------------------------------------

    def tidy(self) -> None:
        """The user repairs every damaged file, renames every refused folder, and renames
        every server label that has no folder (so every image can reach every clone)."""
        for clone in self.clones:
            for rel in sorted(clone.damaged):
                self.repair(clone, rel, "repaired_at_end")
            for folder in sorted(clone.refused):
                self.unrefuse(clone, folder)
        tasks = [self.task_id] + ([self.other.task_id] if self.other else [])
        for task_id in tasks:
            labels = self.labels_of(task_id)
            for name, label_id in sorted(labels.items()):
                if has_folder(name):
                    continue
                taken = self.free_names() | set(labels)
                new = next(n for n in (*NAMES, *(f"v{i}" for i in range(99))) if n not in taken)
                self.rename_label(label_id, name, new)
                labels[new] = labels.pop(name)
                if self.other is not None and task_id == self.other.task_id:
                    self.other.names = (self.other.names - {name}) | {new}
                    for tags in self.other.images.values():
                        if name in tags:
                            tags.discard(name)
                            tags.add(new)

    # -- the checks -----------------------------------------------------------------------------

    def server_state(self, task_id: str) -> dict[str, frozenset[str]]:
        """{content hash of the served bytes: its labels of that task} of a task's images."""
        names = self.label_ids_of(task_id)
        twins = [n for n, c in Counter(names.values()).items() if c > 1]
        assert not twins, self.fail(f"task {task_id} has two labels named {twins}")
        out: dict[str, frozenset[str]] = {}
        for image in self.images_of(list(names)):
            data = self.api.get(image["img_path"]).content
            digest = hash_bytes(data)
            assert digest not in out, self.fail(f"two remote images hold {digest}")
            mine = frozenset(names[lab["id"]] for lab in image["labels"] if lab["id"] in names)
            if self.task_type == "multi_class":
                assert len(mine) <= 1, self.fail(f"image {digest[:8]} has categories {mine}")
            out[digest] = mine
        return out

    def check(self) -> None:
        first = self.label_ids_of(self.task_id)
        second = self.label_ids_of(self.other.task_id) if self.other else {}
        shared = sorted(first[i] for i in set(first) & set(second))
        assert not shared, self.fail(f"labels attached to both tasks: {shared}")
        outside = [lab["name"] for lab in self._get_all("label/") if lab["id"] not in second]
        dupes = [n for n, c in Counter(outside).items() if c > 1]
        assert not dupes, self.fail(f"duplicate remote labels {dupes}")
        hashes = Counter(_digest(i) for i in self._get_all("training-image/"))
        dupes = [h for h, c in hashes.items() if c > 1]
        assert not dupes, self.fail(f"duplicate remote images {dupes}")
        server = self.server_state(self.task_id)
        for clone in self.clones:
            self._check_clone(clone, server)
        lost = sorted(h[:8] for h in self.added - self.removed - set(server))
        assert not lost, self.fail(f"images nobody removed are gone: {lost}")
        if self.other is not None:
            self._check_other(server)

    def _check_clone(self, clone: SimClone, server: dict[str, frozenset[str]]) -> None:
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

    def _check_other(self, first: dict[str, frozenset[str]]) -> None:
        """The second task holds exactly what its own edits made, and none of its own
        images reached the first task's clones."""
        other = self.other
        assert other is not None
        server = self.server_state(other.task_id)
        expected = {h: frozenset(v) for h, v in other.images.items()}
        if server != expected:
            diff = {
                h[:8]: (sorted(server.get(h, ())), sorted(expected.get(h, ())))
                for h in set(server) | set(expected)
                if server.get(h) != expected.get(h)
            }
            raise AssertionError(self.fail(f"second task (server, expected): {diff}"))
        names = set(self.labels_of(other.task_id))
        assert names == other.names, self.fail(f"second task labels {names} != {other.names}")
        alone = set(server) - set(first)
        for clone in self.clones:
            leaked = sorted(h[:8] for h in alone & set(clone.state()))
            assert not leaked, self.fail(f"{clone.name} holds second-task images {leaked}")
        if other.clone is not None:
            self._check_clone(other.clone, server)

    def fail(self, message: str) -> str:
        trace = "\n  ".join(self.trace)
        return (
            f"simulation seed {self.seed}: {message}\n"
            f"rerun: {SEED_ENV}={self.seed} pytest tests/sim\n"
            f"schedule ({self.task_type}, {len(self.clones)} clones):\n  {trace}"
        )


# The edits by kind, drawn by Simulation.local_edit (the edits of one file are not
# listed: they share Simulation._local_file_edit), server_edit and other_edit.
_LOCAL_EDITS: dict[str, Callable[[Simulation, SimClone, list[str]], None]] = {
    "add": Simulation._local_add,
    "twin": Simulation._local_twin,
    "mkdir": Simulation._local_mkdir,
    "rename": Simulation._local_rename,
    "refuse": Simulation._local_refuse,
    "unrefuse": Simulation._local_unrefuse,
    "damage": Simulation._local_damage,
    "repair": Simulation._local_repair,
    "rm_damaged": Simulation._local_rm_damaged,
}
_SERVER_EDITS: dict[str, Callable[[Simulation, TaskView, bool], None]] = {
    "upload": Simulation._server_upload,
    "relabel": Simulation._server_relabel,
    "delete": Simulation._server_delete,
    "rename": Simulation._server_rename,
    "drop": Simulation._server_drop,
    "new": Simulation._server_new,
}
_OTHER_EDITS: dict[str, Callable[[Simulation, OtherTask, TaskView, dict[str, str]], None]] = {
    "upload": Simulation._other_edit_upload,
    "relabel": Simulation._other_edit_relabel,
    "delete": Simulation._other_edit_delete,
    "share": Simulation._other_edit_share,
    "new": Simulation._other_edit_new,
    "rename": Simulation._other_edit_rename,
}


def record(stats: Stats) -> None:
    """Append the counts to LOCALREPO_SIM_STATS (one JSON line), if it is set."""
    path = os.environ.get("LOCALREPO_SIM_STATS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(stats.as_dict()) + "\n")
