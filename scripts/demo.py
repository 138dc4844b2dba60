"""`make demo`: the whole loop on this machine, offline.

Starts a local localrepo-server, builds a sample dataset (drawn shapes, folder = label),
makes it a repository, syncs it to the server, shows the remote state, clones it into a
second folder, relabels an image by moving it and syncs both ways, trains a model on the
server, classifies the images nobody labelled and evaluates the model against the
folders (printing the misclassified files, and writing demo/evaluation.html), then stops
the server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sampledata import build, build_holdout  # noqa: E402

DEMO = HERE.parent / "demo"
REPO = [sys.executable, "-m", "localrepo"]


def step(title: str, *args: str, cwd: Path = DEMO / "shapes", env: dict | None = None) -> None:
    print(f"\n$ repo {' '.join(args)}    # {title}", flush=True)
    proc = subprocess.run([*REPO, "-C", str(cwd), *args], env=env)
    if proc.returncode != 0:
        raise SystemExit(f"demo step failed: repo {' '.join(args)} (exit {proc.returncode})")


def start_server(data: Path) -> tuple[subprocess.Popen[bytes], dict]:
    ready = data / "ready.json"
    log = open(data / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "localrepo.server.cli",
            "serve",
            "--data",
            str(data / "srv"),
            "--port",
            "0",
            "--dev",
            "--ready-file",
            str(ready),
            "--no-access-log",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"localrepo-server did not start; see {data / 'server.log'}")
        time.sleep(0.1)
    time.sleep(0.05)
    return proc, json.loads(ready.read_text())


def main() -> None:
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir()
    server, info = start_server(DEMO)
    env = dict(os.environ, LOCALREPO_TOKEN=info["token"], LOCALREPO_CONFIG_DIR=str(DEMO / "cfg"))
    os.environ.update(env)
    try:
        print(f"Started localrepo-server at {info['url']} (data in {DEMO / 'srv'}).")
        tree = DEMO / "shapes"
        n = build(tree)
        print(f"Built a sample dataset of {n} drawn shapes in {tree}/ (folder = label).")
        step(
            "bind the folder to a task on that server",
            "init",
            "--task",
            "shapes",
            "--type",
            "multi_class",
            "--remote",
            info["url"],
        )
        step("per label counts, pending changes, invalid files", "status")
        step("upload the images and their labels", "sync")
        step("what the server holds now", "labels")
        step(
            "a second folder tree from the same remote task",
            "clone",
            info["url"],
            "--remote-task",
            "shapes",
            str(DEMO / "clone"),
            cwd=DEMO,
        )
        (tree / "circle" / "circle_000.jpg").rename(tree / "square" / "circle_000.jpg")
        print("\n(moved circle/circle_000.jpg into square/: a relabel, not a re-upload)")
        step("push the relabel", "sync")
        step("the clone pulls it: the file moves to square/ there too", "sync", cwd=DEMO / "clone")
        step("disk, catalog and server agree", "verify", cwd=DEMO / "clone")
        step("train a model on the synced images and wait for its metrics", "train", "--wait")
        step("the task's model versions (* = production)", "models")
        step("classify the images nobody labelled yet", "classify", "--top", "2", "_unlabeled")
        held = build_holdout(DEMO / "held-out")
        print(f"\nBuilt {held} new drawings the model never saw in {DEMO / 'held-out'}/.")
        step(
            "the model against that held-out tree: scores, confusion matrix, the "
            "misclassified files, and a report with pictures",
            "evaluate",
            "--holdout",
            "../held-out",
            "--report",
            "../evaluation.html",
        )
    finally:
        server.terminate()
        server.wait(timeout=15)
    print(f"\nDone. The demo folders stay in {DEMO}/ (the server is stopped).")
    srv = DEMO / "srv"
    # The venv's own script: `make demo` does not put .venv/bin on the PATH.
    server_cli = Path(sys.executable).parent / "localrepo-server"
    print(
        "\nThe web interface (docs/web.md) shows the same tasks, images, versions and\n"
        "evaluation. Give the demo's user a password, start the server, then open the address:\n"
        f"  {server_cli} user set-password dev --data {srv}\n"
        f"  {server_cli} serve --data {srv}\n"
        "  open http://127.0.0.1:8000/ and sign in as dev"
    )


if __name__ == "__main__":
    main()
