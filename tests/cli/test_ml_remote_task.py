"""`repo classify --remote-task NAME|ID`: a remote task's model, outside a repository
too (the remote from --url, else the repository's, else the one `repo login`
remembered). The trained world is test_ml_cli.py's fixtures (a server and a training of
this module's own)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from support.imagegen import class_image
from support.synchelp import Clone

from .test_ml_cli import SHAPES, colours, ml_server, ndjson, trained

__all__ = ["colours", "ml_server", "trained"]  # fixtures, used by name


def test_classify_outside_a_repository_with_a_remote_task(
    colours: Clone, trained: dict[str, Any], tmp_path: Path, ml_server: Any
) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    files = [f"{name}.jpg" for name in SHAPES]
    for k, name in enumerate(SHAPES):
        (loose / files[k]).write_bytes(class_image(name, 2000 + k))

    def outside(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "localrepo", "classify", *args, *files]
        return subprocess.run(argv, cwd=loose, env=colours.env, capture_output=True, text=True)

    inside = ndjson(colours.run("classify", "--json", *(str(loose / f) for f in files)).stdout)
    proc = outside("--remote-task", "colours", "--url", ml_server.url, "--json")
    assert proc.returncode == 0, proc.stderr
    records = ndjson(proc.stdout)
    assert [r["path"] for r in records] == files and all(r["version"] == 1 for r in records)
    assert [r["best_label"]["name"] for r in records] == [r["best_label"]["name"] for r in inside]
    # An unknown remote task: exit 2, the close name, nothing classified.
    proc = outside("--remote-task", "colors", "--url", ml_server.url)
    assert proc.returncode == 2 and "did you mean 'colours'?" in proc.stderr and proc.stdout == ""
    # --task is this repository's, and --url goes with --remote-task only.
    proc = outside("--task", "colours")
    assert proc.returncode == 1 and "not inside a localrepo repository" in proc.stderr
    proc = outside("--url", ml_server.url)
    assert proc.returncode == 2 and "--url goes with --remote-task" in proc.stderr
