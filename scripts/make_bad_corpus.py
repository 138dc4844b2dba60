"""Write the bad-input corpus (tests/support/badcorpus.py) into a folder, for a look by hand:

    python scripts/make_bad_corpus.py [OUT]     (default: tests/data/bad-corpus)

then `repo -C OUT status` lists every case. The tests build the same tree into a
temporary folder at test time (tests/e2e/test_bad_input.py); nothing of it is committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE / "tests"))

from support.badcorpus import build  # noqa: E402

from localrepo.repository import Repository, add_task, init_repository  # noqa: E402


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else HERE / "tests" / "data" / "bad-corpus"
    if out.exists() and any(out.iterdir()):
        print(f"{out} exists and is not empty; give a new folder.", file=sys.stderr)
        return 1
    repo = init_repository(out, task="pets", task_type="multi_class")
    cases = build(repo.root)
    add_task(Repository(repo.root), repo.root / "ages", task="age", task_type="regression")
    for case in cases:
        print(f"{case.shown:<28} {case.name}")
    print(f"\n{len(cases)} bad inputs in {out}; see them with: repo -C {out} status")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
