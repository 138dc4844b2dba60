"""One rule between label names and label folder names, used in both directions.

The scanner reads a label from a first-level folder name (`folder_verdict`), the
downloader and the executor write a label's folder (`folder_for_label`). The two are
inverse by construction: a folder name is accepted only when it is exactly the folder
its own label would be written to, so every label folder the scanner accepts comes back
as the same folder on every other clone, and nothing that cannot round-trip is ever
uploaded under a name that would later read as something else.

The escape (documented for users in docs/sync.md, "Label names and folder names"): a
character that a folder name cannot hold, or that would make the folder something other
than a label folder, is written as `%XX`, the upper-case hex of each of its UTF-8 bytes:

- `/`, `\\`, NUL, and every character Python does not call printable (control and
  format characters such as tab, no-break space, zero-width space, bidi marks);
- `%` when two upper-case hex digits follow it (so `100%` stays `100%`);
- a combining mark right after an escape (it would compose with the escape's last hex
  digit when the name is read in NFC);
- a leading `.` or `_` (such folders are never labels), a leading or trailing space;
- what the built-in ignore rules would hide (`*~`, `*.tmp`, `*.part`, `*.crdownload`,
  `~$*`, `Thumbs.db`, `desktop.ini`): the character that makes the match.

A label that is not in Unicode NFC, holds a lone surrogate, or whose folder would be
longer than 255 bytes (the usual file-system limit) has no folder: the caller reports
it and leaves its images alone. Pure functions, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

MAX_FOLDER_BYTES = 255  # NAME_MAX of ext4, XFS, APFS, NTFS (in UTF-16 units there)

_HEX_ESCAPE = re.compile(r"%[0-9A-F]{2}")
_ESCAPE_RUN = re.compile(r"(?:%[0-9A-F]{2})+")
# Suffixes and names the default ignore rules hide (localrepo/ignore.py DEFAULT_PATTERNS),
# and the index, from the end, of the character escaped to keep the folder visible.
_IGNORED_SUFFIXES = (".crdownload", ".part", ".tmp")
_IGNORED_NAMES = ("Thumbs.db", "desktop.ini")


def nfc(text: str) -> str:
    """The Unicode NFC form of ``text``: label names, folder names and sidecar paths are
    compared in NFC."""
    if text.isascii():  # O(1) in CPython; ASCII is always NFC
        return text
    return unicodedata.normalize("NFC", text)


def _escape(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8"))


def _must_escape(label: str, i: int) -> bool:
    ch = label[i]
    if ch in "/\\\0" or not ch.isprintable():
        return True
    if ch == "%":
        return _HEX_ESCAPE.match(label, i) is not None
    if i == 0 and (ch in "._ " or (ch == "~" and label[1:2] == "$")):
        return True
    return i == len(label) - 1 and ch in " ~"


@lru_cache(maxsize=65536)
def folder_for_label(label: str) -> str | None:
    """The folder name of a label, or None when no folder can stand for it."""
    if not isinstance(label, str) or not label or nfc(label) != label:
        return None
    try:
        label.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON allows them)
        return None
    if label.isascii() and label.isprintable() and not _needs_any_escape(label):
        folder = label
    else:
        out: list[str] = []
        escaped = False
        for i, ch in enumerate(label):
            # A combining mark after an escape would compose with its last hex digit
            # once the name is read in NFC (`E` + U+0301 is `É`): escape it too.
            escaped = _must_escape(label, i) or (escaped and unicodedata.combining(ch) > 0)
            out.append(_escape(ch) if escaped else ch)
        folder = "".join(out)
        if nfc(folder) != folder:  # not stable as a file name: no folder can hold it
            return None
    folder = _unhide(folder)
    if len(folder.encode("utf-8")) > MAX_FOLDER_BYTES:
        return None
    return folder


def _needs_any_escape(label: str) -> bool:
    """The ASCII fast path: does any position need an escape?"""
    return (
        "/" in label
        or "\\" in label
        or ("%" in label and _HEX_ESCAPE.search(label) is not None)
        or label[0] in "._ "
        or label.startswith("~$")
        or label[-1] in " ~"
    )


def _unhide(folder: str) -> str:
    """Escape the character that would make a default ignore rule hide the folder."""
    for suffix in _IGNORED_SUFFIXES:
        if folder.endswith(suffix):
            cut = len(folder) - len(suffix)
            return folder[:cut] + "%2E" + folder[cut + 1 :]
    if folder in _IGNORED_NAMES:
        dot = folder.index(".")
        return folder[:dot] + "%2E" + folder[dot + 1 :]
    return folder


def label_from_folder(folder: str) -> str | None:
    """The label an escaped folder name spells (not checked for being canonical), or
    None when its escapes are not UTF-8."""
    folder = nfc(folder)
    if "%" not in folder:
        return folder
    try:
        return _ESCAPE_RUN.sub(
            lambda m: bytes.fromhex(m.group(0).replace("%", "")).decode("utf-8"), folder
        )
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class FolderVerdict:
    """What a first-level folder of a task root is.

    `label`: the label it stands for, or None. `refused`: why it cannot stand for one
    although it looks like a label folder (None for a label folder, and for a folder
    that is never a label, starting with "." or "_"). `suggestions`: names to rename it
    to, the plainest first.
    """

    label: str | None
    refused: str | None = None
    suggestions: tuple[str, ...] = ()

    def message(self, path: str) -> str:
        """The user's message for a refused folder at `path`."""
        hint = " or ".join(f"'{s}'" for s in self.suggestions)
        what = f"; rename it to {hint}" if hint else "; rename it to a shorter name"
        return (
            f"folder '{path}' cannot be a label folder: {self.refused}{what}. Its images "
            "are not synced (nothing is uploaded or deleted) until it is renamed."
        )


@lru_cache(maxsize=65536)
def folder_verdict(folder: str) -> FolderVerdict:
    """Read a first-level folder name under a task root."""
    if not folder or folder[0] in "._":
        return FolderVerdict(None)  # never a label (`_unlabeled`, dot folders)
    if folder.isascii() and "%" not in folder and folder_for_label(folder) == folder:
        return FolderVerdict(folder)  # the common case
    name = nfc(folder)
    label = label_from_folder(name)
    if label is None:
        return FolderVerdict(
            None, "its %XX escapes are not UTF-8 text", _suggest(name.replace("%", "-"))
        )
    canonical = folder_for_label(label)
    if canonical == name:
        return FolderVerdict(label)
    if canonical is None:
        if nfc(label) != label:
            why = "its escapes spell a name that is not in Unicode NFC form"
        else:
            why = f"the label's folder would be longer than {MAX_FOLDER_BYTES} bytes"
        return FolderVerdict(None, why, _suggest(label))
    # The escaped folder that keeps the name exactly as typed, when the escapes misread it.
    literal = folder_for_label(name) if label != name else None
    suggestions = _suggest(label, canonical) + ((literal,) if literal else ())
    return FolderVerdict(None, _why_not_canonical(name), suggestions)


def _why_not_canonical(name: str) -> str:
    if name != name.strip(" "):
        return "it starts or ends with a space"
    if "\\" in name:
        return "it holds a backslash"
    odd = sorted({ch for ch in name if not ch.isprintable()})
    if odd:
        shown = ", ".join(_char_name(ch) for ch in odd)
        return f"it holds an invisible or control character ({shown})"
    if _ESCAPE_RUN.search(name):
        return "its %XX escapes are not the ones localrepo writes"
    return "another clone would write it differently"


_CONTROL_NAMES = {"\t": "tab", "\n": "line feed", "\r": "carriage return"}


def _char_name(ch: str) -> str:
    name = _CONTROL_NAMES.get(ch) or unicodedata.name(ch, "control character").lower()
    return f"U+{ord(ch):04X} {name}"


def _suggest(label: str, canonical: str | None = None) -> tuple[str, ...]:
    """A plain name first (spaces collapsed, invisible characters and slashes gone),
    then the escaped folder that keeps the label exactly, if there is one."""
    plain = "".join(
        " " if ch.isspace() else ("-" if ch in "/\\" else ch)
        for ch in label
        if ch.isprintable() or ch.isspace()
    )
    plain = " ".join(plain.split()).lstrip("._")
    out: list[str] = []
    if plain and folder_for_label(plain) == plain:
        out.append(plain)
    if canonical is not None and canonical not in out:
        out.append(canonical)
    return tuple(out)
