"""Scanner benchmark: initial scan and no-change status, against baselines run alongside.

    python benchmarks/scan.py [--files N] [--labels L] [--workdir DIR] [--no-unison]

Builds N small real JPEGs in L label folders (cached under the work dir between runs),
then measures, in this one run:

- initial `repo scan` against a plain single-threaded Python loop that opens, hashes
  (xxh3_128) and fully decodes every file (the work a scan cannot skip, without a pool);
  and, for scale, against that loop run in two processes at once on half the folders
  each (how much two busy processes get out of the machine's cores), and a dry-run
  scan (the same walk and checks without the catalog's writes);
- no-change `repo status` against `find ROOT -type f -printf ...` (the stat-walk floor)
  and against `unison` doing a no-change sync of the tree with a copy of it;
- peak memory (max RSS) of each command.

Ratios below 1.0 mean localrepo is faster than the baseline.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from benchcommon import compile_package  # noqa: E402

REPO = [sys.executable, "-m", "localrepo"]


def build_tree(root: Path, files: int, labels: int) -> None:
    from support.imagegen import image_bytes

    marker = root / ".built"
    if marker.exists() and marker.read_text() == f"{files}:{labels}":
        return
    if root.exists():
        shutil.rmtree(root)
    for lab in range(labels):
        (root / f"label_{lab:02d}").mkdir(parents=True)
    old = time.time() - 3600  # well outside the racy window
    for i in range(files):
        p = root / f"label_{i % labels:02d}" / f"img_{i:06d}.jpg"
        p.write_bytes(image_bytes(i, size=(64, 48)))
        os.utime(p, (old, old))
    marker.write_text(f"{files}:{labels}")


def run(cmd: list[str], *, cwd: Path | None = None, env: dict | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (MB, the process and its reaped descendants)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    return elapsed, usage.ru_maxrss // 1024


def baseline_loop(root: Path, share: tuple[int, int] = (0, 1)) -> float:
    """Single-threaded: open, read, hash and fully decode every image file (of the
    folders `share` = (k, n) picks: every n-th one from the k-th)."""
    import xxhash
    from PIL import Image

    t0 = time.perf_counter()
    for i, (dirpath, _dirs, names) in enumerate(sorted(os.walk(root))):
        if i % share[1] != share[0]:
            continue
        for name in names:
            if not name.endswith(".jpg"):
                continue
            with open(os.path.join(dirpath, name), "rb") as fh:
                data = fh.read()
            xxhash.xxh3_128_hexdigest(data)
            with Image.open(io.BytesIO(data)) as im:
                im.load()
    return time.perf_counter() - t0


def two_loops(root: Path) -> float:
    """The same loop in two processes at once, each on half the folders: what the
    machine's two cores give two busy processes (on a VM they rarely give twice one)."""
    t0 = time.perf_counter()
    pids = []
    for k in range(2):
        pid = os.fork()
        if pid == 0:
            try:
                baseline_loop(root, (k, 2))
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    return time.perf_counter() - t0


def verdict(met: bool) -> str:
    """Said on the exact ratio: 0.7004 prints as 0.700 but is not at most 0.70."""
    return "met" if met else "NOT met"


def main() -> None:
    compile_package()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--labels", type=int, default=20)
    ap.add_argument("--workdir", type=Path, default=HERE.parent / ".bench")
    ap.add_argument("--no-unison", action="store_true")
    args = ap.parse_args()

    data = args.workdir / f"tree-{args.files}"
    print(f"building {args.files} JPEGs in {args.labels} folders under {data} ...", flush=True)
    build_tree(data, args.files, args.labels)

    work = Path(tempfile.mkdtemp(prefix="scanbench-", dir=args.workdir))
    try:
        tree = work / "tree"
        shutil.copytree(data, tree, copy_function=os.link)  # hard links: same bytes, fast
        (tree / ".built").unlink()

        # Best of three for every side, in rounds (loop, two loops, scan, dry-run scan),
        # so that a drift of the machine's speed during the run hits all of them alike.
        # Each scan starts from a new repository.
        def fresh() -> None:
            shutil.rmtree(tree / ".localrepo", ignore_errors=True)
            subprocess.run([*REPO, "-q", "init", str(tree), "--task", "bench"], check=True)

        bases, pairs, scans, dry = [], [], [], []
        for _ in range(3):
            bases.append(baseline_loop(tree))
            pairs.append(two_loops(tree))
            fresh()
            dry.append(run([*REPO, "-q", "-C", str(tree), "scan", "--dry-run"])[0])
            fresh()
            scans.append(run([*REPO, "-q", "-C", str(tree), "scan"]))
        base_s, pair_s, dry_s = min(bases), min(pairs), min(dry)
        scan_s, scan_mb = min(s for s, _ in scans), max(m for _, m in scans)
        print(f"\ninitial scan of {args.files} files (best of 3 each, in rounds)")
        print(f"  baseline (single-threaded open+hash+decode loop) {base_s:8.3f} s")
        print(
            f"  repo scan                                        {scan_s:8.3f} s  peak {scan_mb} MB"
        )
        ratio = scan_s / base_s
        print(f"  ratio repo/baseline {ratio:.3f}  (target <= 0.70: {verdict(ratio <= 0.70)})")
        print(
            f"  two such loops at once, half the folders each  {pair_s:8.3f} s: two cores give"
            f" {base_s / pair_s:.2f}x one; the scan is {scan_s / pair_s:.2f} of that"
        )
        print(
            f"  repo scan --dry-run (same walk and checks, no catalog writes) {dry_s:8.3f} s:"
            f" {dry_s / base_s:.2f} of the baseline"
        )

        run([*REPO, "-q", "-C", str(tree), "status"])  # settle racy entries
        status_cmd = [*REPO, "-q", "-C", str(tree), "status"]
        find_cmd = ["find", str(tree), "-type", "f", "-printf", r"%T@ %s %p\n"]
        unison = not args.no_unison and shutil.which("unison")
        env = dict(os.environ, UNISON=str(work / "unison-state"))
        unison_cmd = [
            "unison",
            str(tree),
            str(work / "copy"),
            "-batch",
            "-auto",
            "-silent",
            "-ignore",
            "Name .localrepo",
            "-times",
        ]
        if unison:
            shutil.copytree(tree, work / "copy", ignore=shutil.ignore_patterns(".localrepo"))
            run(unison_cmd, env=env)  # the first sync builds unison's archives
        # Best of 5 each, in rounds (status, find, unison), as above.
        sides: dict[str, list[tuple[float, int]]] = {"status": [], "find": [], "unison": []}
        for _ in range(5):
            sides["status"].append(run(status_cmd))
            sides["find"].append(run(find_cmd))
            if unison:
                sides["unison"].append(run(unison_cmd, env=env))
        st_s, st_mb = min(s for s, _ in sides["status"]), max(m for _, m in sides["status"])
        find_s, find_mb = min(s for s, _ in sides["find"]), max(m for _, m in sides["find"])
        print(f"\nno-change status of {args.files} files (best of 5 each, in rounds)")
        print(f"  find -printf (stat walk floor)  {find_s:8.3f} s  peak {find_mb} MB")
        print(f"  repo status                     {st_s:8.3f} s  peak {st_mb} MB")
        print(f"  ratio repo/find   {st_s / find_s:.2f}")
        if unison:
            un_s = min(s for s, _ in sides["unison"])
            un_mb = max(m for _, m in sides["unison"])
            print(f"  unison no-change sync           {un_s:8.3f} s  peak {un_mb} MB")
            ratio = st_s / un_s
            print(f"  ratio repo/unison {ratio:.3f}  (target <= 1.00: {verdict(ratio <= 1.00)})")
        elif not args.no_unison:
            print("  unison not installed (apt-get install unison); skipped that baseline")
        t0 = time.perf_counter()
        subprocess.run([*REPO, "--help"], check=True, stdout=subprocess.DEVNULL)
        print(f"\nrepo --help  {time.perf_counter() - t0:.3f} s  (target < 0.3)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
