"""The bad-input corpus (issue 7): one folder tree holding every bad input of the design's
list (section 2: what is an image, layout rules, sidecars), each next to good files.

`build(root)` writes it (tests build it into a temporary folder at test time; nothing
binary is committed) and returns the cases: where each bad input sits, and a piece of
the message that must name it in `repo status --json` (`invalid` reasons or `problems`).
`scripts/make_bad_corpus.py OUT` writes the same tree for a look by hand.

Layout: the repository root is bound to a multi_class task `pets`; `ages/` is bound to
a regression task `age`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from support.imagegen import decompression_bomb_png, image_bytes, truncated_jpeg


@dataclass(frozen=True)
class Case:
    name: str  # what is wrong
    path: str  # the file (or folder) at fault, relative to the root
    where: str  # "invalid" (a file that is no image) | "problems" (layout, sidecar)
    says: str  # a piece of the message, besides the path

    @property
    def shown(self) -> str:
        """The path as messages show it (bytes that are not UTF-8 replaced)."""
        return self.path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def img(n: int) -> bytes:
    return image_bytes(n, size=(16, 12))


# The good files: they must sync whatever sits next to them.
GOOD = {
    "dog/good1.jpg": 1,
    "cat/good2.jpg": 2,
    "ages/young/good3.jpg": 3,
}


def _write(root: Path, rel: str, data: bytes | str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)


def _symlink(target: str) -> Callable[[Path, str], None]:
    def make(root: Path, rel: str) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / rel)

    return make


def _fifo(root: Path, rel: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(root / rel)


CASES: list[tuple[Case, Callable[[Path, str], None] | bytes | str]] = [
    (Case("empty file", "dog/empty.jpg", "invalid", "empty"), b""),
    (Case("truncated image", "dog/truncated.jpg", "invalid", "truncated"), truncated_jpeg()),
    (Case("text with an image name", "dog/notes.jpg", "invalid", "not an image"), "hello\n" * 9),
    (Case("decompression bomb", "cat/bomb.png", "invalid", "too large"), decompression_bomb_png()),
    (Case("symlink to an image", "cat/link.jpg", "invalid", "symlink"), _symlink("good2.jpg")),
    (Case("symlink loop", "cat/loop.jpg", "invalid", "symlink"), _symlink("loop.jpg")),
    (Case("symlink to a folder", "dogs", "invalid", "symlink"), _symlink("dog")),
    (Case("fifo", "cat/pipe.jpg", "invalid", "not a regular file"), _fifo),
    (Case("name not UTF-8", "dog/caf\udce9.jpg", "invalid", "UTF-8"), img(9)),
    (Case("case twins", "Dog/twin.jpg", "problems", "'Dog'"), img(4)),
    (
        Case("broken sidecar line", "cat/metadata.jsonl", "problems", ":2: not valid JSON"),
        '{"file_name": "good2.jpg"}\n{not json\n',
    ),
    (
        Case("sidecar name escaping its folder", "dog/metadata.csv", "problems", "uses '..'"),
        "file_name,label\n../x.jpg,dog\n",
    ),
    (Case("one image in two category folders", "cat/copy.jpg", "problems", "ambiguous"), img(1)),
    (
        Case("regression image without a value", "ages/old/novalue.jpg", "problems", "no value"),
        img(5),
    ),
    (
        Case(
            "regression value not a number",
            "ages/old/metadata.jsonl",
            "problems",
            "not a finite number",
        ),
        json.dumps({"file_name": "nan.jpg", "value": "NaN"})
        + "\n"
        + json.dumps({"file_name": "inf.jpg", "value": "Infinity"})
        + "\n",
    ),
    (Case("regression NaN image", "ages/old/nan.jpg", "problems", "no value"), img(6)),
]


def build(root: Path) -> list[Case]:
    """Write the corpus (good and bad files) under `root`; returns the bad cases."""
    for rel, n in GOOD.items():
        _write(root, rel, img(n))
    _write(root, "ages/young/metadata.jsonl", json.dumps({"file_name": "good3.jpg", "value": 3}))
    out = []
    for case, make in CASES:
        if callable(make):
            make(root, case.path)
        else:
            _write(root, case.path, make)
        out.append(case)
    return out
