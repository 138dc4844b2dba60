"""SQL lives in the server's data-access modules only (issue 17).

An AST scan of ``localrepo/server/``: outside ``localrepo/server/data/`` no module may
run a statement (``.execute(``, ``.executemany(``, ``.exec(``, ``.exec_driver_sql(``),
build one (``text(``), hold a string that looks like SQL, or import a database library
(sqlalchemy, sqlmodel, sqlite3, psycopg). Routes, the upload pipeline, ml/ and the app
wiring call functions of ``data/`` instead. Each finding names file:line.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SERVER = Path(__file__).resolve().parents[2] / "localrepo" / "server"
# The data-access modules: the only ones that may hold SQL (relative to SERVER).
DATA_ACCESS = ("data/",)

_CALLS = {"execute", "executemany", "exec", "exec_driver_sql"}
_DB_LIBRARIES = {"sqlalchemy", "sqlmodel", "sqlite3", "psycopg", "psycopg2"}
# Case-sensitive: SQL is written in capitals here, prose is not.
_SQL = re.compile(
    r"\bSELECT\b.*\bFROM\b|\bINSERT\s+(OR\s+\w+\s+)?INTO\b|\bDELETE\s+FROM\b|\bUPDATE\s+\w+\s+SET\b"
    r"|\b(CREATE|DROP|ALTER)\s+(TABLE|INDEX|TRIGGER|VIEW)\b|\bPRAGMA\s+\w"
    r"|\bBEGIN\s+(IMMEDIATE|EXCLUSIVE|DEFERRED)\b|^\s*(BEGIN|COMMIT|ROLLBACK)\s*$"
    r"|(?:^|\s)[A-Za-z_][\w.]*\s*(=|<=|>=|<>|!=|<|>)\s*:[A-Za-z_]|\bIN\s+\(?:[A-Za-z_]"
    r"|\bORDER\s+BY\s+[\w.]+|\b(LEFT\s+|INNER\s+)?JOIN\s+\w+\s+\w+\s+ON\b|\bEXISTS\s*\(\s*SELECT\b",
    re.S,
)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (prose, not SQL)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def scan_source(source: str, name: str) -> list[str]:
    """The SQL findings of one module's source, as ``name:line: what``."""
    tree = ast.parse(source, filename=name)
    docstrings = _docstrings(tree)
    out: list[str] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Call):
            called = _called_name(node.func)
            if isinstance(node.func, ast.Attribute) and called in _CALLS:
                out.append(f"{name}:{line}: .{called}( call")
            elif called == "text":
                out.append(f"{name}:{line}: text( call")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if node.level == 0
                else []
            )
            for module in modules:
                if module.split(".")[0] in _DB_LIBRARIES:
                    out.append(f"{name}:{line}: imports {module}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and _SQL.search(node.value)
        ):
            out.append(f"{name}:{line}: SQL-looking string {node.value[:60]!r}")
    return sorted(set(out), key=_order)


def _order(finding: str) -> tuple[str, int, str]:
    path, line, what = finding.split(":", 2)
    return path, int(line), what


def scan(root: Path, allowed: tuple[str, ...] = DATA_ACCESS) -> list[str]:
    """Findings in every module under ``root`` but the ``allowed`` ones (path prefixes
    relative to ``root``, ``/``-separated)."""
    out: list[str] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(allowed):
            continue
        out.extend(scan_source(path.read_text(encoding="utf-8"), f"localrepo/server/{rel}"))
    return out


def test_sql_only_in_data_access_modules() -> None:
    findings = scan(SERVER)
    assert not findings, "SQL outside localrepo/server/data/:\n" + "\n".join(findings)


def test_the_data_modules_are_where_the_sql_is() -> None:
    """The scan finds the SQL where it is allowed: it would not pass by seeing nothing."""
    findings = scan(SERVER, allowed=())
    assert any(f.startswith("localrepo/server/data/images.py:") for f in findings)
    assert any(f.startswith("localrepo/server/data/training.py:") for f in findings)
    assert not [f for f in findings if not f.startswith("localrepo/server/data/")]


PLANTED = '''"""A route module with SQL in it. SELECT the FROM of prose in a docstring is fine."""
from sqlalchemy import text


def get_thing(conn, thing_id):
    """Look it up: SELECT nothing FROM here (a docstring)."""
    return conn.execute(text("SELECT id FROM things WHERE id = :id"), {"id": thing_id})


def delete_thing(session, thing_id):
    cond = "t.workspace_id = :ws"
    session.exec_driver_sql(f"DELETE FROM things WHERE {cond}")
    message = "Select a thing from the list, then update it."
    return message
'''


def test_the_checker_catches_a_planted_violation(tmp_path: Path) -> None:
    (tmp_path / "api").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "api" / "things.py").write_text(PLANTED, encoding="utf-8")
    (tmp_path / "data" / "things.py").write_text(PLANTED, encoding="utf-8")
    findings = scan(tmp_path)
    where = "localrepo/server/api/things.py"
    assert findings == [
        f"{where}:2: imports sqlalchemy",
        f"{where}:7: .execute( call",
        f"{where}:7: SQL-looking string 'SELECT id FROM things WHERE id = :id'",
        f"{where}:7: text( call",
        f"{where}:11: SQL-looking string 't.workspace_id = :ws'",
        f"{where}:12: .exec_driver_sql( call",
        f"{where}:12: SQL-looking string 'DELETE FROM things WHERE '",
    ], findings
    # The same module among the data-access modules is allowed.
    assert not [f for f in findings if "/data/" in f]
