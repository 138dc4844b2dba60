"""Walk a repository with os.scandir: stat only, no reads of image files.

Symlinks are never followed (a symlink is reported, not scanned). Ignored folders are
pruned. `.localrepoignore` files take effect from the folder that holds them downwards,
so the walk reads one as soon as it enters its folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from stat import S_ISDIR, S_ISLNK, S_ISREG

from localrepo.ignore import IgnoreRules, default_ignores_image_file
from localrepo.layout import IMAGE_EXTENSIONS, SIDECAR_NAMES, is_image_name
from localrepo.vocabulary import IGNORE_FILE, STATE_DIR, TMP_SUFFIX

_SPECIAL_NAMES = frozenset((*SIDECAR_NAMES, IGNORE_FILE))


# (dev, inode, size, mtime_ns, ctime_ns): a plain tuple, because a walk makes one per
# file and compares it with the cached row's, and tuples are the cheapest to build.
Stat = tuple[int, int, int, int, int]
DEV, INODE, SIZE, MTIME, CTIME = range(5)


@dataclass
class WalkResult:
    images: dict[str, Stat] = field(default_factory=dict)  # candidate image files
    sidecars: dict[str, Stat] = field(default_factory=dict)  # metadata.jsonl / .csv
    ignore_files: dict[str, str] = field(default_factory=dict)  # folder -> text
    ignore_stats: dict[str, Stat] = field(default_factory=dict)  # path -> stat
    skipped: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # path -> reason
    folders: set[str] = field(default_factory=set)
    leftovers: list[str] = field(default_factory=list)  # temp files of an interrupted sync
    # Image files a walk against the stat cache (Settle) found equal to their row and
    # left out of `images` (scan/statmerge.py).
    settled: int = 0

    def merge(self, part: WalkResult) -> None:
        """Add what a walk of other folders found."""
        self.settled += part.settled
        self.images.update(part.images)
        self.sidecars.update(part.sidecars)
        self.ignore_files.update(part.ignore_files)
        self.ignore_stats.update(part.ignore_stats)
        self.skipped.update(part.skipped)
        self.folders |= part.folders
        self.leftovers += part.leftovers


@dataclass
class Settle:
    """A walk against the stat cache (scan/statmerge.py): `cache` holds {path: stat
    signature} of the catalogued files under the walk (-1, which hash() never returns,
    for a row that must not settle). A file whose signature equals its row's is settled:
    counted in WalkResult.settled and kept nowhere. The walk pops the row of every
    image file it meets from `cache`; those of the files it keeps go to `rows`.
    statmerge.py sorts out the rows left (files gone, skipped, unseen)."""

    cache: dict[str, int]
    rows: dict[str, int] = field(default_factory=dict)


def _stat(st: os.stat_result) -> Stat:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _valid_name(name: str) -> bool:
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes surface as lone surrogates
        return False
    return True


def walk(
    root: str,
    rules: IgnoreRules | None = None,
    start: str = "",
    on_folder: Callable[[WalkResult, list[str]], None] | None = None,
    *,
    recursive: bool = True,
    settle: Settle | None = None,
) -> WalkResult:
    """Walk root (or the subfolder `start` of it) and collect what the scanner needs.
    `on_folder(result so far, image paths the folder added)` is called after each
    folder (so that hashing can start before the walk ends). A `start` that a full
    walk would never enter (ignored, the state folder, a bad name) yields nothing. Not
    `recursive`: only `start` itself is listed; its subfolders go to `folders` unlisted.
    `settle`: leave out the files equal to their cached row (see Settle)."""
    result = WalkResult()
    texts: dict[str, str] = {}
    if rules is None:
        rules = IgnoreRules.from_texts({})
    if start:
        rules = _rules_above(root, start, rules, texts, result)
        if _pruned(start, rules):
            return result
    images = result.images
    stack = [start]
    while stack:
        folder = stack.pop()
        result.folders.add(folder)
        entries = _list_folder(root, folder, result)
        if entries is None:
            continue
        if folder not in texts:
            # One open() that fails costs less than looking for the name among the
            # folder's entries (a thousand, in an image folder).
            text = _read_ignore(root, folder, result)
            if text is not None:
                texts[folder] = text
                rules = IgnoreRules.from_texts(texts)
        images_before = len(images)
        subfolders = _entries(result, folder, entries, rules, settle)
        if recursive:
            stack += subfolders
        else:
            result.folders.update(subfolders)
        if on_folder is not None:
            # This folder's images are the dict's last entries (insertion order).
            added = len(images) - images_before
            on_folder(result, list(islice(reversed(images), added))[::-1] if added else [])
    return result


def _rules_above(
    root: str, start: str, rules: IgnoreRules, texts: dict[str, str], result: WalkResult
) -> IgnoreRules:
    """The rules in force at `start`: ignore files above it still apply to it (their
    texts are added to `texts`)."""
    parts = start.split("/")
    for i in range(len(parts)):
        folder = "/".join(parts[:i])
        text = _read_ignore(root, folder, result)
        if text is not None:
            texts[folder] = text
    return IgnoreRules.from_texts(texts) if texts else rules


def _list_folder(root: str, folder: str, result: WalkResult) -> list[os.DirEntry[str]] | None:
    abs_folder = os.path.join(root, folder) if folder else root
    try:
        with os.scandir(abs_folder) as it:
            return list(it)
    except OSError as exc:
        result.skipped[folder or "."] = ("unreadable folder", exc.strerror)
        return None


def _entries(
    result: WalkResult,
    folder: str,
    entries: list[os.DirEntry[str]],
    rules: IgnoreRules,
    settle: Settle | None,
) -> list[str]:
    """Sort one folder's entries into `result`; returns its subfolders to walk, in the
    order listed. An image file under the built-in defaults alone (the common case) is
    decided here without a call; every other entry by the helpers below. Image files
    are settled here (see Settle)."""
    images = result.images
    pop = settle.cache.pop if settle is not None else None
    rows = settle.rows if settle is not None else {}
    settled = 0
    is_ignored = rules.is_ignored
    user_rules = rules.has_files
    fast = not user_rules  # only the built-in defaults apply here
    prefix = f"{folder}/" if folder else ""
    subfolders: list[str] = []
    for entry in entries:
        name = entry.name
        rel = prefix + name
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            result.skipped[_shown(rel)] = ("unreadable", exc.strerror)
            continue
        mode = st.st_mode
        if S_ISREG(mode):
            dot = name.rfind(".")
            if (
                fast
                and dot > 0
                and name[0] not in ".~"  # dot files and ~$ are the defaults' business
                and name[dot + 1 :].lower() in IMAGE_EXTENSIONS
                and name.isascii()
            ):  # the common case, decided without a call
                stat = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            else:
                stat = _file(result, rel, name, dot, st, is_ignored, user_rules)
                if stat is None:
                    continue
            if pop is not None:
                row = pop(rel, None)
                if row is not None:
                    if row == hash(stat):
                        settled += 1
                        continue
                    rows[rel] = row
            images[rel] = stat
        elif S_ISDIR(mode):
            if _subfolder(result, folder, rel, name, is_ignored):
                subfolders.append(rel)
        else:
            _other(result, entry, rel, name, mode, is_ignored)
    result.settled += settled
    return subfolders


def _file(
    result: WalkResult,
    rel: str,
    name: str,
    dot: int,
    st: os.stat_result,
    is_ignored: Callable[[str, bool], bool],
    user_rules: bool,
) -> Stat | None:
    """A regular file the common case did not decide: an image (exact rule for odd
    names: its stat is returned), an ignore file, a sidecar, a sync's temp file, or
    nothing of ours."""
    if not (
        dot > 0
        and name[dot + 1 :].lower() in IMAGE_EXTENSIONS
        and (name[0] != "." or is_image_name(name))  # exact rule for odd names
    ):
        if name == IGNORE_FILE:  # a dot file, yet it counts
            result.ignore_stats[rel] = _stat(st)
        elif name in _SPECIAL_NAMES and not is_ignored(rel, False):
            result.sidecars[rel] = _stat(st)
        elif name.endswith(TMP_SUFFIX) and name[0] == ".":
            result.leftovers.append(rel)  # a crashed sync's temp file
        return None
    if (
        is_ignored(rel, False) if user_rules else default_ignores_image_file(name)
    ) or not _valid_name(name):
        _skip_bad_name(result, rel, name)
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _subfolder(
    result: WalkResult,
    folder: str,
    rel: str,
    name: str,
    is_ignored: Callable[[str, bool], bool],
) -> bool:
    """Whether to walk (or list) a subfolder: not the state folder, not ignored, and
    a name that is UTF-8 (else reported)."""
    if not folder and name == STATE_DIR:
        return False
    if is_ignored(rel, True):
        return False
    if not _valid_name(name):
        _skip_bad_name(result, rel, name)
        return False
    return True


def _other(
    result: WalkResult,
    entry: os.DirEntry[str],
    rel: str,
    name: str,
    mode: int,
    is_ignored: Callable[[str, bool], bool],
) -> None:
    """A symlink (never followed: reported when it stands for an image or a folder) or
    another kind of file named as an image (reported)."""
    if S_ISLNK(mode):
        if is_ignored(rel, False):
            return
        target_is_dir = _points_to_dir(entry)
        if target_is_dir or is_image_name(name):
            what = "symlink to a folder skipped" if target_is_dir else "symlink skipped"
            result.skipped[_shown(rel)] = (what, "localrepo never follows symlinks")
    elif is_image_name(name) and not is_ignored(rel, False):
        result.skipped[_shown(rel)] = ("not a regular file", None)


def _pruned(start: str, rules: IgnoreRules) -> bool:
    """Whether a walk from the root would never enter the folder `start`."""
    parts = start.split("/")
    if parts[0] == STATE_DIR:
        return True
    return any(
        not _valid_name(name) or rules.is_ignored("/".join(parts[: i + 1]), True)
        for i, name in enumerate(parts)
    )


def _shown(rel: str) -> str:
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _skip_bad_name(result: WalkResult, rel: str, name: str) -> None:
    """Record a file or folder whose name is not UTF-8 (only when it is not ignored)."""
    if _valid_name(name):
        return  # it was ignored, not badly named
    result.skipped[_shown(rel)] = (
        "file name is not valid UTF-8",
        "rename it; localrepo stores names as UTF-8",
    )


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
