"""Helpers of the scanner tests (tests/scan/test_scanner_*.py)."""

from __future__ import annotations

import json
from pathlib import Path

from support.treebuilder import repo_main


def status_json(root: Path, capsys) -> dict:
    code, out, _err = repo_main(["-C", str(root), "status", "--json"], capsys)
    assert code == 0
    return json.loads(out)
