"""Run one benchmark against two versions of the code in one run: before and after.

    .venv/bin/python benchmarks/compare.py --base d1492c8 scan -- --files 20000

The benchmark script is this checkout's (the same measurement both times); only the code
it measures changes: the base commit's sources (exported with `git archive` into
`.bench/code-<commit>/`) or this checkout's, put first on PYTHONPATH for the benchmark
and every `repo` / `localrepo-server` process it starts. Rounds alternate the order
(base, head, head, base, ...) so that a drift of a shared machine's speed hits both
sides alike. Every figure line a benchmark prints (a ratio, a speed-up, a p95, an idle
share) is collected; the summary shows each figure's value for both sides, per round.

Only figures are compared, never asserted: speed belongs in benchmarks, not in tests.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCHMARKS = ("scan", "sync", "server", "watch", "accuracy")
# A line worth comparing, and the number it is about: "ratio repo/baseline 0.412",
# "speed-up 2.85x", "p50 2.08 s   p95 2.12 s", "idle CPU ...: daemon 0.083 %".
FIGURE = re.compile(r"(ratio [\w/]+:?|speed-up|p95|daemon)\s+([0-9]+(?:\.[0-9]+)?)")


@dataclass(frozen=True)
class Figure:
    name: str
    value: float


def figures(output: str) -> list[Figure]:
    """The comparable figures of one benchmark run's output, in the order printed."""
    found: list[Figure] = []
    for line in output.splitlines():
        for match in FIGURE.finditer(line):
            found.append(Figure(match.group(1).rstrip(":").strip(), float(match.group(2))))
    return found


def export(commit: str) -> Path:
    """The sources of `commit` in `.bench/code-<commit>/` (made once)."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{commit}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    target = ROOT / ".bench" / f"code-{sha[:12]}"
    if not (target / "localrepo").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as archive:
            subprocess.run(["git", "-C", str(ROOT), "archive", sha], stdout=archive, check=True)
            archive.seek(0)
            with tarfile.open(fileobj=archive) as tar:
                tar.extractall(target, filter="data")
    return target


def run_once(bench: str, code: Path, args: list[str]) -> str:
    """One run of benchmarks/<bench>.py measuring the sources under `code`."""
    env = dict(os.environ, PYTHONPATH=str(code), BENCH_CODE=str(code))
    started = time.monotonic()
    # Run from outside any checkout: `python -m` puts the working folder first on sys.path.
    proc = subprocess.run(
        [sys.executable, str(HERE / f"{bench}.py"), *args],
        cwd=tempfile.gettempdir(),
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.monotonic() - started
    # A benchmark exits 1 when a target is not met: its figures still count.
    if proc.returncode != 0 and not figures(proc.stdout):
        raise SystemExit(f"{bench} on {code} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    status = f", exit {proc.returncode}" if proc.returncode else ""
    return proc.stdout + f"\n(took {took:.0f} s{status})\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--base", required=True, help="the commit measured as 'before'")
    ap.add_argument("--rounds", type=int, default=1, help="base/head pairs (default 1)")
    ap.add_argument("bench", choices=BENCHMARKS)
    ap.add_argument("args", nargs="*", help="the benchmark's own options, after --")
    opts = ap.parse_args()
    sides = {"base": export(opts.base), "head": ROOT}
    results: dict[str, list[list[Figure]]] = {"base": [], "head": []}
    print(f"{opts.bench}: base {opts.base} against this checkout, {opts.rounds} round(s)")
    print(f"load average at start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for round_no in range(opts.rounds):
        order = ("base", "head") if round_no % 2 == 0 else ("head", "base")
        for side in order:
            out = run_once(opts.bench, sides[side], opts.args)
            print(f"\n===== round {round_no + 1}, {side} =====\n{out}", flush=True)
            results[side].append(figures(out))
    print(f"load average at end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("\nfigure: base -> head (each round)")
    for i, figure in enumerate(results["head"][0]):
        base = [r[i].value for r in results["base"] if i < len(r)]
        head = [r[i].value for r in results["head"] if i < len(r)]
        print(f"  {figure.name:28} {' '.join(map(str, base))} -> {' '.join(map(str, head))}")


if __name__ == "__main__":
    main()
