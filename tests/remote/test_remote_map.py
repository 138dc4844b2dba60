"""`client.map`: bounded concurrency, results as they complete, failures isolated."""

from __future__ import annotations

import threading
import time

import pytest
from support.waiting import wait_event

from localrepo.remote.client import RecognitionClient
from localrepo.remote.errors import BadRequestError

from .conftest import MakeClient
from .images import jpeg


def test_parallel_uploads_and_downloads(make_client: MakeClient) -> None:
    client = make_client(concurrency=4)
    blobs = {f"img{i}.jpg": jpeg(200 + i) for i in range(12)}
    blobs["broken.jpg"] = b"not an image"
    results = dict(
        client.map(
            lambda name: client.upload_image(blobs[name], noresize=True, meta_data={"n": name}),
            blobs,
        )
    )
    assert set(results) == set(blobs)
    assert isinstance(results.pop("broken.jpg"), BadRequestError)
    images = {name: r[0] for name, r in results.items()}  # type: ignore[index]
    assert all(r[1] for r in results.values())  # type: ignore[index]
    assert len({i.id for i in images.values()}) == 12

    downloads = dict(client.map(lambda name: client.download(images[name].img_path), images))
    assert downloads == {name: blobs[name] for name in images}


def test_concurrency_is_bounded_and_results_stream(client: RecognitionClient) -> None:
    running = 0
    peak = 0
    lock = threading.Lock()
    others_yielded = threading.Event()

    def work(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        if n == 0:  # the slow one: it ends only once all the others came out of map
            wait_event(others_yielded, what="the 19 other results to be yielded")
        else:
            time.sleep(0.01)
        with lock:
            running -= 1
        if n == 5:
            raise RuntimeError("boom")
        return n * n

    out = []
    for result in client.map(work, range(20), limit=3):
        out.append(result)
        if len(out) == 19:
            others_yielded.set()
    assert peak <= 3
    assert len(out) == 20
    assert out[-1][0] == 0  # results stream as they complete, not in input order
    by_item = dict(out)
    assert isinstance(by_item[5], RuntimeError)
    assert all(by_item[n] == n * n for n in range(20) if n != 5)


def test_limit_cannot_exceed_concurrency(make_client: MakeClient) -> None:
    client = make_client(concurrency=2)
    names: set[str] = set()
    lock = threading.Lock()

    def work(n: int) -> int:
        with lock:
            names.add(threading.current_thread().name)
        time.sleep(0.02)
        return n

    assert sorted(r for _, r in client.map(work, range(10), limit=50)) == list(range(10))  # type: ignore[type-var]
    assert len(names) <= 2


def test_stopping_early_cancels_the_rest(client: RecognitionClient) -> None:
    started: list[int] = []

    def work(n: int) -> int:
        started.append(n)
        time.sleep(0.01)
        return n

    iterator = client.map(work, range(1000), limit=2)
    first = next(iterator)
    iterator.close()  # type: ignore[attr-defined]
    assert first[0] in started
    assert len(started) < 20


def test_lazy_input(client: RecognitionClient) -> None:
    pulled: list[int] = []

    def source():  # type: ignore[no-untyped-def]
        for n in range(100):
            pulled.append(n)
            yield n

    iterator = client.map(lambda n: n, source(), limit=2)
    next(iterator)
    assert len(pulled) <= 6
    assert len(list(iterator)) == 99


@pytest.mark.parametrize("concurrency", [1, 8])
def test_shared_client_across_threads(make_client: MakeClient, concurrency: int) -> None:
    client = make_client(concurrency=concurrency)
    labels = [client.create_label(f"l{i}") for i in range(6)]
    got = dict(client.map(lambda lb: client.get_label(lb.id), labels))
    assert all(got[lb] == lb for lb in labels)
