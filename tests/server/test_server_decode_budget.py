"""Bounded memory (issue 20, item 2): the decode budget shared by uploads, thumbnails and
classify; big JPEGs decoded at a reduced scale when they are resized anyway. The figures (peak RSS, latency) are in
benchmarks/load.py; these tests check the behaviour that keeps them.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager

import httpx
import pytest
from PIL import Image
from support.waiting import limit

from localrepo.server.decodebudget import DecodeBudget, DecodeBusy
from localrepo.server.imaging import make_thumbnail, prepare
from localrepo.server.ml.classify import decode_cost

from .helpers import smooth_jpeg


def _png(side: int, seed: int) -> bytes:
    small = Image.effect_noise((side // 50, side // 50), 40 + seed).convert("RGB")
    buf = io.BytesIO()
    small.resize((side, side), Image.Resampling.BILINEAR).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


class _Recorder:
    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, nbytes: int) -> AbstractContextManager[None]:
        self.sizes.append(nbytes)
        return _nothing()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


# ---- the budget -----------------------------------------------------------------------------


def test_a_reservation_over_the_budget_waits_for_others_to_end() -> None:
    budget = DecodeBudget(100, wait_seconds=limit(10))
    order: list[str] = []
    first_in = threading.Event()

    def first() -> None:
        with budget.reserve(80):
            first_in.set()
            time.sleep(0.3)
            order.append("first done")

    def second() -> None:
        first_in.wait()
        with budget.reserve(80):
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(limit(10))
    assert order == ["first done", "second in"]
    assert budget.held == 0


def test_a_reservation_that_waits_too_long_is_busy_and_a_huge_one_runs_alone() -> None:
    budget = DecodeBudget(100, wait_seconds=0.05, retry_after=7)
    with budget.reserve(60):
        with pytest.raises(DecodeBusy) as caught, budget.reserve(60):
            pass
        assert caught.value.retry_after == 7
        with budget.reserve(40):  # fits beside it
            assert budget.held == 100
    with budget.reserve(10**12):  # cut to the whole budget: it runs, alone
        assert budget.held == 100
    assert budget.held == 0


# ---- what a decode reserves -----------------------------------------------------------------


def test_a_big_jpeg_that_is_resized_is_decoded_at_a_reduced_scale() -> None:
    data = smooth_jpeg(1, (6000, 4000))
    recorder = _Recorder()
    stored = prepare(data, noresize=False, resize_to=1024, reserve=recorder)
    assert (stored.width, stored.height) == (1024, 683)
    (reserved,) = recorder.sizes
    full = 6000 * 4000 * 3
    # 1/4 scale (1500x1000, the smallest that keeps 1024 px), twice for the resize.
    assert reserved == 1500 * 1000 * 3 * 2
    assert reserved < full / 7
    with Image.open(io.BytesIO(stored.data)) as im:
        assert im.size == (1024, 683)


def test_a_png_reserves_its_full_pixels() -> None:
    data = _png(2000, 1)
    recorder = _Recorder()
    prepare(data, noresize=True, resize_to=1024, reserve=recorder)
    assert recorder.sizes == [2000 * 2000 * 3]


# ---- over HTTP --------------------------------------------------------------------------------


def test_uploads_over_the_budget_get_503_with_retry_after_and_none_is_lost(
    server_factory,
) -> None:
    server = server_factory("--decode-budget-mb", "1", "--decode-wait", "0")
    account = server.new_account()
    bodies = [_png(3000, seed) for seed in range(8)]

    def send(data: bytes) -> httpx.Response:
        with httpx.Client(
            base_url=account.api_url, headers=account.headers, timeout=limit(120)
        ) as c:
            return c.post(
                "training-image/",
                files={"img_path": ("big.png", data, "image/png")},
                data={"noresize": "true"},
            )

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(send, bodies))
    busy = [k for k, r in enumerate(answers) if r.status_code == 503]
    assert {r.status_code for r in answers} <= {201, 503}, [r.text for r in answers]
    assert busy, "8 uploads at once within a budget of one decode: some must be told to wait"
    for k in busy:
        r = answers[k]
        assert r.headers["Retry-After"] == "5"
        assert "busy decoding" in r.json()["detail"]
    # What was refused is sent again, and then every image is there once.
    for k in busy:
        assert send(bodies[k]).status_code == 201
    with account.client() as api:
        assert api.get("training-image/").json()["count"] == len(bodies)


def test_a_thumbnail_reserves_what_it_decodes() -> None:
    recorder = _Recorder()
    make_thumbnail(_png(1200, 2), 256, recorder)
    assert recorder.sizes == [1200 * 1200 * 3 * 2]
    recorder = _Recorder()
    make_thumbnail(smooth_jpeg(2, (4096, 4096)), 256, recorder)
    assert recorder.sizes == [512 * 512 * 3 * 2]  # JPEG: decoded at 1/8 scale


def test_classify_reserves_its_records_at_the_scale_it_decodes_them() -> None:
    assert decode_cost(smooth_jpeg(3, (4000, 3000))) == 1000 * 750 * 3 * 2
    assert decode_cost(_png(1000, 3)) == 1000 * 1000 * 3 * 2
    assert decode_cost(b"not an image") == 0
