"""A million images in a repository: scan, status and a small change, at two sizes.

    python benchmarks/million.py [--files 100000,1000000] [--labels 50] [--change 100]
                                 [--rounds 3] [--workdir DIR] [--keep] [--reuse] [--sync]

For each size N it builds a tree of N distinct small real JPEGs (issue 22, item 5) and
measures, in this one run:

- the initial `repo scan` of all N into the catalog (once: it takes minutes at 1M);
- the first `repo status` after it, when all N are new (not synced yet);
- a no-change `repo status` of the synced repository (mark_synced) against two stat walks of the same tree, run alongside in
  rounds: `find ROOT -type f -printf ...` and a bare Python `os.scandir` walk that
  stats every entry (what a status cannot skip, in the language it is written in);
- a change of `--change` files (a third added, a third rewritten, a third deleted), then
  `repo status`, against the no-change status of the same size: the change's own cost,
  which must not grow with N;
- the peak memory (max RSS) of each command.

The files are distinct: every one is one of 300 tiny JPEGs (64x48) with its own number
in a JPEG comment segment, so every file has its own content hash, and the scan reads,
hashes and checks every one (hard links would not do: the scanner reads one name per
inode and copies its result to the others, pool.py; only a large first scan reads every
name, scan/firstscan.py). A 4 KB block each: about 4 GB of disk at 1,000,000.

The tree is what a labelled photo collection looks like: `--labels` label folders at
the root (the task's root), each split into year/month subfolders, some a level
deeper (`2024/03/day_14`), of a few hundred to a couple of thousand files, named like
camera files (`IMG_0123456.jpg`).

Generated trees are deleted at the end unless `--keep`.

With `--sync`, also a no-change `repo sync` of the tree against a localrepo-server
(its own `serve --dev`) holding the same N images, seeded in bulk (sync_no_change).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import httpx  # noqa: E402
from benchcommon import compile_package, start_dev_server  # noqa: E402

REPO = [sys.executable, "-m", "localrepo"]
BASES = 300  # distinct base JPEGs; each file is one of them with its own comment
OLD = time.time() - 3600  # mtimes well outside the racy window
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


# -- the tree -----------------------------------------------------------------------------


def label_names(labels: int) -> list[str]:
    kinds = [
        "cat", "dog", "bird", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe",
        "car", "truck", "bus", "bicycle", "motorcycle", "train", "boat", "airplane", "tree",
        "flower", "mountain", "beach", "forest", "river", "bridge", "building", "street",
        "person", "face", "hand", "chair", "table", "sofa", "bed", "lamp", "cup", "bottle",
        "book", "clock", "phone", "laptop", "keyboard", "apple", "banana", "orange", "pizza",
        "cake", "sandwich", "broccoli", "carrot",
    ]  # fmt: skip
    return [kinds[i % len(kinds)] + ("" if i < len(kinds) else f"_{i}") for i in range(labels)]


def folders_for(files: int, labels: int) -> list[str]:
    """The leaf folders, each holding about the same share: label/year/month, and in
    every third label a level deeper (label/year/month/day_NN)."""
    rng = random.Random(files)
    per_leaf = 1500
    leaves = max(labels, files // per_leaf)
    out: list[str] = []
    names = label_names(labels)
    for i in range(leaves):
        label = names[i % labels]
        k = i // labels
        year, month = 2015 + k // 12 % 10, k % 12 + 1
        if i % labels % 3 == 0:
            out.append(f"{label}/{year}/{month:02d}/day_{rng.randrange(1, 29):02d}_{k}")
        else:
            out.append(f"{label}/{year}/{month:02d}" + (f"_{k // 120}" if k >= 120 else ""))
    return out


def bases() -> list[bytes]:
    from support.imagegen import image_bytes

    return [image_bytes(seed, size=(64, 48)) for seed in range(BASES)]


def jpeg(base: bytes, n: int) -> bytes:
    """`base` with a comment segment (COM) carrying `n` after SOI: a distinct file."""
    tag = f"localrepo bench {n}".encode()
    return base[:2] + b"\xff\xfe" + (len(tag) + 2).to_bytes(2, "big") + tag + base[2:]


def _write_share(root: Path, plan: list[tuple[str, int, int]], images: list[bytes]) -> None:
    for folder, start, count in plan:
        d = root / folder
        d.mkdir(parents=True, exist_ok=True)
        for n in range(start, start + count):
            p = os.path.join(d, f"IMG_{n:07d}.jpg")
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, jpeg(images[n % BASES], n))
            os.close(fd)
            os.utime(p, (OLD, OLD))


def build_tree(root: Path, files: int, labels: int) -> float:
    """N files in the realistic tree, written by two processes; returns the seconds."""
    t0 = time.perf_counter()
    images = bases()
    leaves = folders_for(files, labels)
    plan: list[tuple[str, int, int]] = []
    start = 0
    for i, folder in enumerate(leaves):
        count = files // len(leaves) + (1 if i < files % len(leaves) else 0)
        plan.append((folder, start, count))
        start += count
    pids = []
    for k in range(2):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _write_share(root, plan[k::2], images)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit("building the tree failed")
    return time.perf_counter() - t0


# -- measuring ----------------------------------------------------------------------------


def run(
    cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, int]:
    """Wall seconds and peak RSS (MB) of the command (and its reaped descendants).

    Started through GNU time where there is one: a process's peak RSS counts the memory
    of the process it was forked from until its exec, so a command started from this
    one would never measure less than this benchmark holds (a million paths listed to
    pick the changed files from, say); time's own is a few MB."""
    t0 = time.perf_counter()
    with tempfile.NamedTemporaryFile("r") as peak_file:
        launcher = [GNU_TIME, "-f", "%M", "-o", peak_file.name] if GNU_TIME else []
        proc = subprocess.Popen(
            [*launcher, *cmd], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if code not in (0, 3):
            raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{err}")
        lines = peak_file.read().split()
    peak_kb = int(lines[-1]) if GNU_TIME and lines else usage.ru_maxrss
    return elapsed, peak_kb // 1024


def scandir_walk(root: str) -> int:
    """The floor in Python: list every folder with os.scandir and lstat every entry
    (what a no-change status cannot skip), keeping nothing. Returns the files seen."""
    n = 0
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                if e.is_dir(follow_symlinks=False):
                    if e.name != ".localrepo":
                        stack.append(e.path)
                elif st.st_size:
                    n += 1
    return n


def scandir_baseline(root: Path) -> tuple[float, int]:
    """scandir_walk in a fresh interpreter, as `repo status` runs (time, peak MB)."""
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); import million;"
        f" million.scandir_walk({str(root)!r})"
    )
    return run([sys.executable, "-c", code])


def change_files(tree: Path, files: int, count: int, round_: int, images: list[bytes]) -> None:
    """`count` files changed: a third added (new names in existing folders), a third
    rewritten (new content, same name), a third deleted. Spread over the whole tree."""
    rng = random.Random(round_)
    existing = [
        os.path.join(d, f) for d, _, fs in os.walk(tree) if ".localrepo" not in d for f in fs
    ]
    picked = rng.sample(existing, count)
    third = count // 3
    for i, p in enumerate(picked[:third]):  # added beside an existing file
        n = files + round_ * count + i
        Path(p).with_name(f"IMG_{n:07d}.jpg").write_bytes(jpeg(images[n % BASES], n))
    for i, p in enumerate(picked[third : 2 * third]):  # rewritten
        n = 10**8 + round_ * count + i
        Path(p).write_bytes(jpeg(images[n % BASES], n))
    for p in picked[2 * third :]:  # deleted
        os.unlink(p)
    time.sleep(2.1)  # out of the racy window, or the next status would re-hash them


def best(xs: list[tuple[float, int]]) -> tuple[float, int]:
    return min(s for s, _ in xs), max(m for _, m in xs)


def measure(size: int, args: argparse.Namespace, images: list[bytes]) -> dict[str, float]:
    tree = args.workdir / f"million-{size}"
    status_cmd = [*REPO, "-q", "-C", str(tree), "status"]
    reuse = args.reuse and (tree / ".localrepo" / "synced").exists()
    if tree.exists() and not reuse:
        shutil.rmtree(tree)
    print(f"\n== {size:,} files in {args.labels} label folders ({tree})", flush=True)
    out: dict[str, float] = {}
    scan_s = scan_mb = first_s = first_mb = 0.0
    try:
        if reuse:
            print("  the tree, scanned and synced, kept by an earlier --keep run")
        else:
            built = build_tree(tree, size, args.labels)
            print(f"  built in {built:.1f} s", flush=True)
            subprocess.run([*REPO, "-q", "init", str(tree), "--task", "bench"], check=True)
            scan_s, scan_mb = run([*REPO, "-q", "-C", str(tree), "scan"])
            print(f"  initial repo scan                 {scan_s:8.2f} s  peak {scan_mb:4d} MB")
            first_s, first_mb = run(status_cmd)  # also settles the racy rows
            print(f"  first status ({size:,} new)  {first_s:8.2f} s  peak {first_mb:4d} MB")
            mark_synced(tree)
            (tree / ".localrepo" / "synced").touch()
        find_cmd = ["find", str(tree), "-type", "f", "-printf", r"%T@ %s %p\n"]
        sides: dict[str, list[tuple[float, int]]] = {"status": [], "find": [], "scandir": []}
        for _ in range(args.rounds):
            sides["status"].append(run(status_cmd))
            sides["find"].append(run(find_cmd))
            sides["scandir"].append(scandir_baseline(tree))
        st_s, st_mb = best(sides["status"])
        find_s, find_mb = best(sides["find"])
        sd_s, sd_mb = best(sides["scandir"])
        print(f"  no-change status (best of {args.rounds}, in rounds)")
        print(f"    find -printf (stat walk)        {find_s:8.3f} s  peak {find_mb:4d} MB")
        print(f"    Python os.scandir stat walk     {sd_s:8.3f} s  peak {sd_mb:4d} MB")
        print(f"    repo status                     {st_s:8.3f} s  peak {st_mb:4d} MB")
        print(
            f"    ratio repo/find {st_s / find_s:.2f} (target <= 1.5: {verdict(st_s / find_s)}),"
            f" repo/scandir {st_s / sd_s:.2f}"
        )
        changes = []
        for r in range(args.rounds):
            change_files(
                tree, size, args.change, r + (int(time.time()) % 10**6 * 10 if reuse else 0), images
            )
            changes.append(run(status_cmd))
        ch_s, ch_mb = best(changes)
        extra = ch_s - st_s
        print(f"  {args.change}-file change, then status (best of {args.rounds})")
        print(f"    repo status                     {ch_s:8.3f} s  peak {ch_mb:4d} MB")
        print(f"    the change's own cost (minus a no-change status) {extra:6.3f} s")
        out = {
            "scan_s": scan_s,
            "scan_mb": scan_mb,
            "first_s": first_s,
            "first_mb": first_mb,
            "status_s": st_s,
            "status_mb": st_mb,
            "find_s": find_s,
            "scandir_s": sd_s,
            "change_s": ch_s,
            "change_mb": ch_mb,
            "extra_s": extra,
        }
        if args.sync:
            out.update(sync_no_change(tree, args, st_s))
    finally:
        if not args.keep:
            t0 = time.perf_counter()
            shutil.rmtree(tree, ignore_errors=True)
            print(f"  removed the tree in {time.perf_counter() - t0:.1f} s", flush=True)
    return out


def mark_synced(tree: Path) -> None:
    """Record in the catalog what a sync that sent everything would: the journal's
    entries done, and the SYNCED labels (the merge base) equal to the LOCAL ones. A real
    sync of N images needs a server holding them (see sync_no_change); a status reads
    only these two things of what a sync writes, so it sees what it would after one."""
    import sqlite3

    conn = sqlite3.connect(tree / ".localrepo" / "catalog.db", isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE journal SET status = 'done' WHERE status = 'pending'")
        conn.execute("UPDATE write_epoch SET n = n + 1 WHERE id = 1")  # as a sync's writes do
        for table, cols in [
            ("image_label", "task_id, image_id, label_id, value"),
            ("task_label", "task_id, label_id"),
        ]:
            conn.execute(f"DELETE FROM {table} WHERE state = 'synced'")
            conn.execute(
                f"INSERT INTO {table}(state, {cols}) SELECT 'synced', {cols} FROM {table}"
                " WHERE state = 'local'"
            )
        conn.execute("COMMIT")
    finally:
        conn.close()


def verdict(ratio: float, target: float = 1.5) -> str:
    return "met" if ratio <= target else "NOT met"


def seed_images_of(tree: Path) -> Iterator[Any]:
    """Every file of the tree as `repo sync` would upload it: its bytes, its label (the
    top folder) and the metadata the sync writes (content hash, file name)."""
    from localrepo.scan.hashing import hash_bytes
    from localrepo.server.data.imageseed import SeedImage

    for folder, dirs, files in os.walk(tree):
        dirs[:] = sorted(d for d in dirs if d != ".localrepo")
        label = os.path.relpath(folder, tree).split(os.sep)[0]
        for name in sorted(files):
            data = Path(folder, name).read_bytes()
            meta = {"content_hash": "xxh3_128:" + hash_bytes(data), "original_file_name": name}
            yield SeedImage(name, data, ((label, None),), meta)


def seed_server(data_dir: Path, token: str, tree: Path) -> int:
    """The server's task `bench` made and seeded with the tree's images, straight into
    its data layer (server/data/imageseed.py) while it runs; the images added."""
    from localrepo.server.config import Settings
    from localrepo.server.data import accounts, tasks
    from localrepo.server.data.db import Database
    from localrepo.server.data.imageseed import seed_images
    from localrepo.server.data.storage import open_storage

    settings = Settings(data_dir=data_dir)
    db = Database.from_settings(settings)
    try:
        owner = accounts.token_owner(db, accounts.hash_token(token))
        assert owner is not None
        user, ws = str(owner[1]), str(owner[2])
        task = tasks.create_task(db, ws, "bench", "multi_class", "")
        done = seed_images(
            db, open_storage(settings, db), ws, task["id"], seed_images_of(tree), user_id=user
        )
    finally:
        db.dispose()
    return done.added


def sync_no_change(tree: Path, args: argparse.Namespace, status_s: float) -> dict[str, float]:
    """A no-change `repo sync` of the tree against a localrepo-server (with the change
    feed) that holds the same images, labelled as the folders say.

    The server's task is seeded in bulk (a million uploads through the API take hours).
    The repository is bound to it afresh (its catalog made again: `repo init --remote
    --join`, as joining a task that exists). Then, each with its time and peak RSS: the
    first sync (scans the tree, lists the task in full, plans over every image and
    records the merge base: nothing to send or fetch), the second (the change feed has
    nothing new, the planner runs over every image and finds nothing: it records the
    quiet mark), and the no-change sync after that (the quiet shortcut: one feed
    request, no planning), best of --rounds. Afterwards the server must still hold N
    images and the tree its N files: nothing was uploaded or downloaded."""
    work = args.workdir / f"server-{tree.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    proc, info = start_dev_server(work)
    try:
        env = dict(os.environ, LOCALREPO_TOKEN=info["token"])
        env["LOCALREPO_CONFIG_DIR"] = str(work / "config")
        files = sum(len(fs) for d, _, fs in os.walk(tree) if ".localrepo" not in d)
        t0 = time.perf_counter()
        added = seed_server(work / "data", info["token"], tree)
        print(f"  seeded the server with {added:,} images in {time.perf_counter() - t0:.1f} s")
        if added != files:
            raise SystemExit(f"seeded {added:,} images for {files:,} files")
        shutil.rmtree(tree / ".localrepo")
        init = [*REPO, "-q", "init", str(tree), "--task", "bench", "--remote", info["url"]]
        subprocess.run([*init, "--join"], check=True, env=env)
        sync_cmd = [*REPO, "-q", "-C", str(tree), "sync"]
        first_s, first_mb = run(sync_cmd, env=env)
        print(
            f"  first repo sync (lists, records the merge base) {first_s:8.2f} s  peak {first_mb:4d} MB"
        )
        feed_s, feed_mb = run(sync_cmd, env=env)
        print(
            f"  second repo sync (feed, plans over all)         {feed_s:8.2f} s  peak {feed_mb:4d} MB"
        )
        quiet_s, quiet_mb = best([run(sync_cmd, env=env) for _ in range(args.rounds)])
        print(
            f"  no-change repo sync (quiet, best of {args.rounds})           {quiet_s:8.3f} s  peak {quiet_mb:4d} MB"
        )
        print(f"    beside the no-change repo status                {status_s:8.3f} s")
        count = httpx.get(
            info["url"] + "recognition/v2/training-image/",
            params={"page_size": 1},
            headers={"Authorization": f"Token {info['token']}"},
        ).json()["count"]
        now = sum(len(fs) for d, _, fs in os.walk(tree) if ".localrepo" not in d)
        if (count, now) != (files, files):
            raise SystemExit(f"the syncs moved images: server {count:,}, tree {now:,} of {files:,}")
    except BaseException:
        print(
            "  the server's log, last lines:",
            *(work / "server.log").read_text().splitlines()[-20:],
            sep="\n    ",
        )
        raise
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return {
        "sync_first_s": first_s,
        "sync_first_mb": first_mb,
        "sync_feed_s": feed_s,
        "sync_feed_mb": feed_mb,
        "sync_quiet_s": quiet_s,
        "sync_quiet_mb": quiet_mb,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", default="100000,1000000", help="sizes, comma-separated")
    ap.add_argument("--labels", type=int, default=50)
    ap.add_argument("--change", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=HERE.parent / ".bench")
    ap.add_argument("--keep", action="store_true", help="keep the generated trees")
    ap.add_argument(
        "--reuse", action="store_true", help="measure a tree kept by --keep again (no scan)"
    )
    ap.add_argument(
        "--sync",
        action="store_true",
        help="also a no-change repo sync against a seeded server (see sync_no_change; it "
        "binds the tree's repository afresh, so a later --reuse builds the tree again)",
    )
    args = ap.parse_args()
    sizes = [int(s) for s in args.files.split(",")]
    need = max(sizes) * 4096 * (2.8 if args.sync else 1.3)  # --sync: the server's copy too
    free = shutil.disk_usage(args.workdir if args.workdir.exists() else HERE).free
    if free < need:
        raise SystemExit(
            f"{max(sizes):,} files need about {need / 1e9:.1f} GB; {free / 1e9:.1f} free"
        )
    args.workdir.mkdir(parents=True, exist_ok=True)
    compile_package()
    images = bases()
    figures = {size: measure(size, args, images) for size in sizes}
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        a, b = figures[lo], figures[hi]
        print(f"\n{hi:,} against {lo:,} files ({hi / lo:.0f}x the files)")
        for key, what in [
            ("scan_s", "initial scan time"),
            ("first_s", "first status (all new) time"),
            ("status_s", "no-change status time"),
            ("extra_s", f"the {args.change}-file change's own cost"),
            ("scan_mb", "initial scan peak memory"),
            ("first_mb", "first status peak memory"),
            ("status_mb", "no-change status peak memory"),
            ("change_mb", "status after the change, peak memory"),
            ("sync_first_s", "first sync time"),
            ("sync_quiet_s", "no-change (quiet) sync time"),
            ("sync_first_mb", "first sync peak memory"),
            ("sync_quiet_mb", "no-change (quiet) sync peak memory"),
        ]:
            if a.get(key, 0) > 0 and b.get(key, 0) > 0:
                print(f"  {what:40s} x{b[key] / a[key]:.2f}")


if __name__ == "__main__":
    main()
