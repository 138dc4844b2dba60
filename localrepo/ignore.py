"""Ignore rules: built-in defaults plus ``.localrepoignore`` files (gitignore syntax).

Pure: the caller reads the ignore files and hands their texts to
:meth:`IgnoreRules.from_texts`. Precedence, highest first:

1. ``.localrepo/`` (the state folder, at any depth) is always ignored, whatever a ``!``
   pattern says.
2. ``.localrepoignore`` files, the deepest folder first; within one file the last
   matching line wins, and a ``!`` line re-includes. Patterns are relative to the folder
   of their file, like git.
3. The built-in :data:`DEFAULT_PATTERNS` (so a user ``!`` pattern can re-include, say,
   ``!*.tmp``).

:meth:`IgnoreRules.is_ignored` judges one directory entry whose parent folders the walker
already found not ignored (it prunes ignored folders); :meth:`IgnoreRules.match` judges an
arbitrary path, parents included, and says which rule ignores it (``git check-ignore -v``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from localrepo.vocabulary import IGNORE_FILE, STATE_DIR

if TYPE_CHECKING:  # pathspec is imported only once an ignore file exists: it is slow to load
    import pathspec

DEFAULT_SOURCE = "<default>"

# Built-in defaults, in gitignore syntax. is_ignored implements them with string checks;
# tests compare that against pathspec compiled from this very list.
DEFAULT_PATTERNS: tuple[str, ...] = (
    ".*",  # dot files and folders (.git, .DS_Store, .localrepoignore, ...)
    "*~",  # editor backups
    "*.tmp",
    "*.part",  # partial downloads
    "*.crdownload",
    "~$*",  # Office lock files
    "Thumbs.db",
    "desktop.ini",
    "__MACOSX/",  # resource forks unpacked from macOS zips
    f"{STATE_DIR}/",  # unconditional, even against a "!" pattern
)
_STATE_PATTERN = f"{STATE_DIR}/"

_SUFFIXES = ("~", ".tmp", ".part", ".crdownload")
_NAMES = frozenset({"Thumbs.db", "desktop.ini"})
# The last four characters of every default name suffix other than "~" (prefilter).
_TAILS4 = frozenset({".tmp", "part", "load", "s.db", ".ini"})


@dataclass(frozen=True)
class IgnoreMatch:
    """The rule that ignores a path: ignore file (or "<default>"), line, pattern text."""

    source: str
    line: int | None
    pattern: str


def _nfc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _clean_folder(folder: str) -> str:
    folder = folder.replace("\\", "/")
    while folder.startswith("./"):
        folder = folder[2:]
    folder = folder.strip("/")
    return "" if folder == "." else folder


def _norm_folder(folder: str) -> str:
    return _nfc(_clean_folder(folder))


def _default_pattern(name: str, is_dir: bool) -> str | None:
    """The last built-in pattern (other than ``.localrepo/``) that matches ``name``."""
    if is_dir and name == "__MACOSX":
        return "__MACOSX/"
    if name == "desktop.ini":
        return "desktop.ini"
    if name == "Thumbs.db":
        return "Thumbs.db"
    if name.startswith("~$"):
        return "~$*"
    for suffix in reversed(_SUFFIXES):
        if name.endswith(suffix):
            return "*" + suffix
    if name.startswith("."):
        return ".*"
    return None


def default_ignored(name: str, is_dir: bool) -> bool:
    """Whether the built-in defaults ignore an entry called ``name``."""
    return (
        name[:1] == "."
        or name.endswith(_SUFFIXES)
        or name.startswith("~$")
        or name in _NAMES
        or (is_dir and name == "__MACOSX")
    )


@dataclass(frozen=True)
class _IgnoreFile:
    """The compiled patterns of the ignore file(s) of one folder."""

    folder: str  # normalised (NFC) folder, "" for the repository root
    files: tuple[str, ...]  # paths of the .localrepoignore file(s) merged here
    spec: pathspec.GitIgnoreSpec
    sources: tuple[str, ...]  # file of each pattern in spec.patterns
    lines: tuple[int, ...]  # line number of each pattern in spec.patterns
    texts: tuple[str, ...]  # text of each pattern in spec.patterns

    @classmethod
    @lru_cache(maxsize=4096)  # the walker rebuilds the rules as it discovers files
    def parse(cls, folder: str, raw_folder: str, text: str) -> _IgnoreFile:
        import pathspec

        source = f"{raw_folder}/{IGNORE_FILE}" if raw_folder else IGNORE_FILE
        if text.startswith("\ufeff"):
            text = text[1:]
        patterns = []
        lines: list[int] = []
        texts: list[str] = []
        for lineno, raw in enumerate(text.split("\n"), 1):
            line = _nfc(raw.rstrip("\r"))
            if not line.strip() or line.startswith("#"):
                continue
            for pattern in pathspec.GitIgnoreSpec.from_lines([line]).patterns:
                if pattern.include is None:
                    continue
                patterns.append(pattern)
                lines.append(lineno)
                texts.append(line)
        return cls(
            folder,
            (source,),
            pathspec.GitIgnoreSpec(patterns),
            (source,) * len(patterns),
            tuple(lines),
            tuple(texts),
        )

    def merged(self, other: _IgnoreFile) -> _IgnoreFile:
        """Both files' patterns, ``other``'s after (so winning over) this one's."""
        import pathspec

        return _IgnoreFile(
            self.folder,
            self.files + other.files,
            pathspec.GitIgnoreSpec([*self.spec.patterns, *other.spec.patterns]),
            self.sources + other.sources,
            self.lines + other.lines,
            self.texts + other.texts,
        )


def _build(texts: Mapping[str, str], files: dict[str, _IgnoreFile]) -> dict[str, _IgnoreFile]:
    # Folders whose names differ only in Unicode normalisation (possible on Linux) are one
    # folder for localrepo: their files are merged, in a deterministic order.
    for raw_folder in sorted(texts):
        key = _norm_folder(raw_folder)
        parsed = _IgnoreFile.parse(key, _clean_folder(raw_folder), texts[raw_folder])
        files[key] = files[key].merged(parsed) if key in files else parsed
    return files


def default_ignores_image_file(name: str) -> bool:
    """`default_ignored(name, False)` for a name known to end in an image extension.

    Such a name cannot end in a default suffix (`~`, `.tmp`, ...) nor be `Thumbs.db` or
    `desktop.ini`: only the dot-file and `~$` rules can apply. The walker's hot path.
    """
    return name[0] == "." or name[:2] == "~$"


class IgnoreRules:
    """The ignore rules of one repository (see the module docstring for precedence)."""

    __slots__ = ("_chains", "_files")

    def __init__(self, files: Mapping[str, _IgnoreFile] | None = None) -> None:
        self._files: dict[str, _IgnoreFile] = dict(files or {})
        # parent folder -> applicable ignore files, deepest first, with the length of
        # the prefix to cut from a path to make it relative to the file's folder.
        self._chains: dict[str, tuple[tuple[int, _IgnoreFile], ...]] = {}

    @classmethod
    def from_texts(cls, texts: Mapping[str, str]) -> IgnoreRules:
        """Build from ``{folder: text of folder/.localrepoignore}``; "" is the root."""
        return cls(_build(texts, {}))

    @property
    def sources(self) -> tuple[str, ...]:
        """The ignore files in use (repository paths), sorted."""
        return tuple(sorted(name for f in self._files.values() for name in f.files))

    def _chain(self, parent: str) -> tuple[tuple[int, _IgnoreFile], ...]:
        chain = self._chains.get(parent)
        if chain is None:
            found = []
            for folder, file in self._files.items():
                if folder == "":
                    found.append((0, file))
                elif parent == folder or parent.startswith(folder + "/"):
                    found.append((len(folder) + 1, file))
            found.sort(key=lambda item: item[0], reverse=True)
            chain = tuple(found)
            self._chains[parent] = chain
        return chain

    @property
    def has_files(self) -> bool:
        """Whether any .localrepoignore is in force (else only the defaults apply)."""
        return bool(self._files)

    def is_ignored(self, path: str, is_dir: bool) -> bool:
        """Whether the walker should skip this entry (its parents are taken as not ignored).

        ``path`` is repository-relative posix. Built for speed: with no ignore files it is
        a few substring tests (most image paths never get further); otherwise only the
        ignore files at or above the entry's folder are consulted.
        """
        if self._files:
            return self._is_ignored_with_files(path, is_dir)
        # Cheap prefilter: every default needs one of these; confirm on the name only.
        if is_dir or "/." in path or path[:1] == "." or "~" in path or path[-4:] in _TAILS4:
            return default_ignored(path[path.rfind("/") + 1 :], is_dir)
        return False

    def _is_ignored_with_files(self, path: str, is_dir: bool) -> bool:
        if not path.isascii():
            path = _nfc(path)
        slash = path.rfind("/")
        name = path[slash + 1 :]
        if is_dir and name == STATE_DIR:
            return True
        chain = self._chain(path[:slash] if slash >= 0 else "")
        if chain:
            query = path + "/" if is_dir else path
            for cut, file in chain:
                include = file.spec.check_file(query[cut:]).include
                if include is not None:
                    return include
        return default_ignored(name, is_dir)

    def _match_entry(self, path: str, is_dir: bool) -> IgnoreMatch | None:
        slash = path.rfind("/")
        name = path[slash + 1 :]
        if is_dir and name == STATE_DIR:
            return IgnoreMatch(DEFAULT_SOURCE, None, _STATE_PATTERN)
        query = path + "/" if is_dir else path
        for cut, file in self._chain(path[:slash] if slash >= 0 else ""):
            result = file.spec.check_file(query[cut:])
            if result.include is None:
                continue
            if not result.include or result.index is None:
                return None  # re-included by a "!" pattern
            i = result.index
            return IgnoreMatch(file.sources[i], file.lines[i], file.texts[i])
        pattern = _default_pattern(name, is_dir)
        return IgnoreMatch(DEFAULT_SOURCE, None, pattern) if pattern is not None else None

    def match(self, path: str, is_dir: bool) -> IgnoreMatch | None:
        """Which rule ignores ``path``, or None if it is not ignored.

        Parent folders count: a file under an ignored folder is ignored by that folder's
        rule (reported for the shallowest ignored parent), and a ``!`` pattern cannot
        re-include a file whose folder is ignored, as in git.
        """
        path = _nfc(path.strip("/"))
        if path == "":
            return None
        parts = path.split("/")
        for i in range(1, len(parts)):
            found = self._match_entry("/".join(parts[:i]), True)
            if found is not None:
                return found
        return self._match_entry(path, is_dir)


__all__ = [
    "DEFAULT_PATTERNS",
    "DEFAULT_SOURCE",
    "IgnoreMatch",
    "IgnoreRules",
    "default_ignored",
]


def ignore_rules_above(root: Path, folder: str) -> IgnoreRules | None:
    """The rules of the `.localrepoignore` files in the repository root and every folder
    down to `folder` (repository-relative): what decides whether a first-level folder
    of a task rooted there is ignored. None when there are no such files (only the
    defaults, which the naming rule's folders never match)."""
    texts: dict[str, str] = {}
    parts = [p for p in folder.split("/") if p]
    for depth in range(len(parts) + 1):
        rel = "/".join(parts[:depth])
        try:
            texts[rel] = (root / rel / IGNORE_FILE).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
    return IgnoreRules.from_texts(texts) if texts else None
