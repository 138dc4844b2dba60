"""Odd data from the remote (issue 7, bad input corpus): label names that differ only in
case, and non-finite values (a JSON `NaN` / `Infinity`, which the hosted service could
send and localrepo-server refuses to store: the fault proxy puts them in its answers).
Each gets a clear message and nothing is lost. Labels named `a/b` or `..` are in
test_sync_commands.py::test_remote_names_never_escape_the_task_root; a listing that
changes between pages in tests/remote/test_remote_pagination.py."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from support.faultproxy import FaultProxy
from support.imagegen import image_bytes
from support.inproc import engine_sync
from support.treebuilder import repo_main

from localrepo.repository import init_repository
from localrepo.scan.hashing import hash_bytes


def img(n: int) -> bytes:
    return image_bytes(n, size=(16, 12), fmt="PNG")


def upload(api, data: bytes, label_id: str, value: float | None = None) -> str:
    image = api.post(
        "training-image/", json={"base64": base64.b64encode(data).decode(), "noresize": True}
    ).json()
    body = {"label_id": label_id, **({"value": value} if value is not None else {})}
    assert api.post(f"training-image/{image['id']}/add-label/", json=body).status_code == 200
    return image["id"]


def new_label(api, task_id: str, name: str, type_: str) -> str:
    lab = api.post("label/", json={"name": name, "type": type_}).json()
    assert api.post(f"task/{task_id}/add-label/", json={"label_id": lab["id"]}).status_code == 200
    return lab["id"]


def tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hash_bytes(p.read_bytes())
        for p in root.rglob("*.png")
        if ".localrepo" not in p.parts
    }


def test_remote_case_twin_labels_stay_two_labels_and_are_reported(
    account, tmp_path: Path, capsys
) -> None:
    root = tmp_path / "c"
    init_repository(root, task="pets", task_type="multi_class", remote=account.url)
    (root / "dog").mkdir()
    (root / "dog" / "a.png").write_bytes(img(1))
    first = engine_sync(root, account.url, account.token)
    task_id = first.tasks[0].remote_id
    with account.client() as api:
        upper = upload(api, img(2), new_label(api, task_id, "Cat", "category"))
        lower = upload(api, img(3), new_label(api, task_id, "cat", "category"))
        engine_sync(root, account.url, account.token)
        again = engine_sync(root, account.url, account.token)
        assert again.tasks[0].plan.ops == []  # stable: no flapping between the twins
        for image_id, name in ((upper, "Cat"), (lower, "cat")):
            labels = api.get(f"training-image/{image_id}/").json()["labels"]
            assert [lab["name"] for lab in labels] == [name]  # never merged
    assert tree(root) == {
        "dog/a.png": hash_bytes(img(1)),
        f"Cat/{upper}.png": hash_bytes(img(2)),
        f"cat/{lower}.png": hash_bytes(img(3)),
    }
    code, out, _ = repo_main(["-C", str(root), "status", "--json"], capsys)
    assert code == 0
    [twins] = [p for p in json.loads(out)["problems"] if p["kind"] == "case_twins"]
    assert "'Cat'" in twins["message"] and "'cat'" in twins["message"]


@pytest.mark.parametrize("odd", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_remote_value_is_reported_and_nothing_is_lost(
    account, tmp_path: Path, odd: str
) -> None:
    root = tmp_path / "c"
    init_repository(root, task="ages", task_type="regression", remote=account.url)
    (root / "age").mkdir()
    (root / "age" / "a.png").write_bytes(img(1))
    (root / "age" / "metadata.jsonl").write_text('{"file_name": "a.png", "value": 1.5}\n')
    engine_sync(root, account.url, account.token)
    with account.client() as api:
        [age] = [lab["id"] for lab in api.get("label/").json()["results"] if lab["name"] == "age"]
        odd_id = upload(api, img(2), age, 7.25)
        good_id = upload(api, img(3), age, 2.5)
    proxy = FaultProxy(account.url)
    proxy.rewrite = lambda _m, _p, body: body.replace(b'"value":7.25', b'"value":' + odd.encode())
    proxy.start()
    try:
        report = engine_sync(root, proxy.url, account.token)
        assert b"7.25" not in b"".join(p.read_bytes() for p in root.rglob("metadata.jsonl")), (
            "the odd value was written"
        )
    finally:
        proxy.stop()
    problems = report.tasks[0].problems + [f"{w}: {r}" for w, r in report.outcome.failed]
    text = "\n".join(problems)
    assert odd_id in text and "value" in text, problems
    files = tree(root)
    assert files["age/a.png"] == hash_bytes(img(1))  # nothing lost
    assert f"age/{good_id}.png" in files  # the rest syncs
    with account.client() as api:  # and the server keeps both values
        values = {
            i["id"]: i["labels"][0].get("value")
            for i in api.get("training-image/", params={"page_size": 100}).json()["results"]
        }
    assert values[odd_id] == 7.25 and values[good_id] == 2.5
    # Once the remote sends a real number again, the image syncs.
    engine_sync(root, account.url, account.token)
    assert f"age/{odd_id}.png" in tree(root)
