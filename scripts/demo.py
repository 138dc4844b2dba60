"""`make demo`: build the sample dataset, make it a repository, show what localrepo sees."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sampledata import build  # noqa: E402

DEMO = HERE.parent / "demo"
REPO = [sys.executable, "-m", "localrepo.cli.main"]


def step(title: str, *args: str, check: bool = True) -> None:
    print(f"\n$ repo {' '.join(args)}    # {title}", flush=True)
    proc = subprocess.run([*REPO, "-C", str(DEMO), *args])
    if check and proc.returncode != 0:
        raise SystemExit(f"demo step failed: repo {' '.join(args)} (exit {proc.returncode})")


def main() -> None:
    if DEMO.exists():
        shutil.rmtree(DEMO)
    n = build(DEMO)
    print(f"Built a sample dataset of {n} drawn shapes in {DEMO}/ (folder = label).")
    step("make the folder a repository bound to one task", "init", "--task", "shapes",
         "--type", "multi_class")
    step("scan: hash, check and journal every image", "scan")
    step("per label counts, pending changes, invalid files", "status")
    moved = DEMO / "circle" / "circle_000.jpg"
    moved.rename(DEMO / "square" / "circle_000.jpg")
    print("\n(moved circle/circle_000.jpg into square/: relabelling is a move)")
    step("the move is journalled as a label change, not a re-upload", "status")
    moved_back = DEMO / "square" / "circle_000.jpg"
    moved_back.rename(DEMO / "circle" / "circle_000.jpg")
    step("the journal", "log", "--limit", "5")
    print(f"\nThe demo repository stays in {DEMO}/ for you to explore (repo -C demo status).")


if __name__ == "__main__":
    main()
