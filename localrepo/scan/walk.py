"""Walk a repository with os.scandir: stat only, no reads of image files.

Symlinks are never followed (a symlink is reported, not scanned). Ignored folders are
pruned. `.localrepoignore` files take effect from the folder that holds them downwards,
so the walk reads one as soon as it enters its folder.
"""

from __future__ import annotations

import os
import stat as stat_mod
from dataclasses import dataclass, field

from localrepo.ignore import IgnoreRules
from localrepo.layout import SIDECAR_NAMES, is_image_name

IGNORE_FILE = ".localrepoignore"
STATE_DIR = ".localrepo"


@dataclass(frozen=True, slots=True)
class Stat:
    dev: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int


@dataclass
class WalkResult:
    images: dict[str, Stat] = field(default_factory=dict)  # candidate image files
    sidecars: dict[str, Stat] = field(default_factory=dict)  # metadata.jsonl / .csv
    ignore_files: dict[str, str] = field(default_factory=dict)  # folder -> text
    ignore_stats: dict[str, Stat] = field(default_factory=dict)  # path -> stat
    skipped: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # path -> reason
    folders: set[str] = field(default_factory=set)


def _stat(st: os.stat_result) -> Stat:
    return Stat(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _valid_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes surface as lone surrogates
        return False
    return True


def walk(root: str, rules: IgnoreRules | None = None, start: str = "") -> WalkResult:
    """Walk root (or the subfolder `start` of it) and collect what the scanner needs."""
    result = WalkResult()
    texts: dict[str, str] = {}
    if rules is None:
        rules = IgnoreRules.from_texts({})
    # Ignore files above `start` still apply to it.
    if start:
        parts = start.split("/")
        for i in range(len(parts)):
            folder = "/".join(parts[:i])
            text = _read_ignore(root, folder, result)
            if text is not None:
                texts[folder] = text
        if texts:
            rules = IgnoreRules.from_texts(texts)
    stack = [start]
    while stack:
        folder = stack.pop()
        result.folders.add(folder)
        abs_folder = os.path.join(root, folder) if folder else root
        try:
            with os.scandir(abs_folder) as it:
                entries = list(it)
        except OSError as exc:
            result.skipped[folder or "."] = ("unreadable folder", exc.strerror)
            continue
        names = {e.name for e in entries}
        if IGNORE_FILE in names and folder not in texts:
            text = _read_ignore(root, folder, result)
            if text is not None:
                texts[folder] = text
                rules = IgnoreRules.from_texts(texts)
        for entry in entries:
            name = entry.name
            if folder == "" and name == STATE_DIR:
                continue
            rel = join(folder, name)
            if not _valid_name(name):
                shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                result.skipped[shown] = (
                    "file name is not valid UTF-8",
                    "rename it; localrepo stores names as UTF-8",
                )
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                result.skipped[rel] = ("unreadable", exc.strerror)
                continue
            mode = st.st_mode
            if stat_mod.S_ISLNK(mode):
                if rules.is_ignored(rel, False):
                    continue
                target_is_dir = _points_to_dir(entry)
                if target_is_dir or is_image_name(name):
                    what = "symlink to a folder skipped" if target_is_dir else "symlink skipped"
                    result.skipped[rel] = (what, "localrepo never follows symlinks")
                continue
            if stat_mod.S_ISDIR(mode):
                if rules.is_ignored(rel, True):
                    continue
                stack.append(rel)
                continue
            if rules.is_ignored(rel, False):
                continue
            if not stat_mod.S_ISREG(mode):
                if is_image_name(name):
                    result.skipped[rel] = ("not a regular file", None)
                continue
            if name in SIDECAR_NAMES:
                result.sidecars[rel] = _stat(st)
            elif name == IGNORE_FILE:
                result.ignore_stats[rel] = _stat(st)
            elif is_image_name(name):
                result.images[rel] = _stat(st)
    return result


def _points_to_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:  # dangling or looping symlink
        return False


def _read_ignore(root: str, folder: str, result: WalkResult) -> str | None:
    path = os.path.join(root, folder, IGNORE_FILE) if folder else os.path.join(root, IGNORE_FILE)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        result.skipped[join(folder, IGNORE_FILE)] = ("unreadable", exc.strerror)
        return None
    result.ignore_files[folder] = text
    return text
