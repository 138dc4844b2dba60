"""The one naming rule between labels and folders (localrepo/labelnames.py): reversible
where it can be, and every folder name the scanner accepts comes back as the same folder
on another clone, through a real server."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.imagegen import image_bytes
from support.inproc import engine_sync

from localrepo.labelnames import MAX_FOLDER_BYTES, folder_for_label, folder_verdict
from localrepo.repository import Repository, init_repository

# Any Unicode but what no file system holds in a name; surrogates are not encodable.
folder_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"),
    min_size=1,
    max_size=24,
)
label_text = st.text(min_size=1, max_size=24)


def accepted(name: str) -> bool:
    return folder_verdict(name).label is not None


@settings(max_examples=3000)
@given(label_text)
def test_a_label_with_a_folder_reads_back_from_it(label: str) -> None:
    folder = folder_for_label(label)
    if folder is None:  # not NFC, a lone surrogate, or too long: reported by the caller
        assert (
            unicodedata.normalize("NFC", label) != label
            or any(0xD800 <= ord(c) <= 0xDFFF for c in label)
            or len(label.encode("utf-8", "surrogatepass")) * 3 > MAX_FOLDER_BYTES
        )
        return
    assert "/" not in folder and "\0" not in folder and folder not in (".", "..")
    assert folder[0] not in "._" and folder == folder.strip(" ")
    assert folder.isprintable()
    assert len(folder.encode()) <= MAX_FOLDER_BYTES
    assert folder_verdict(folder).label == label


@settings(max_examples=3000)
@given(folder_text)
def test_a_folder_is_a_label_exactly_when_its_label_writes_it_back(folder: str) -> None:
    verdict = folder_verdict(folder)
    if folder[0] in "._":
        assert verdict.label is None and verdict.refused is None
        return
    if verdict.label is not None:
        assert folder_for_label(verdict.label) == unicodedata.normalize("NFC", folder)
    else:
        assert verdict.refused  # a reason, and names to rename it to that are accepted
        assert all(accepted(s) for s in verdict.suggestions), verdict


@pytest.mark.parametrize(
    ("folder", "label"),
    [
        ("dog", "dog"),
        ("100%", "100%"),
        ("a%2Fb", "a/b"),
        ("%5Fx", "_x"),
        ("%2Ehidden", ".hidden"),
        ("%20cat", " cat"),
        ("cat%20", "cat "),
        ("a%C2%A0b", "a\u00a0b"),
        ("x%2Etmp", "x.tmp"),
        ("x%7E", "x~"),
        ("%2541", "%41"),
        ("é" * 110, "é" * 110),
    ],
)
def test_the_escapes_of_docs_sync_md(folder: str, label: str) -> None:
    assert folder_verdict(folder).label == label
    assert folder_for_label(label) == folder


@pytest.mark.parametrize(
    ("folder", "why", "rename_to"),
    [
        ("cat ", "starts or ends with a space", ("cat", "cat%20")),
        ("a\tb", "U+0009 tab", ("a b", "a%09b")),
        ("a\u00a0b", "U+00A0 no-break space", ("a b", "a%C2%A0b")),
        ("zw\u200bsp", "U+200B zero width space", ("zwsp", "zw%E2%80%8Bsp")),
        ("a\\b", "backslash", ("a-b", "a%5Cb")),
        ("%41", "escapes are not the ones", ("A", "%2541")),
    ],
)
def test_a_refused_folder_says_why_and_what_to_rename_it_to(
    folder: str, why: str, rename_to: tuple[str, ...]
) -> None:
    verdict = folder_verdict(folder)
    assert verdict.label is None and why in (verdict.refused or "")
    assert verdict.suggestions == rename_to
    assert f"folder 'x/{folder}'" in verdict.message(f"x/{folder}")


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
        HealthCheck.too_slow,  # a timing check: a busy machine fails it (see conftest.py)
    ],
)
@given(folder=folder_text.filter(accepted))
def test_every_accepted_name_survives_the_server(folder: str, account) -> None:
    """The label a folder stands for, stored by the server and read back, is written
    to the same folder."""
    label = folder_verdict(folder).label
    with account.client() as api:
        made = api.post("label/", json={"name": label, "type": "category"})
        assert made.status_code == 201, made.text
        back = api.get(f"label/{made.json()['id']}/").json()["name"]
    assert folder_for_label(back) == unicodedata.normalize("NFC", folder)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
        HealthCheck.too_slow,  # a timing check: a busy machine fails it (see conftest.py)
    ],
)
@given(
    folders=st.lists(
        folder_text.filter(accepted), min_size=3, max_size=25, unique_by=folder_verdict
    )
)
def test_accepted_folders_come_back_as_the_same_folders_on_another_clone(
    folders: list[str], live_server, tmp_path_factory
) -> None:
    account = live_server.new_account()
    tmp: Path = tmp_path_factory.mktemp("names")
    a, b = tmp / "a", tmp / "b"
    init_repository(a, task="names", task_type="multi_class", remote=account.url)
    folders = [
        f
        for f in folders
        if not any(  # case twins are a reported conflict
            g != f and g.casefold() == f.casefold() for g in folders
        )
    ]
    for n, folder in enumerate(folders):
        (a / folder).mkdir()
        (a / folder / f"i{n}.png").write_bytes(image_bytes(n, size=(8, 6), fmt="PNG"))
    report = engine_sync(a, account.url, account.token)
    assert report.in_sync, [t.problems for t in report.tasks]
    init_repository(b, task="names", task_type="multi_class", remote=account.url)
    conn = Repository(a).connect()
    [(task_id,)] = conn.execute("SELECT remote_id FROM task").fetchall()
    conn.close()
    Repository(b).bind_root_task(task_id)
    assert engine_sync(b, account.url, account.token).in_sync
    got = {unicodedata.normalize("NFC", d) for d in os.listdir(b) if not d.startswith(".")}
    assert got == {unicodedata.normalize("NFC", f) for f in folders}
