"""The package as users install it: a wheel that carries the catalog's migrations, whose
`repo` and `localrepo-server` commands work outside the source tree (issue 17)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the sources: a build writes into its source folder (build/,
    *.egg-info), which must not race with another worker's build, nor leave an
    egg-info in the checkout."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("localrepo", "migrations"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*command, "-q", "-w", str(out), str(src)], check=True, capture_output=True, timeout=300
    )
    [found] = out.glob("localrepo-*.whl")
    return found


def test_the_wheel_carries_the_migrations(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    revisions = sorted(p for p in names if p.startswith("localrepo/migrations/versions/0"))
    shipped = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("0*.py"))
    assert [p.rsplit("/", 1)[1] for p in revisions] == shipped
    assert "localrepo/migrations/env.py" in names
    assert "localrepo/migrations/script.py.mako" in names
    web = "localrepo/server/web/"
    for shipped in (
        "static/vendor/htmx/htmx.min.js",
        "static/vendor/pico/pico.min.css",
        "static/vendor/swagger-ui/swagger-ui-bundle.js",
        "static/vendor/redoc/redoc.standalone.js",
        "static/vendor/redoc/LICENSE.txt",
        "static/vendor/VENDORED.md",
        "static/app.css",
        "templates/base.html",
        "templates/sign_in.html",
    ):
        assert web + shipped in names, shipped


def test_the_installed_commands_work_outside_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    """A fresh venv with the wheel installed (its dependencies borrowed from this venv,
    nothing downloaded), run from a folder that is not the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The dependencies: this venv's site-packages, after the wheel's own files (a .pth
    # entry comes after site-packages itself, so the wheel's localrepo wins over the
    # checkout that this venv's editable install points at).
    Path(site, "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # No PYTHONPATH for pip either: a folder on it holding localrepo's egg-info would
    # make pip call the wheel installed already and skip it.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCALREPO_", "PYTHON"))}
    subprocess.run(
        [str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=120)

    where = run(str(py), "-c", "import localrepo; print(localrepo.__file__)").stdout
    assert where.startswith(site), where  # the installed copy, not the checkout
    init = run(str(venv / "bin" / "repo"), "init", "pets", "--task", "pets")
    assert init.returncode == 0, init.stderr
    assert (work / "pets" / ".localrepo" / "catalog.db").is_file()
    status = run(str(venv / "bin" / "repo"), "-C", "pets", "status", "--json")
    assert status.returncode == 0 and '"pets"' in status.stdout, status.stderr
    server = run(str(venv / "bin" / "localrepo-server"), "--help")
    assert server.returncode == 0 and "serve" in server.stdout, server.stderr
    # The web interface's files came along, and the installed server finds them.
    assets = run(
        str(py),
        "-c",
        "from localrepo.server.web.assets import Assets; a = Assets(); "
        "print(a.root); print(a.url('vendor/htmx/htmx.min.js'))",
    )
    assert assets.returncode == 0, assets.stderr
    assert assets.stdout.startswith(site) and "/static/vendor/htmx/htmx.min.js?v=" in assets.stdout
