"""SQL lives in localrepo/catalog/ only (design section 7): the rest of the client
reads and writes the catalog through the catalog's functions.

An AST scan of every module under localrepo/ except localrepo/catalog/,
localrepo/server/ (the server has its own data access) and migrations: it fails,
naming file:line, on any use of `.execute`, `.executemany` or `.executescript`, and
on any string that reads as SQL (it starts, after whitespace, with SELECT, INSERT,
UPDATE, DELETE, CREATE, PRAGMA or WITH followed by SQL words; any case). Strings
built from pieces (implicit concatenation, `+`, f-strings) are read whole, with a
placeholder for each piece that is not a literal. Docstrings and other strings that
are only an expression statement are never executed, and are not read.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "localrepo"
EXEMPT = ("catalog", "server", "migrations")  # folders of localrepo/ that may hold SQL
SQL_METHODS = frozenset({"execute", "executemany", "executescript"})

# What follows each keyword when the string is SQL, not prose ("Create a task", "With
# -v, ...", "delete 3 of 5 images" all pass).
_SQL = re.compile(
    r"""\A\s*(?:
        SELECT\s+(?:DISTINCT\s+|ALL\s+)?(?:\*|\d|[\w.]+\s*\(|.*?\bFROM\b)
      | INSERT\s+(?:OR\s+\w+\s+)?INTO\b
      | REPLACE\s+INTO\b
      | UPDATE\s+(?:OR\s+\w+\s+)?[\w."]+\s+SET\b
      | DELETE\s+FROM\b
      | CREATE\s+(?:(?:TEMP|TEMPORARY|UNIQUE|VIRTUAL)\s+)?(?:TABLE|INDEX|VIEW|TRIGGER)\b
      | PRAGMA\s+\w
      | WITH\s+(?:RECURSIVE\s+)?\w+\s*(?:\([^)]*\)\s*)?AS\s*(?:NOT\s+)?(?:MATERIALIZED\s+)?\(
    )""",
    re.IGNORECASE | re.DOTALL | re.VERBOSE,
)
_PIECE = "?"  # stands for a part of a string that is not a literal


def reads_as_sql(text: str) -> bool:
    return bool(_SQL.match(text))


def _text(node: ast.AST) -> str | None:
    """The text of a string expression, with _PIECE for what is not a literal; None
    when `node` is no string expression."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else _PIECE
            for v in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        if left is None and right is None:
            return None
        return (left if left is not None else _PIECE) + (right if right is not None else _PIECE)
    return None


class _Finder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # a docstring, or a string that is never used
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in SQL_METHODS:
            self.found.append((node.lineno, f".{node.attr}"))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        # getattr(conn, "execute") is .execute too
        if (
            isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in SQL_METHODS
        ):
            self.found.append((node.lineno, f"getattr(..., {node.args[1].value!r})"))
        self.generic_visit(node)

    def _string(self, node: ast.expr) -> None:
        text = _text(node)
        if text is not None and reads_as_sql(text):
            first = text.strip().splitlines()[0] if text.strip() else text
            self.found.append((node.lineno, f"SQL string {first[:60]!r}"))
        # Read whole: the pieces of a string are not read again on their own.

    def visit_Constant(self, node: ast.Constant) -> None:
        self._string(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        self._string(node)
        for value in node.values:  # expressions inside {...} may hold strings too
            if isinstance(value, ast.FormattedValue):
                self.visit(value)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> None:
        self.visit(node.value)
        if node.format_spec is not None:
            self.visit(node.format_spec)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if _text(node) is None:
            self.generic_visit(node)
            return
        self._string(node)
        for side in (node.left, node.right):  # what is not a string literal
            if _text(side) is None:
                self.visit(side)
            elif isinstance(side, ast.BinOp | ast.JoinedStr):
                self._inner(side)

    def _inner(self, node: ast.expr) -> None:
        """The non-literal parts of a piece of a string already read whole."""
        if isinstance(node, ast.BinOp):
            for side in (node.left, node.right):
                if _text(side) is None:
                    self.visit(side)
                else:
                    self._inner(side)
        elif isinstance(node, ast.JoinedStr):
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    self.visit(value)


def sql_in_source(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """[(line, what)] of the SQL in a module's source."""
    finder = _Finder()
    finder.visit(ast.parse(source, filename))
    return sorted(finder.found)


def client_modules() -> list[Path]:
    """Every module under localrepo/ outside the folders that may hold SQL."""
    return sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in EXEMPT)


def test_no_sql_outside_the_catalog() -> None:
    modules = client_modules()
    rel = {p.relative_to(ROOT).as_posix() for p in modules}
    # The scan sees the client's modules, and none of the exempt ones.
    assert {
        "localrepo/scan/scanner.py",
        "localrepo/sync/engine.py",
        "localrepo/cli/report.py",
    } <= rel
    assert not any(r.startswith(("localrepo/catalog/", "localrepo/server/")) for r in rel)
    found = [
        f"{p.relative_to(ROOT).as_posix()}:{line}: {what}"
        for p in modules
        for line, what in sql_in_source(p.read_text(encoding="utf-8"), str(p))
    ]
    assert not found, (
        "SQL outside localrepo/catalog/ (move it into the catalog module that owns the "
        "table, see docs/design.md section 7):\n" + "\n".join(found)
    )


# -- the checker itself -----------------------------------------------------------------


PLANTED = [
    ('conn.execute("SELECT 1")\n', [".execute", "SQL string"]),
    ("cur.executemany(query, rows)\n", [".executemany"]),
    ("db.executescript(script)\n", [".executescript"]),
    ("run = conn.execute\n", [".execute"]),
    ('run = getattr(conn, "executemany")\n', ["getattr"]),
    ('Q = "select path from file"\n', ["SQL string"]),
    ('Q = "  \\n   INSERT INTO task(name) VALUES (?)"\n', ["SQL string"]),
    ('Q = "INSERT OR IGNORE INTO journal(id) VALUES (?)"\n', ["SQL string"]),
    ('Q = "UPDATE task SET name = ? WHERE name = ?"\n', ["SQL string"]),
    ('Q = "Delete From file WHERE path = ?"\n', ["SQL string"]),
    ('Q = "CREATE TABLE x (a INTEGER)"\n', ["SQL string"]),
    ('Q = "create unique index ix on t(a)"\n', ["SQL string"]),
    ('Q = "PRAGMA foreign_keys = ON"\n', ["SQL string"]),
    ('Q = "WITH t(a) AS (SELECT 1) SELECT a FROM t"\n', ["SQL string"]),
    ('Q = "SELECT COUNT(*) FROM journal WHERE status IN " + OPEN\n', ["SQL string"]),
    ('Q = f"SELECT path FROM {table} WHERE path IN ({marks})"\n', ["SQL string"]),
    ('Q = "SELECT path, size " + "FROM file"\n', ["SQL string"]),
    ('Q = ("SELECT path, size"\n     " FROM aux_file")\n', ["SQL string"]),
    ('Q = "SELECT " + ", ".join(cols) + " FROM file"\n', ["SQL string"]),
    ('print(f"{x}", f"{\'DELETE FROM file\'}")\n', ["SQL string"]),
    ('def f():\n    """A docstring."""\n    return run("select * from t")\n', ["SQL string"]),
]


@pytest.mark.parametrize(("source", "expected"), PLANTED)
def test_the_checker_finds_planted_sql(source: str, expected: list[str]) -> None:
    found = sql_in_source(source)
    assert [what for _line, what in found if any(what.startswith(e) for e in expected)], found
    for e in expected:
        assert any(what.startswith(e) for _line, what in found), (e, found)


def test_the_checker_names_the_line() -> None:
    source = textwrap.dedent(
        """\
        import sqlite3


        def rows(conn):
            return conn.execute(
                "SELECT path FROM file"
            ).fetchall()
        """
    )
    assert sql_in_source(source) == [(5, ".execute"), (6, "SQL string 'SELECT path FROM file'")]


def test_the_checker_finds_sql_in_a_module_on_disk(tmp_path: Path) -> None:
    """What the scan does with a file, on a planted one."""
    module = tmp_path / "planted.py"
    module.write_text(
        'def gone(conn, p):\n    conn.execute("DELETE FROM file WHERE path = ?", (p,))\n'
    )
    assert sql_in_source(module.read_text(), str(module)) == [
        (2, ".execute"),
        (2, "SQL string 'DELETE FROM file WHERE path = ?'"),
    ]


PROSE = [
    '"""Delete from the catalog every row of a gone file. Select the rows, then update."""\n',
    'def f():\n    """Create a task. Update task set by the user."""\n',
    'HELP = "Create a repository in PATH and bind its root to one task."\n',
    'HELP = "With --porcelain: NUL-terminated, no quoting."\n',
    'HELP = "With -v, also show paths that are not ignored."\n',
    'what = f"delete {count} of {total} images on the server, deleted here"\n',
    'msg = "Select the files you want, then run it again."\n',
    'msg = "update the catalog first"\n',
    'msg = "pragmatic choice"\n',
    'msg = "Selected " + str(n) + " files from the tree"\n',
    "pool.submit(run)\nexecutor.shutdown()\nself.execute_plan()\n",
    "from localrepo.sync import execute\nexecute.Executor\n",
    'client.request("DELETE", url)\n',  # an HTTP method, alone
]


@pytest.mark.parametrize("source", PROSE)
def test_the_checker_lets_prose_through(source: str) -> None:
    assert sql_in_source(source) == []


@pytest.mark.parametrize(
    "text",
    [
        "SELECT 1",
        "select hash, id from image",
        "INSERT INTO image(id) VALUES (?)",
        "UPDATE image SET remote_id = NULL",
        "DELETE FROM aux_file",
        "PRAGMA busy_timeout = 60000",
        "WITH RECURSIVE r AS (SELECT 1) SELECT * FROM r",
    ],
)
def test_sql_reads_as_sql(text: str) -> None:
    assert reads_as_sql(text)
