"""Ignore rules: built-in defaults and nested .localrepoignore files (design section 2)."""

from __future__ import annotations

import fnmatch
import unicodedata

import pathspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localrepo.ignore import (
    DEFAULT_PATTERNS,
    DEFAULT_SOURCE,
    IgnoreMatch,
    IgnoreRules,
    default_ignored,
    default_ignores_image_file,
)
from localrepo.layout import IMAGE_EXTENSIONS

DEFAULTS = IgnoreRules()

# --------------------------------------------------------------------------- defaults


@pytest.mark.parametrize(
    "name",
    [
        ".DS_Store",
        ".git",
        ".localrepoignore",
        ".hidden.jpg",
        "photo.jpg~",
        "~",
        "upload.tmp",
        ".tmp",
        "film.part",
        "big.jpg.crdownload",
        "~$report.docx",
        "~$",
        "Thumbs.db",
        "desktop.ini",
    ],
)
def test_default_ignored_files(name: str) -> None:
    for parent in ("", "cats/", "a/b/"):
        assert DEFAULTS.is_ignored(parent + name, False), parent + name
        assert DEFAULTS.is_ignored(parent + name, True), parent + name


@pytest.mark.parametrize(
    "name",
    [
        "cat.jpg",
        "photo.JPG",
        "a.b.png",
        "x.webp",
        "pic.bmp",
        "thing.tmpl",
        "part",
        "a.tmp.jpg",
        "x~y.jpg",
        "a~$b.jpg",
        "thumbs.db",  # matching is case-sensitive, as in git
        "Desktop.ini",
        "__MACOSX",  # only the folder
        "metadata.jsonl",
        "metadata.csv",
        "_unlabeled",
    ],
)
def test_default_not_ignored_files(name: str) -> None:
    for parent in ("", "cats/", "a/b/"):
        assert not DEFAULTS.is_ignored(parent + name, False), parent + name


def test_default_macosx_folder_only() -> None:
    assert DEFAULTS.is_ignored("__MACOSX", True)
    assert DEFAULTS.is_ignored("zips/__MACOSX", True)
    assert not DEFAULTS.is_ignored("__MACOSX", False)


def test_default_folders() -> None:
    for path in (".git", ".localrepo", "cats/.thumbnails", "a/b/.cache"):
        assert DEFAULTS.is_ignored(path, True)
    for path in ("cats", "_unlabeled", "a/b", "x.tmpl"):
        assert not DEFAULTS.is_ignored(path, True)


def test_root_path_is_not_ignored() -> None:
    assert not DEFAULTS.is_ignored("", True)
    assert DEFAULTS.match("", True) is None


def test_defaults_match_reports_pattern() -> None:
    assert DEFAULTS.match("a/.DS_Store", False) == IgnoreMatch(DEFAULT_SOURCE, None, ".*")
    assert DEFAULTS.match("a/x.tmp", False) == IgnoreMatch(DEFAULT_SOURCE, None, "*.tmp")
    assert DEFAULTS.match("__MACOSX", True) == IgnoreMatch(DEFAULT_SOURCE, None, "__MACOSX/")
    assert DEFAULTS.match(".localrepo", True) == IgnoreMatch(DEFAULT_SOURCE, None, ".localrepo/")
    # Last match wins among the defaults too: ".x.tmp" is reported under "*.tmp".
    assert DEFAULTS.match(".x.tmp", False) == IgnoreMatch(DEFAULT_SOURCE, None, "*.tmp")
    assert DEFAULTS.match("cats/x.jpg", False) is None


def test_defaults_match_considers_parents() -> None:
    assert DEFAULTS.match(".localrepo/catalog.db", False) == IgnoreMatch(
        DEFAULT_SOURCE, None, ".localrepo/"
    )
    assert DEFAULTS.match("a/.git/objects/x.jpg", False) == IgnoreMatch(DEFAULT_SOURCE, None, ".*")
    assert DEFAULTS.match("z/__MACOSX/cat/x.jpg", False) == IgnoreMatch(
        DEFAULT_SOURCE, None, "__MACOSX/"
    )
    assert DEFAULTS.match("big.part/x.jpg", False) == IgnoreMatch(DEFAULT_SOURCE, None, "*.part")


# Names built from the pieces the defaults care about, so that hits are frequent.
_pieces = st.sampled_from(
    [".", "~", "$", "tmp", "part", "crdownload", "Thumbs", "db", "desktop", "ini", "__MACOSX",
     "a", "jpg", "_", "localrepo", " ", "é"]
)  # fmt: skip
entry_names = (
    st.lists(_pieces, min_size=1, max_size=4).map("".join).filter(lambda n: n not in (".", ".."))
)
plain_folders = st.lists(st.sampled_from(["a", "b", "cats", "_unlabeled", "x y"]), max_size=3)

_REFERENCE = pathspec.GitIgnoreSpec.from_lines(DEFAULT_PATTERNS)


def _reference_ignored(path: str, is_dir: bool) -> bool:
    return bool(_REFERENCE.check_file(path + "/" if is_dir else path).include)


@settings(max_examples=400)
@given(plain_folders, entry_names, st.booleans())
def test_defaults_agree_with_pathspec_reference(
    folders: list[str], name: str, is_dir: bool
) -> None:
    path = "/".join([*folders, name])
    expected = _reference_ignored(path, is_dir)
    assert DEFAULTS.is_ignored(path, is_dir) is expected
    assert default_ignored(name, is_dir) is expected
    assert (DEFAULTS.match(path, is_dir) is not None) is expected
    # The slow path (any ignore file present, even an empty one) agrees with the fast one.
    assert IgnoreRules.from_texts({"": ""}).is_ignored(path, is_dir) is expected


@settings(max_examples=300)
@given(st.lists(entry_names, min_size=1, max_size=4), st.booleans())
def test_defaults_match_walks_parents_like_pathspec(parts: list[str], is_dir: bool) -> None:
    # pathspec ignores everything below an ignored folder, as git does.
    path = "/".join(parts)
    assert (DEFAULTS.match(path, is_dir) is not None) is _reference_ignored(path, is_dir)


# --------------------------------------------------------------------------- user rules


def test_user_patterns_and_negation_last_match_wins() -> None:
    rules = IgnoreRules.from_texts({"": "*.png\n!keep*.png\nkeep-not.png\n"})
    assert rules.is_ignored("a.png", False)
    assert rules.is_ignored("cats/a.png", False)
    assert not rules.is_ignored("keep1.png", False)
    assert rules.is_ignored("keep-not.png", False)
    assert not rules.is_ignored("a.jpg", False)


def test_user_directory_patterns() -> None:
    rules = IgnoreRules.from_texts({"": "build/\n/raw\n"})
    assert rules.is_ignored("build", True)
    assert rules.is_ignored("x/build", True)
    assert not rules.is_ignored("build", False)
    assert rules.is_ignored("raw", True) and rules.is_ignored("raw", False)
    assert not rules.is_ignored("x/raw", True)


def test_user_negation_beats_defaults() -> None:
    rules = IgnoreRules.from_texts({"": "!*.tmp\n!.keep/\n"})
    assert not rules.is_ignored("x.tmp", False)
    assert not rules.is_ignored("a/.keep", True)
    assert rules.is_ignored("a/.other", True)
    assert rules.match("x.tmp", False) is None


@pytest.mark.parametrize("text", ["!.localrepo/\n", "!.localrepo\n", "!.*\n", "!**\n!*/\n"])
def test_state_folder_is_always_ignored(text: str) -> None:
    for folder in ("", "sub"):
        rules = IgnoreRules.from_texts({folder: text})
        prefix = f"{folder}/" if folder else ""
        assert rules.is_ignored(prefix + ".localrepo", True)
        found = rules.match(prefix + ".localrepo/catalog.db", False)
        assert found == IgnoreMatch(DEFAULT_SOURCE, None, ".localrepo/")


def test_nested_file_applies_below_its_folder_relative_to_it() -> None:
    rules = IgnoreRules.from_texts({"a": "/b.jpg\nc/\n*.gif\n"})
    assert rules.is_ignored("a/b.jpg", False)
    assert not rules.is_ignored("a/x/b.jpg", False)  # anchored to a/
    assert not rules.is_ignored("b.jpg", False)
    assert rules.is_ignored("a/c", True) and rules.is_ignored("a/x/c", True)
    assert not rules.is_ignored("c", True)
    assert rules.is_ignored("a/z/y.gif", False)
    assert not rules.is_ignored("y.gif", False) and not rules.is_ignored("ab/y.gif", False)


def test_deeper_ignore_file_takes_precedence() -> None:
    rules = IgnoreRules.from_texts({"": "*.png\n", "keep": "!*.png\n", "keep/deeper": "x.png\n"})
    assert rules.is_ignored("a.png", False)
    assert rules.is_ignored("other/a.png", False)
    assert not rules.is_ignored("keep/a.png", False)
    assert not rules.is_ignored("keep/sub/a.png", False)
    assert rules.is_ignored("keep/deeper/x.png", False)
    assert not rules.is_ignored("keep/deeper/y.png", False)
    assert rules.is_ignored("keeper/a.png", False)  # "keeper" is not under "keep"


def test_match_reports_file_line_and_pattern() -> None:
    rules = IgnoreRules.from_texts(
        {"": "# comment\n\n*.png\n!keep.png\n  \nbuild/\n", "cats": "\r\n*.gif\r\n"}
    )
    assert rules.match("a.png", False) == IgnoreMatch(".localrepoignore", 3, "*.png")
    assert rules.match("keep.png", False) is None
    assert rules.match("cats/x.gif", False) == IgnoreMatch("cats/.localrepoignore", 2, "*.gif")
    assert rules.match("build/x/y.jpg", False) == IgnoreMatch(".localrepoignore", 6, "build/")
    assert rules.match("x.jpg", False) is None
    assert rules.match("a/.hidden", False) == IgnoreMatch(DEFAULT_SOURCE, None, ".*")
    assert rules.sources == (".localrepoignore", "cats/.localrepoignore")


def test_match_negation_cannot_reinclude_below_an_ignored_folder() -> None:
    rules = IgnoreRules.from_texts({"": "build/\n!build/keep.jpg\n"})
    assert rules.match("build/keep.jpg", False) == IgnoreMatch(".localrepoignore", 1, "build/")


def test_match_reinclusion_of_a_folder() -> None:
    rules = IgnoreRules.from_texts({"": "data/*\n!data/keep/\n"})
    assert rules.match("data/keep/x.jpg", False) is None
    assert rules.match("data/drop/x.jpg", False) == IgnoreMatch(".localrepoignore", 1, "data/*")


def test_nfc_patterns_match_nfd_paths() -> None:
    rules = IgnoreRules.from_texts({"": "Brouillés/\n"})
    nfd = unicodedata.normalize("NFD", "Brouillés")
    assert rules.is_ignored(nfd, True)
    assert rules.match(f"{nfd}/x.jpg", False) is not None
    rules = IgnoreRules.from_texts({nfd: "*.png\n"})
    assert rules.is_ignored("Brouillés/a.png", False)


def test_folder_keys_are_normalised() -> None:
    rules = IgnoreRules.from_texts({"./a/": "*.png\n"})
    assert rules.is_ignored("a/x.png", False) and not rules.is_ignored("x.png", False)
    assert rules.sources == ("a/.localrepoignore",)


def test_folders_differing_in_normalisation_are_merged() -> None:
    nfc_name = "Brouillés"
    nfd_name = unicodedata.normalize("NFD", nfc_name)
    rules = IgnoreRules.from_texts({nfc_name: "!keep.png\n", nfd_name: "*.png\n"})
    # Merged in sorted order of the raw names (NFD sorts first here), so the NFC file's
    # lines come last and win.
    assert rules.sources == tuple(
        sorted([f"{nfc_name}/.localrepoignore", f"{nfd_name}/.localrepoignore"])
    )
    assert rules.match(f"{nfc_name}/a.png", False) == IgnoreMatch(
        f"{nfd_name}/.localrepoignore", 1, "*.png"
    )
    assert rules.match(f"{nfc_name}/keep.png", False) is None


def test_user_rules_are_compiled_once_and_chained_once_per_folder(monkeypatch) -> None:
    # What keeps checking many paths cheap (its speed is the scan benchmark's business,
    # not a test's): no pattern is parsed or compiled per path, and the ignore files
    # that apply to a folder are looked up once per folder.
    from localrepo import ignore

    rules = IgnoreRules.from_texts({"": "*.psd\nbuild/\n", "cats": "!keep.png\n*.gif\n"})
    paths = [f"{('cats', 'dogs')[i % 2]}/s{i % 50}/img{i}.jpg" for i in range(20_000)]

    def no_parsing(*_a: object, **_k: object) -> None:
        raise AssertionError("ignore patterns parsed while checking paths")

    monkeypatch.setattr(ignore._IgnoreFile, "parse", no_parsing)
    monkeypatch.setattr(pathspec.GitIgnoreSpec, "from_lines", no_parsing)
    chains = 0
    real_chain = IgnoreRules._chain

    def counted(self: IgnoreRules, parent: str) -> object:
        nonlocal chains
        if parent not in self._chains:
            chains += 1
        return real_chain(self, parent)

    monkeypatch.setattr(IgnoreRules, "_chain", counted)
    ignored = [path for path in paths if rules.is_ignored(path, False)]
    assert ignored == []
    assert chains == len({path.rpartition("/")[0] for path in paths})  # 50 folders


# --------------------------------------------------------------------------- properties

_user_lines = st.sampled_from(
    ["*.png", "!*.png", "x.*", "!x.*", "*", "!*", "*.tmp", "!*.tmp", "!.*", ".*", "x.png"]
)
_names = st.sampled_from(["x.png", "y.png", "x.jpg", "y.tmp", ".x.png", "x.tmp", "plain"])


def _reference_nested(texts: dict[str, list[str]], folder: str, name: str) -> bool:
    """Brute force for basename-only patterns: deepest file first, last line wins."""
    applicable = [f for f in texts if f == "" or folder == f or folder.startswith(f + "/")]
    for f in sorted(applicable, key=len, reverse=True):
        for line in reversed(texts[f]):
            negated = line.startswith("!")
            if fnmatch.fnmatchcase(name, line.lstrip("!")):
                return not negated
    return default_ignored(name, False)


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(["", "a", "a/b", "c"]), st.lists(_user_lines, max_size=4), max_size=4
    ),
    st.sampled_from(["", "a", "a/b", "a/b/z", "c", "ab"]),
    _names,
)
def test_nested_precedence_against_brute_force(
    texts: dict[str, list[str]], folder: str, name: str
) -> None:
    rules = IgnoreRules.from_texts({f: "\n".join(lines) for f, lines in texts.items()})
    path = f"{folder}/{name}" if folder else name
    assert rules.is_ignored(path, False) is _reference_nested(texts, folder, name)


_any_lines = st.sampled_from(
    ["*.png", "!*.png", "a/", "!a/", "/a", "b/*", "!b/keep/", "**/c", "!x.jpg", "*", "!*/",
     "a/**/x.jpg", "!.*", "keep/", "!keep/"]
)  # fmt: skip
_path_parts = st.lists(
    st.sampled_from(["a", "b", "c", "keep", "x.jpg", "y.png", ".h"]), min_size=1, max_size=4
)


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(["", "a", "b", "a/b"]), st.lists(_any_lines, max_size=4), max_size=3
    ),
    _path_parts,
    st.booleans(),
)
def test_match_agrees_with_pruning_walker(
    texts: dict[str, list[str]], parts: list[str], is_dir: bool
) -> None:
    """match(path) says "ignored" exactly when a pruning walker would not report path."""
    rules = IgnoreRules.from_texts({f: "\n".join(lines) for f, lines in texts.items()})
    path = "/".join(parts)
    walker_skips = any(
        rules.is_ignored("/".join(parts[:i]), True) for i in range(1, len(parts))
    ) or rules.is_ignored(path, is_dir)
    found = rules.match(path, is_dir)
    assert (found is not None) is walker_skips
    if found is not None and found.source != DEFAULT_SOURCE:
        assert found.line is not None and found.pattern in texts[found.source.rpartition("/")[0]]


@given(
    st.text(min_size=1, max_size=12).filter(lambda s: "/" not in s and "\x00" not in s),
    st.sampled_from(sorted(IMAGE_EXTENSIONS)),
)
def test_the_walkers_image_shortcut_agrees_with_the_defaults(stem: str, ext: str) -> None:
    name = f"{stem}.{ext}"
    assert default_ignores_image_file(name) == default_ignored(name, False)
