"""`make cluster`: several localrepo-server processes on this machine, under load, with
processes killed mid-run; then proof that nothing acknowledged was lost.

    .venv/bin/python scripts/cluster.py [--small] [--s3 auto|on|off] [--keep DIR]

Starts PostgreSQL (a throwaway cluster), an S3 server on loopback when the server can
use one (moto; `--s3 auto` asks `serve --help` for `--storage`), `--apis` API processes
behind a round-robin proxy (scripts/clusterkit/roundrobin.py) and `--workers` training
workers, all with the command lines of scripts/clusterkit/commands.py (the ones
deploy/compose.yaml and deploy/systemd run). Without S3 the processes share one data
folder. Then, all at once: clones syncing through `repo` in loops (adding images,
relabelling), the official SDK uploading, trainings queued over HTTP; once 40% of the
SDK's uploads are sent, one API process is SIGKILLed, and so is a training worker
(the one holding a running training, when it can be caught at it).

At the end, after a last round of syncs: every acknowledged image is on the server with
its bytes, every queued training was trained exactly once, and every clone agrees with
the others and with the server (scripts/clusterkit/checks.py). It prints its counts and
exits 1 on any violation. `tests/cluster/test_cluster.py` runs it at small scale.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
for extra in (HERE, HERE.parent / "tests"):  # clusterkit; the tests' PostgreSQL and images
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import httpx  # noqa: E402
from clusterkit import checks, commands, observe, services, workload  # noqa: E402
from clusterkit.roundrobin import RoundRobin, free_port  # noqa: E402
from support.pgcluster import PostgresCluster  # noqa: E402

T0 = time.monotonic()


def say(what: str) -> None:
    """Progress on stderr, with the seconds since the start."""
    print(f"[{time.monotonic() - T0:6.1f} s] {what}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Scale:
    clones: int = 5
    rounds: int = 12  # each clone: add images, relabel one, sync; this many times
    per_round: int = 40
    seed_images: int = 30  # the first clone's images before the others clone it
    sdk_images: int = 1200
    sdk_clients: int = 2  # threads, each uploading its share through its own SDK client
    trainings: int = 6
    train_every: float = 2.0
    apis: int = 3
    workers: int = 2


FULL = Scale()
SMALL = Scale(
    clones=3,
    rounds=2,
    per_round=4,
    seed_images=18,
    sdk_images=30,
    sdk_clients=1,
    trainings=3,
    train_every=0.3,
)


@dataclass
class Report:
    counts: dict[str, int]
    violations: list[str]
    kills: list[str]
    faults: Counter[str]
    proxy: Counter[str]
    storage: str
    seconds: float = 0.0
    settle_rounds: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"cluster: storage {self.storage}, {self.seconds:.0f} s"]
        out += [f"  {name}: {value}" for name, value in {**self.counts, **self.extra}.items()]
        out.append(f"  final sync rounds: {self.settle_rounds}")
        out += [f"  killed: {k}" for k in self.kills]
        out.append(f"  kills: {len(self.kills)}")
        faults = sum(self.faults.values())
        out.append(f"  faults the clients saw: {faults}")
        out += [f"    {n} x {what}" for what, n in sorted(self.faults.items())]
        out += [f"  proxy: {n} x {what}" for what, n in sorted(self.proxy.items())]
        out.append(f"  violations: {len(self.violations)}")
        out += [f"    {v}" for v in self.violations]
        return out


@dataclass
class Cluster:
    """The running processes, and how to reach them."""

    root: Path
    pg: PostgresCluster
    env: dict[str, str]
    dsn: str
    storage: str
    apis: list[services.Process] = field(default_factory=list)
    workers: list[services.Process] = field(default_factory=list)
    proxy: RoundRobin | None = None
    s3: services.ObjectStore | None = None
    token: str = ""
    own_pg: bool = True  # started here (else the caller's, left running)

    @property
    def url(self) -> str:
        assert self.proxy is not None
        return f"http://localhost:{self.proxy.port}/"

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        for proc in [*self.workers, *self.apis]:
            with contextlib.suppress(Exception):
                proc.stop()
        if self.s3 is not None:
            self.s3.stop()
        if self.own_pg:
            self.pg.stop()


def start(root: Path, scale: Scale, s3: bool, pg: PostgresCluster | None = None) -> Cluster:
    own_pg = pg is None
    if pg is None:
        say("starting PostgreSQL")
        pg = PostgresCluster().start()
    url = pg.new_database()
    dsn = f"host=127.0.0.1 port={pg.port} user=postgres dbname={url.rsplit('/', 1)[1]}"
    env = services.base_environment()
    env["LOCALREPO_SERVER_DATA"] = str(root / "data")
    env["LOCALREPO_SERVER_DATABASE_URL"] = url
    cluster = Cluster(root, pg, env, dsn, "a data folder shared by every process", own_pg=own_pg)
    try:
        if s3:
            cluster.s3 = services.ObjectStore(root, free_port()).start()
            env.update(cluster.s3.environment())
            cluster.storage = f"S3 (moto on {cluster.s3.endpoint})"
        services.run_server_cli(commands.init(), env)
        services.run_server_cli(["user", "create", "cluster"], env)
        cluster.token = services.run_server_cli(["token", "create", "cluster"], env).strip()
        say(f"starting {scale.apis} API processes and {scale.workers} workers")
        ports = [free_port() for _ in range(scale.apis)]
        for i, port in enumerate(ports):
            args = commands.api("127.0.0.1", port)
            cluster.apis.append(services.Process(f"api-{i}", args, env, root / f"api-{i}.log"))
        for proc in cluster.apis:
            proc.start()
        for proc, port in zip(cluster.apis, ports, strict=True):
            services.wait_ready(port, proc)
        for i in range(scale.workers):
            log = root / f"worker-{i}.log"
            cluster.workers.append(services.Process(f"worker-{i}", commands.worker(), env, log))
            cluster.workers[-1].start()
        cluster.proxy = RoundRobin([("127.0.0.1", p) for p in ports]).start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def make_clones(cluster: Cluster, scale: Scale, ledger: workload.Ledger) -> list[workload.Clone]:
    env = services.base_environment()
    env.update(LOCALREPO_TOKEN=cluster.token, LOCALREPO_CONFIG_DIR=str(cluster.root / "config"))
    parent = cluster.root / "clones"
    first = workload.Clone("c0", parent / "c0", env)
    first.root.mkdir(parents=True)
    _must(first.run("init", "--task", "cluster", "--type", "multi_class", "--remote", cluster.url))
    for i in range(scale.seed_images):  # evenly over the labels: every label can train
        label = workload.CLONE_LABELS[i % len(workload.CLONE_LABELS)]
        (first.root / label).mkdir(exist_ok=True)
        (first.root / label / f"seed-{i}.jpg").write_bytes(workload.picture(i))
    if first.sync(ledger) is None:
        raise RuntimeError("the first clone's first sync failed")
    task = first.remote_task_id()
    clones = [workload.Clone(f"c{k}", parent / f"c{k}", env) for k in range(1, scale.clones)]
    with ThreadPoolExecutor(len(clones) or 1) as pool:
        done = pool.map(
            lambda c: c.run("clone", cluster.url, "--remote-task", task, c.name, cwd=parent),
            clones,
        )
        for proc in done:
            _must(proc)
    return [first, *clones]


def _must(proc: object) -> None:
    code = getattr(proc, "returncode", 1)
    if code != 0:
        raise RuntimeError(f"repo failed ({code}): {getattr(proc, 'stderr', '')}")


def killer(cluster: Cluster, go: threading.Event, trainer: threading.Thread, kills: list[str]):
    """Once `go` is set: SIGKILL an API process, then the worker holding a running
    training (polled from the database), or, if none is caught before the trainings are
    all queued and done, an idle worker."""
    import psycopg

    go.wait()
    victim = cluster.apis[len(cluster.apis) // 2]
    victim.kill()
    say(f"killed {victim.name}")
    kills.append(f"{victim.name} (pid {victim.pid}), under load")
    by_pid = {w.pid: w for w in cluster.workers}
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        while True:
            for holder in observe.running_workers(conn):
                worker = by_pid.get(int(holder.rpartition(":")[2] or 0))
                if worker is not None:
                    worker.kill()
                    say(f"killed {worker.name}")
                    kills.append(f"{worker.name} (pid {worker.pid}), holding a running training")
                    return
            if not trainer.is_alive() and observe.unfinished_jobs(conn) == 0:
                worker = cluster.workers[0]
                worker.kill()
                kills.append(f"{worker.name} (pid {worker.pid}), idle: no training caught")
                return
            time.sleep(0.01)


def wait_trainings(cluster: Cluster, timeout: float) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        while observe.unfinished_jobs(conn) and time.monotonic() < deadline:
            time.sleep(0.2)


def load(cluster: Cluster, scale: Scale, ledger: workload.Ledger, kills: list[str]):
    """Clones, SDK and trainings at once, with the kills; returns the clones."""
    say(f"the first clone, then {scale.clones - 1} more")
    clones = make_clones(cluster, scale, ledger)
    say("load: clones syncing, SDK uploading, trainings")
    client, sdk_task, label_ids = workload.sdk_setup(cluster.url, cluster.token)
    stop = threading.Event()
    go = threading.Event()
    threads = [
        threading.Thread(
            target=workload.clone_loop,
            args=(c, scale.rounds, scale.per_round, 1_000_000 * (k + 1), ledger, stop),
        )
        for k, c in enumerate(clones)
    ]
    for k in range(scale.sdk_clients):
        seeds = range(100_000_000 + k, 100_000_000 + scale.sdk_images, scale.sdk_clients)
        client = workload.sdk_client(cluster.url, cluster.token) if k else client
        threads.append(
            threading.Thread(target=workload.sdk_loop, args=(client, label_ids, seeds, ledger, go))
        )
    api = httpx.Client(
        base_url=cluster.url + "recognition/v2/",
        headers={"Authorization": f"Token {cluster.token}"},
        timeout=60.0,
    )
    tasks = [clones[0].remote_task_id(), sdk_task]

    def trainings() -> None:
        go.wait()  # the trainings overlap the kills
        deadline = time.monotonic() + 600
        workload.train_loop(api, tasks, scale.trainings, scale.train_every, ledger, deadline)

    trainer = threading.Thread(target=trainings)
    kill_thread = threading.Thread(target=killer, args=(cluster, go, trainer, kills))
    try:
        for t in [*threads, trainer, kill_thread]:
            t.start()
        for t in threads:
            t.join()
        go.set()  # in case the SDK never got to 40%
        trainer.join()
        kill_thread.join()
    finally:
        stop.set()
        api.close()
    return clones


def run_cluster(scale: Scale, root: Path, s3: bool, pg: PostgresCluster | None = None) -> Report:
    """The whole run in `root`; `pg`: a running PostgreSQL to make its database in (the
    tests'), else one is started and stopped here."""
    started = time.monotonic()
    cluster = start(root, scale, s3, pg)
    ledger = workload.Ledger()
    kills: list[str] = []
    try:
        clones = load(cluster, scale, ledger, kills)
        say("waiting for the trainings")
        wait_trainings(cluster, timeout=300)
        say("final sync rounds")
        rounds = workload.settle(clones, ledger)
        say("reading the end state")
        with httpx.Client(
            base_url=cluster.url + "recognition/v2/",
            headers={"Authorization": f"Token {cluster.token}"},
            timeout=60.0,
        ) as api:
            images = observe.server_images(api)
            labels = frozenset(
                lab["name"] for lab in observe.task_labels(api, clones[0].remote_task_id())
            )
        import psycopg

        with psycopg.connect(cluster.dsn) as conn:
            jobs = observe.jobs(conn)
        observed = checks.Observed(
            sdk_acked=dict(ledger.sdk_images),
            clone_acked=frozenset(ledger.clone_hashes),
            trainings_acked=tuple(ledger.trainings),
            server_images=images,
            jobs=jobs,
            trained_logged=observe.trained_logged([w.log_text() for w in cluster.workers]),
            clones={c.name: c.labels_by_hash() for c in clones},
            clone_task_labels=labels,
        )
        assert cluster.proxy is not None
        report = Report(
            counts=checks.counts(observed),
            violations=checks.violations(observed),
            kills=kills,
            faults=ledger.faults,
            proxy=Counter(cluster.proxy.stats),
            storage=cluster.storage,
            settle_rounds=rounds,
            extra={"syncs that exited 0": ledger.done["syncs"]},
        )
    finally:
        cluster.stop()
    return replace(report, seconds=time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="the CI test's scale")
    parser.add_argument("--s3", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (logs)")
    for name, default in vars(FULL).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=None)
    args = parser.parse_args(argv)
    scale = SMALL if args.small else FULL
    scale = replace(
        scale, **{k: getattr(args, k) for k in vars(FULL) if getattr(args, k) is not None}
    )
    s3 = args.s3 == "on" or (args.s3 == "auto" and services.s3_available())
    root = args.keep or Path(tempfile.mkdtemp(prefix="localrepo-cluster-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        report = run_cluster(scale, root, s3)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print("\n".join(report.lines()), flush=True)
    return 1 if report.violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
