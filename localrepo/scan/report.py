"""What a scan reports: plain data, filled in by the scanner's stages (scanner.py says
which) and read by the commands and the sync engine."""

from __future__ import annotations

from dataclasses import dataclass, field

from localrepo.scan import changes as ch


@dataclass
class Problem:
    kind: str
    message: str
    path: str | None = None
    task_id: int | None = None


@dataclass
class ScanReport:
    files: int = 0
    hashed: int = 0
    changes: list[ch.Change] = field(default_factory=list)
    # A large first scan (scan/firstscan.py) journals its additions without holding
    # them: `changes` lists none of them; the journal has them, from this id on.
    unlisted_additions: int = 0
    unlisted_first_id: int = 0
    invalid: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    retry_later: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # temp files of an interrupted sync
    seconds: float = 0.0
    # A scoped scan: the folders it walked (recursively); None for a full scan.
    scope: list[str] | None = None

    def change_count(self) -> int:
        return len(self.changes) + self.unlisted_additions
