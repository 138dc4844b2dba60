"""No module over 500 lines without a reason (issue 17; docs/design.md section 7).

A module that long usually does several jobs and should be split by job. When it does
one job that is simply long, its docstring says so in one line that starts with
"Over 500 lines because", and this test accepts it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 500
REASON = "Over 500 lines because"
CHECKED = ("localrepo", "tests", "benchmarks", "scripts", "migrations")


def python_files() -> list[Path]:
    files: list[Path] = []
    for top in CHECKED:
        files.extend(p for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts)
    return sorted(files)


def has_reason(source: str) -> bool:
    doc = ast.get_docstring(ast.parse(source)) or ""
    return any(line.strip().startswith(REASON) for line in doc.splitlines())


def test_every_long_module_says_why() -> None:
    files = python_files()
    assert len(files) > 100  # the walk found the tree
    too_long = []
    for path in files:
        source = path.read_text(encoding="utf-8")
        lines = source.count("\n")
        if lines > LIMIT and not has_reason(source):
            too_long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not too_long, (
        f"modules over {LIMIT} lines: split them by job, or give the docstring one line "
        f"starting with {REASON!r}:\n" + "\n".join(too_long)
    )


def test_the_reason_is_read_from_the_docstring_only() -> None:
    assert has_reason(f'"""Title.\n\n{REASON} it is one table.\n"""\nx = 1\n')
    assert not has_reason(f'"""Title."""\n# {REASON} a comment is not a docstring\n')
    assert not has_reason('"""Title.\n\nLong, sorry.\n"""\n')
