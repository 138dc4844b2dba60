"""docs/design.md's module map matches the tree (issue 17; design section 7).

The map is the code blocks of section 7 that start with `localrepo/`: a line with no
indent names a folder (ending in "/"); each indented line under it starts with one
module (`name.py`) or sub-folder (`name/`) of that folder. Every entry must exist, and
every module of the package must have an entry, so the map can be trusted both ways.
Paths cited anywhere else in design.md (`sync/plan.py`, `tests/...`) must exist too.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DESIGN = ROOT / "docs" / "design.md"
# Modules that are not a job of their own: package markers and `python -m` shims.
NOT_MAPPED = {"__init__.py", "__main__.py"}


def section(text: str, number: int) -> str:
    start = text.index(f"\n## {number}. ")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def module_map(text: str) -> list[str]:
    """The paths the map names, relative to the repository root."""
    blocks = re.findall(r"```\n(.*?)```", section(text, 7), flags=re.S)
    lines = [line for b in blocks if b.startswith("localrepo/") for line in b.splitlines()]
    named: list[str] = []
    folder = ""
    for line in lines:
        if not line.strip():
            continue
        if not line.startswith(" "):
            folder = line.split()[0]
            assert folder.endswith("/"), f"a folder line must end in '/': {line!r}"
            named.append(folder)
            continue
        entry = line.split()[0]
        if entry.endswith((".py", "/")):
            named.append(folder + entry)
    return named


def test_every_module_the_map_names_exists() -> None:
    named = module_map(DESIGN.read_text(encoding="utf-8"))
    assert len(named) > 50
    missing = [p for p in named if not (ROOT / p).exists()]
    assert not missing, f"docs/design.md's module map names what is not there: {missing}"


def test_every_module_of_the_package_is_on_the_map() -> None:
    named = set(module_map(DESIGN.read_text(encoding="utf-8")))
    modules = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "localrepo").rglob("*.py")
        if "__pycache__" not in p.parts and p.name not in NOT_MAPPED
    }
    unmapped = sorted(m for m in modules if m not in named)
    assert not unmapped, f"modules missing from docs/design.md's module map: {unmapped}"


def test_paths_cited_in_the_design_exist() -> None:
    text = DESIGN.read_text(encoding="utf-8")
    cited = set(re.findall(r"`((?:[\w-]+/)*[\w-]+\.(?:py|md|toml))`", text))
    assert cited, "no paths found: has the citation style changed?"
    bases = (ROOT, ROOT / "localrepo", ROOT / "docs", ROOT / "localrepo" / "server")
    missing = sorted(c for c in cited if not any((b / c).exists() for b in bases))
    assert not missing, f"docs/design.md cites paths that do not exist: {missing}"


def test_the_map_reader_follows_folders() -> None:
    text = (
        "\n## 7. Where\n\n```\nlocalrepo/scan/\n  walk.py   the walk\n  x/        a folder\n```\n"
    )
    assert module_map(text) == ["localrepo/scan/", "localrepo/scan/walk.py", "localrepo/scan/x/"]
