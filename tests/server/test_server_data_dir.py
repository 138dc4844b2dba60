"""`localrepo-server`'s one data folder (--data, else $LOCALREPO_SERVER_DATA, else the
per-user data folder) and its refusal to create a database by accident: only `serve`
and `init` make one (docs/server.md, "The data folder")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.waiting import limit


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty home whose per-user data folder (XDG_DATA_HOME) is empty."""
    folder = tmp_path / "home"
    (folder / "data").mkdir(parents=True)
    return folder


def server_cli(
    *args: str, cwd: Path, home: Path, env_data: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCALREPO_SERVER_")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"))
    if env_data is not None:
        env["LOCALREPO_SERVER_DATA"] = str(env_data)
    return subprocess.run(
        [sys.executable, "-m", "localrepo.server.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=limit(60),
    )


@pytest.mark.parametrize(
    "args",
    [
        ("user", "list"),
        ("user", "create", "alice"),
        ("token", "create", "alice"),
        ("token", "list", "alice"),
        ("token", "revoke", "abc"),
        ("workspace", "list", "--user", "alice"),
    ],
)
def test_account_commands_never_create_a_database(
    args: tuple[str, ...], tmp_path: Path, home: Path
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    proc = server_cli(*args, cwd=here, home=home)
    assert proc.returncode == 2, proc.stderr
    default = home / "data" / "localrepo-server"
    assert f"no localrepo-server data in {default}" in proc.stderr
    assert "localrepo-server serve --data" in proc.stderr and "--data DIR" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert files_under(here) == [] and files_under(home / "data") == []


def test_a_mistyped_data_folder_is_refused_and_not_created(tmp_path: Path, home: Path) -> None:
    typo = tmp_path / "srv-typo"
    proc = server_cli("user", "list", "--data", str(typo), cwd=tmp_path, home=home)
    assert proc.returncode == 2
    assert f"no localrepo-server data in {typo}" in proc.stderr
    assert not typo.exists()


def test_init_then_the_environment_then_data_wins(tmp_path: Path, home: Path) -> None:
    from_env = tmp_path / "from-env"
    made = server_cli("init", cwd=tmp_path, home=home, env_data=from_env)
    assert made.returncode == 0, made.stderr
    assert f"created in {from_env}" in made.stdout
    assert (from_env / "server.db").is_file()
    again = server_cli("init", cwd=tmp_path, home=home, env_data=from_env)
    assert again.returncode == 0 and "already in" in again.stdout

    created = server_cli("user", "create", "alice", cwd=tmp_path, home=home, env_data=from_env)
    assert created.returncode == 0, created.stderr
    listed = server_cli("user", "list", "--data", str(from_env), cwd=tmp_path, home=home)
    assert listed.returncode == 0 and "alice" in listed.stdout

    # --data beats the environment: the other folder has no data, so this is refused.
    other = tmp_path / "other"
    refused = server_cli(
        "user", "list", "--data", str(other), cwd=tmp_path, home=home, env_data=from_env
    )
    assert refused.returncode == 2 and str(other) in refused.stderr
    # Nothing went to the per-user folder or the working folder.
    assert files_under(home / "data") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["from-env", "home"]


def test_without_data_or_environment_the_per_user_folder_is_used(
    tmp_path: Path, home: Path
) -> None:
    made = server_cli("init", cwd=tmp_path, home=home)
    assert made.returncode == 0, made.stderr
    default = home / "data" / "localrepo-server"
    assert (default / "server.db").is_file()
    assert server_cli("user", "create", "bob", cwd=tmp_path, home=home).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = server_cli("user", "list", cwd=elsewhere, home=home)
    assert listed.returncode == 0 and "bob" in listed.stdout
    assert files_under(elsewhere) == []


def test_help_documents_the_data_folder(tmp_path: Path, home: Path) -> None:
    proc = server_cli("--help", cwd=tmp_path, home=home)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "$LOCALREPO_SERVER_DATA" in text
    assert str(home / "data" / "localrepo-server") in text
    assert "Only 'serve' and 'init' create a database" in text
