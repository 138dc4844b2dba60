"""Label names for the simulation, drawn from arbitrary Unicode (see localrepo/labelnames.py).

Clone side: folder names the scanner accepts (and that are exactly the folder of their
label, so every clone writes them the same), and names it refuses (a trailing space, a
tab, NBSP, a zero-width space, a backslash). Server side: any label name, including ones
whose folder needs `%XX` escapes and ones that have no folder at all (not NFC, or a folder
longer than 255 bytes).
"""

from __future__ import annotations

import random
import unicodedata

from localrepo.labelnames import folder_for_label, folder_verdict

# Character pools, drawn from uniformly: plain letters dominate through repetition, the
# others bring accents, other scripts, astral characters, combining marks, punctuation
# that needs escapes, and invisible characters.
_POOLS: tuple[str, ...] = (
    "abcdefghijklmnopqrstuvwxyz",
    "abcdefghijklmnopqrstuvwxyz0123456789",
    "ÀÉÎÕÜßñçøåæéèà",
    "αβγδλΩжзийЯ",
    "日本語猫犬鳥한국어",
    "שלוםمرحبا",
    "\U0001f431\U0001f436\U0001f98a\U0001f989\U0001d54f",
    "\u0301\u0308\u0327",
    " .-_%~/\\'\"!&()[]{}#+,;=@^`",
    "\u00a0\u200b\u200d\u200e\u202e\t\u2028\ufeff",
)
# Names that need an escape in their folder (leading `_`/`.`/space, a slash, `%XX`, what
# an ignore rule would hide), as the module docstring of labelnames.py lists them.
_ESCAPED: tuple[str, ...] = (
    "a/b",
    "_x",
    ".x",
    " lead",
    "trail ",
    "%41",
    "100%",
    "x.tmp",
    "Thumbs.db",
    "~$x",
    "a\\b",
    "tab\there",
    "nb\u00a0sp",
)
# Characters that make a folder name refused (docs/sync.md: its images are held back).
_REFUSING: tuple[str, ...] = (" ", "\t", "\u00a0", "\u200b", "\\")


def unicode_name(rng: random.Random, max_len: int = 8) -> str:
    """Any string of 1..max_len characters (no NUL, no lone surrogate)."""
    n = rng.randint(1, max_len)
    return "".join(rng.choice(rng.choice(_POOLS)) for _ in range(n))


def accepted_folder(rng: random.Random, taken: set[str]) -> str | None:
    """A folder name from arbitrary Unicode that the scanner reads as a label and that
    is exactly its label's folder (it comes back the same on every clone); None when
    no draw fits."""
    for _ in range(30):
        name = unicode_name(rng)
        if name in taken or "/" in name or "\0" in name:
            continue
        label = folder_verdict(name).label
        if label is not None and folder_for_label(label) == name:
            return name
    return None


def refused_folder(rng: random.Random, base: str, taken: set[str]) -> str | None:
    """`base` made into a folder name the scanner refuses (None if no variant is)."""
    variants = [base + " ", " " + base]
    for ch in _REFUSING:
        variants.append(base[:1] + ch + base[1:])
    rng.shuffle(variants)
    for name in variants:
        if name in taken:
            continue
        verdict = folder_verdict(name)
        if verdict.label is None and verdict.refused is not None:
            return name
    return None


def server_name(rng: random.Random, taken: set[str]) -> str:
    """A label name for the server: escapes, arbitrary Unicode, and now and then one
    with no folder (not in NFC, or a folder over 255 bytes)."""
    for _ in range(30):
        roll = rng.random()
        if roll < 0.3:
            name = rng.choice(_ESCAPED)
        elif roll < 0.42:
            # Decomposed (NFD): not NFC, so no folder stands for it.
            name = unicodedata.normalize("NFD", rng.choice(("é", "ñ", "Ü", "à"))) + "x"
        elif roll < 0.5:
            name = rng.choice("猫犬鳥") * 90  # 270 bytes of UTF-8: too long for a folder
        else:
            name = unicode_name(rng)
        if name not in taken and name.strip("\u200b\ufeff"):
            return name
    return f"u{rng.randrange(10**6)}"


def has_folder(name: str) -> bool:
    return folder_for_label(name) is not None


def is_odd(name: str) -> bool:
    """Anything but a plain lower-case ASCII word."""
    return not (name.isascii() and name.isalnum() and name.islower())
