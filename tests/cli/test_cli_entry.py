"""The console scripts' entry point (cli/entry.py): plain `status` and `scan` run without
click, everything else through it; what a user sees is the same either way."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.treebuilder import REPO_ENV, new_repo, run_repo, write, write_image

from localrepo.cli.entry import parse_fast


def timeless(text: str) -> str:
    """Output with a scan's duration taken out: the one thing two runs may differ in."""
    text = re.sub(r'"seconds": [0-9.e-]+', '"seconds": _', text)
    return re.sub(r" in [0-9.]+s\b", " in _s", text)


def run(module: str, args: list[str], cwd: Path) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=REPO_ENV,
        timeout=120,
    )
    return proc.returncode, timeless(proc.stdout), timeless(proc.stderr)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = new_repo(tmp_path_factory.mktemp("entry") / "r")
    write_image(root, "dog/a.jpg", 1)
    write_image(root, "dog/b b.jpg", 2)  # a name porcelain quotes... or not
    write_image(root, "cat/c.jpg", 3)
    write(root, "cat/broken.jpg", b"not an image")
    proc = run_repo("-C", str(root), "scan")
    assert proc.returncode == 0, proc.stderr
    return root


ARGVS = [
    ["status"],
    ["-q", "status"],
    ["-v", "-v", "status"],
    ["--quiet", "status", "--json"],
    ["status", "--porcelain"],
    ["status", "--porcelain", "-z"],
    ["status", "-z", "--porcelain", "--exit-code"],
    ["status", "--exit-code"],
    ["scan"],
    ["-q", "scan", "--json"],
    ["scan", "-n"],
    ["scan", "--dry-run", "--json"],
    # not the fast path's: click says what is wrong, or shows help
    ["status", "-z"],
    ["status", "--json", "--porcelain"],
    ["status", "--bogus"],
    ["status", "--help"],
    ["-qv", "status"],
    ["-C", "no-such-folder", "status"],
    ["-C"],
    ["statuss"],
    [],
]


@pytest.mark.parametrize("argv", ARGVS, ids=lambda a: " ".join(a) or "nothing")
def test_the_entry_point_answers_as_the_click_command_line_does(repo: Path, argv) -> None:
    """Same exit code, same output, in the repository and outside any."""
    for cwd in (repo, repo.parent):
        full = run("localrepo.cli.main", argv, cwd)
        entry = run("localrepo", argv, cwd)
        assert entry == full
        assert "Traceback" not in entry[2]


def test_status_and_scan_run_without_importing_click(repo: Path) -> None:
    probe = (  # the fast path ends with os._exit, the click path through atexit
        "import atexit, os, sys\n"
        "def say():\n"
        "    print('click imported:', 'click' in sys.modules, file=sys.stderr, flush=True)\n"
        "atexit.register(say)\n"
        "quick = os._exit\n"
        "os._exit = lambda code: (say(), quick(code))\n"
        "from localrepo.cli.entry import main\n"
        "main(sys.argv[1:])\n"
    )
    for argv, fast in (
        (["-C", str(repo), "status", "--porcelain"], True),
        (["-C", str(repo), "-q", "scan"], True),
        (["-C", str(repo), "log"], False),
    ):
        proc = subprocess.run(
            [sys.executable, "-c", probe, *argv],
            capture_output=True,
            text=True,
            env=REPO_ENV,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert f"click imported: {not fast}" in proc.stderr


def test_the_parser_takes_only_what_it_knows() -> None:
    assert parse_fast(["status"]) is not None
    assert parse_fast(["-C", ".", "-q", "-v", "status", "--porcelain", "-z"]) is not None
    for argv in (
        ["status", "extra"],
        ["status", "--json=1"],
        ["-Cdir", "status"],
        ["--directory", ".", "status"],
        ["status", "--", "--json"],
        ["log"],
        ["-q"],
    ):
        assert parse_fast(argv) is None, argv


def test_every_lazy_command_is_a_module_level_command_of_its_name() -> None:
    import importlib

    import click

    from localrepo.cli.main import LAZY_COMMANDS, cli

    for name, target in LAZY_COMMANDS.items():
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command) and command.name == name
    assert set(LAZY_COMMANDS) <= set(cli.list_commands(click.Context(cli)))
