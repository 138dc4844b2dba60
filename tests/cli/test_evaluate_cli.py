"""`repo evaluate --holdout DIR` and `--report FILE.html` end to end: real `repo`
subprocesses, a real localrepo-server that really trains, real image files (a holdout
tree outside the repository with a mislabelled image, a folder that is no label and a
damaged JPEG), real matplotlib pictures in the page.

The model's answers are checked against `repo classify` on the same files, so the
expected confusion matrix, scores and mistakes are worked out here from the truth the
folders give and those answers."""

from __future__ import annotations

import base64
import io
import json
import os
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from support.imagegen import brightness_image, class_image, truncated_jpeg
from support.synchelp import Clone

from cli.test_ml_cli import PER_LABEL, SERVER_ARGS, SHAPES, ndjson, new_world, put, train
from localrepo.errors import EXIT_PARTIAL, EXIT_USAGE


def put_file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def ml_server(live_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A server of this module's own, with test_ml_cli.py's small minimum per label."""
    server = type(live_server)(tmp_path_factory.mktemp("eval-server") / "data", list(SERVER_ARGS))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shapes(ml_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clone]:
    """A trained multi_class task: circles, squares, triangles."""
    w = new_world(ml_server, tmp_path_factory.mktemp("shapes"))
    clone = w.init("shapes", "shapes")
    for name in SHAPES:
        for i in range(PER_LABEL):
            put(clone, f"{name}/{name}_{i}.jpg", class_image(name, i))
    clone.sync()
    assert train(clone)["status"] == "TRAINED"
    yield clone
    w.remote.close()


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A holdout tree the model never saw, outside the repository."""
    root = tmp_path_factory.mktemp("held") / "held"
    put_file(root / "circle" / "c1.jpg", class_image("circle", 300))
    put_file(root / "circle" / "c2.jpg", class_image("circle", 301))
    put_file(root / "square" / "s1.jpg", class_image("square", 302))
    put_file(root / "square" / "red.jpg", class_image("circle", 303))  # mislabelled
    put_file(root / "triangle" / "t1.jpg", class_image("triangle", 304))
    put_file(root / "triangle" / "broken.jpg", truncated_jpeg(5))
    put_file(root / "bird" / "b1.jpg", class_image("circle", 305))  # not a label
    put_file(root / "loose.jpg", class_image("square", 306))  # in no label folder
    return root


TRUTH = {
    "circle/c1.jpg": "circle",
    "circle/c2.jpg": "circle",
    "square/s1.jpg": "square",
    "square/red.jpg": "square",
    "triangle/t1.jpg": "triangle",
}


def answers(clone: Clone, held: Path) -> dict[str, tuple[str, float]]:
    """{path: (best label, its probability)} as `repo classify` says."""
    paths = [str(held / rel) for rel in TRUTH]
    return {
        r["path"]: (r["best_label"]["name"], r["best_label"]["prob"])
        for r in ndjson(clone.run("classify", "--json", *paths).stdout)
    }


def test_holdout_scores_a_tree_the_model_never_saw(shapes: Clone, held: Path) -> None:
    said = answers(shapes, held)
    assert said[str(held / "square/red.jpg")][0] == "circle"  # a red disc, whatever the folder
    proc = shapes.run("evaluate", "--json", "--holdout", str(held), expect=EXIT_PARTIAL)
    report = json.loads(proc.stdout)
    assert report["images"] == len(TRUTH)  # the damaged one failed, two were skipped

    labels = sorted(SHAPES)
    matrix = [[0] * 3 for _ in labels]
    for rel, true in TRUTH.items():
        matrix[labels.index(true)][labels.index(said[str(held / rel)][0])] += 1
    assert report["confusion_matrix"] == {"labels": labels, "matrix": matrix}
    for i, name in enumerate(labels):
        tp, predicted, support = matrix[i][i], sum(r[i] for r in matrix), sum(matrix[i])
        p = tp / predicted if predicted else None
        r = tp / support
        assert report["per_label"][name]["support"] == support
        assert report["per_label"][name]["precision"] == pytest.approx(p)
        assert report["per_label"][name]["recall"] == pytest.approx(r)
        if p is not None and p + r:
            assert report["per_label"][name]["f1"] == pytest.approx(2 * p * r / (p + r))
    expected = [
        {
            "path": str(held / rel),
            "true": [true],
            "predicted": [said[str(held / rel)][0]],
            "confidence": pytest.approx(said[str(held / rel)][1]),
        }
        for rel, true in sorted(TRUTH.items())
        if said[str(held / rel)][0] != true
    ]
    assert report["mistakes"] == expected
    assert [f["path"] for f in report["failed"]] == [str(held / "triangle/broken.jpg")]
    assert "not a valid image" in report["failed"][0]["error"]
    assert (
        f"skipped {held / 'bird/b1.jpg'}: 'bird' is not a label of the task "
        "(its labels: circle, square, triangle); skipped"
    ) in proc.stderr
    assert f"skipped {held / 'loose.jpg'}: not in a label folder" in proc.stderr

    proc = shapes.run("evaluate", "--holdout", str(held), expect=EXIT_PARTIAL)
    prob = said[str(held / "square/red.jpg")][1]
    assert f"  {held / 'square/red.jpg'}  square -> circle ({prob:.2f})" in proc.stdout
    assert f"Misclassified ({len(expected)}):" in proc.stdout
    assert f"{held / 'triangle/broken.jpg'}: not a valid image" in proc.stderr
    assert f"on {len(TRUTH)} held-out images of {held}" in proc.stderr


class Page(HTMLParser):
    """The img sources and every src/href of an HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.tags: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = [v or "" for k, v in attrs if k in ("src", "href")]
        self.links += found
        if tag == "img":
            self.images += found


def embedded(html: str) -> tuple[list[bytes], list[bytes]]:
    """(PNG pictures, JPEG thumbnails) of a self-contained page, decoded."""
    page = Page(html)
    assert page.links and all(s.startswith("data:image/") for s in page.links), page.links
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*https?://", html)
    assert "script" not in page.tags and "link" not in page.tags
    pngs = [base64.b64decode(s.split(",", 1)[1]) for s in page.images if "image/png" in s]
    jpegs = [base64.b64decode(s.split(",", 1)[1]) for s in page.images if "image/jpeg" in s]
    for data in pngs + jpegs:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # a real picture, not just a header
    return pngs, jpegs


def test_report_is_one_self_contained_page(shapes: Clone, held: Path, tmp_path: Path) -> None:
    page = tmp_path / "out" / "report.html"
    page.parent.mkdir()
    proc = shapes.run(
        "evaluate", "--holdout", str(held), "--report", str(page), expect=EXIT_PARTIAL
    )
    assert f"Wrote the report to {page}." in proc.stderr
    html = page.read_text()
    pngs, jpegs = embedded(html)
    assert len(pngs) == 2  # the confusion matrix and the precision-recall curves
    with Image.open(io.BytesIO(pngs[0])) as img:
        assert img.format == "PNG" and min(img.size) >= 200
    mistakes = proc.stdout.count(" -> ")
    assert mistakes >= 1 and len(jpegs) == mistakes  # one thumbnail per mistake
    with Image.open(io.BytesIO(jpegs[0])) as img:
        assert max(img.size) <= 96
    assert f"Misclassified ({mistakes})" in html and "square -&gt; circle" in html
    assert f"Could not be classified: {held / 'triangle/broken.jpg'}" in html
    assert "Confusion matrix" in html and "Precision-recall" in html


def test_report_without_matplotlib_stops_before_any_work(
    shapes: Clone, held: Path, tmp_path: Path
) -> None:
    fake = tmp_path / "site" / "matplotlib"  # a fault: matplotlib fails to import
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    path = os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])
    page = tmp_path / "report.html"
    proc = shapes.run(
        "evaluate",
        "--holdout",
        str(held),
        "--report",
        str(page),
        env={"PYTHONPATH": path},
        expect=EXIT_USAGE,
    )
    assert "--report needs matplotlib" in proc.stderr
    assert "pip install 'localrepo[report]'" in proc.stderr
    assert proc.stdout == "" and not page.exists()


def test_regression_holdout_and_residual_report(ml_server: Any, tmp_path: Path) -> None:
    w = new_world(ml_server, tmp_path / "w")
    clone = w.init("light", "light", "regression")
    sidecar = []
    for i in range(12):
        put(clone, f"brightness/{i}.jpg", brightness_image(i / 11, i))
        sidecar.append(json.dumps({"file_name": f"{i}.jpg", "value": round(i / 11 * 100, 1)}))
    (clone.root / "brightness" / "metadata.jsonl").write_text("\n".join(sidecar) + "\n")
    clone.sync()
    assert train(clone)["status"] == "TRAINED"

    held = tmp_path / "held"
    put_file(held / "brightness" / "a.jpg", brightness_image(0.2, 200))
    put_file(held / "brightness" / "b.jpg", brightness_image(0.8, 201))
    put_file(held / "brightness" / "c.jpg", brightness_image(0.5, 202))  # no value given
    (held / "brightness" / "metadata.jsonl").write_text(
        '{"file_name": "a.jpg", "value": 20}\n{"file_name": "b.jpg", "value": 80}\n'
    )
    page = tmp_path / "light.html"
    proc = clone.run("evaluate", "--json", "--holdout", str(held), "--report", str(page))
    report = json.loads(proc.stdout)
    preds = {p["path"]: p for p in report["predictions"]}
    assert set(preds) == {str(held / "brightness/a.jpg"), str(held / "brightness/b.jpg")}
    assert preds[str(held / "brightness/a.jpg")]["actual"] == 20.0
    assert preds[str(held / "brightness/b.jpg")]["actual"] == 80.0
    errors = [p["predicted"] - p["actual"] for p in preds.values()]
    assert report["mae"] == pytest.approx(sum(abs(e) for e in errors) / 2)
    assert report["rmse"] == pytest.approx((sum(e * e for e in errors) / 2) ** 0.5)
    assert f"skipped {held / 'brightness/c.jpg'}: no value for value label" in proc.stderr
    w.remote.close()

    pngs, jpegs = embedded(page.read_text())
    assert len(pngs) == 2 and len(jpegs) == 2  # predicted vs actual, residuals; two files
    html = page.read_text()
    assert "Residuals" in html and "Predicted vs actual" in html
    assert "Largest errors (2)" in html


def test_a_relative_holdout_is_read_from_dash_c_dir_and_a_missing_one_is_named(
    shapes: Clone, held: Path
) -> None:
    # `repo -C REPO evaluate --holdout REL`: REL is relative to REPO, as every path is.
    relative = os.path.relpath(held, shapes.root)
    assert not (Path.cwd() / relative).is_dir()  # so only -C can make it resolve
    proc = shapes.run("evaluate", "--holdout", relative, expect=EXIT_PARTIAL)
    assert f"on {len(TRUTH)} held-out images of {relative}" in proc.stderr

    missing = shapes.run("evaluate", "--holdout", "no-such-tree", expect=EXIT_USAGE)
    assert "--holdout no-such-tree:" in missing.stderr
    assert f"{shapes.root / 'no-such-tree'} does not exist" in missing.stderr
