"""Pagination: several pages, `next` links naming another host or lacking a proxy's
path prefix, and `next` loops."""

from __future__ import annotations

import json

import httpx
import pytest

from localrepo.remote.client import RecognitionClient
from localrepo.remote.errors import PaginationError

from .conftest import MakeClient
from .faults import FaultTransport, PrefixStripTransport, rewrite_next
from .images import jpeg


@pytest.fixture
def seven_images(client: RecognitionClient) -> list[str]:
    label = client.create_label("dog")
    ids = []
    for seed in range(7):
        image, _ = client.upload_image(jpeg(100 + seed))
        client.add_image_label(image.id, label.id)
        ids.append(image.id)
    return ids


def test_follows_next_across_pages(
    seven_images: list[str], make_client: MakeClient, faults: FaultTransport
) -> None:
    client = make_client(transport=faults)
    assert [i.id for i in client.iter_images(page_size=2)] == seven_images
    pages = faults.calls("GET", "/training-image/")
    assert len(pages) == 4
    assert all("page_size=2" in p.url for p in pages)
    assert [i.id for i in client.iter_images(page_size=3, test=False)] == seven_images
    assert len(client.list_images(page_size=1000)) == 7


def test_labels_and_tasks_paginate(client: RecognitionClient) -> None:
    made = [client.create_label(f"l{i}").id for i in range(5)]
    assert [lb.id for lb in client.iter_labels(page_size=2)] == made
    tasks = [client.create_task(f"t{i}").id for i in range(3)]
    assert [t.id for t in client.iter_tasks(page_size=1)] == tasks


def test_next_on_another_host_is_rebased(
    seven_images: list[str], make_client: MakeClient, faults: FaultTransport
) -> None:
    # A proxy names a host the client cannot (and must not) reach: following it
    # literally would fail with a DNS error and send the token elsewhere.
    faults.hooks.append(rewrite_next("http://internal-backend.invalid:9999"))
    client = make_client(transport=faults, retry_attempts=1)
    assert [i.id for i in client.iter_images(page_size=3)] == seven_images
    hosts = {httpx.URL(c.url).host for c in faults.calls()}
    assert hosts == {"127.0.0.1"}


def test_next_via_localhost_name(account: object, make_client: MakeClient) -> None:
    # The server is reached as "localhost" while it listens on 127.0.0.1.
    url = account.url.replace("127.0.0.1", "localhost")  # type: ignore[attr-defined]
    faults = FaultTransport()
    client = make_client(base_url=url, transport=faults)
    made = [client.create_label(f"x{i}").id for i in range(3)]
    assert [lb.id for lb in client.iter_labels(page_size=1)] == made
    assert {httpx.URL(c.url).host for c in faults.calls()} == {"localhost"}


def test_next_without_the_proxy_prefix(
    seven_images: list[str], account: object, make_client: MakeClient
) -> None:
    # The client talks to http://host/api/recognition/v2/...; the proxy strips /api,
    # so the server's next links lack it. The client puts its base path back.
    proxy = PrefixStripTransport("/api")
    client = make_client(base_url=account.url + "api/", transport=proxy)  # type: ignore[attr-defined]
    assert [i.id for i in client.iter_images(page_size=2)] == seven_images
    assert len(proxy.paths) == 4
    assert all(p.startswith("/api/recognition/v2/") for p in proxy.paths)


def test_workspace_kept_on_every_page(
    live_server: object, account: object, make_client: MakeClient
) -> None:
    ws = live_server.create_workspace(account.username, "W")  # type: ignore[attr-defined]
    faults = FaultTransport()
    # A server that drops the workspace from its next links.
    faults.hooks.append(lambda req, resp: _strip_next_param(req, resp, "workspace"))
    client = make_client(workspace=ws, transport=faults)
    made = [client.create_label(f"w{i}").id for i in range(3)]
    assert [lb.id for lb in client.iter_labels(page_size=1)] == made
    gets = faults.calls("GET", "/label/")
    assert len(gets) == 3 and all(f"workspace={ws}" in g.url for g in gets)


def _strip_next_param(
    request: httpx.Request, response: httpx.Response, name: str
) -> httpx.Response:
    if "json" not in response.headers.get("content-type", ""):
        return response
    body = response.json()
    if isinstance(body, dict) and body.get("next"):
        url = httpx.URL(body["next"])
        body["next"] = str(url.copy_remove_param(name))
    return httpx.Response(
        response.status_code,
        headers={"content-type": "application/json"},
        content=json.dumps(body).encode(),
        request=request,
    )


def _fake_pages(pages: dict[str, dict[str, object]]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        page = request.url.params.get("page", "1")
        return httpx.Response(200, json=pages[page])

    return httpx.MockTransport(handler)


def test_next_loop_is_detected() -> None:
    # A fault no real server produces: a next link that points back at itself.
    base = "http://remote.test/recognition/v2/task/"
    pages = {
        "1": {"count": 3, "next": base + "?page=2", "results": [{"id": "a"}]},
        "2": {"count": 3, "next": base + "?page=2", "results": [{"id": "b"}]},
    }
    client = RecognitionClient("http://remote.test", "tok", transport=_fake_pages(pages))
    seen = []
    with pytest.raises(PaginationError, match="loops"):
        for task in client.iter_tasks():
            seen.append(task.id)
    assert seen == ["a", "b"]


def test_endless_empty_pages_stop() -> None:
    base = "http://remote.test/recognition/v2/label/"
    pages = {
        str(n): {"count": 1, "next": f"{base}?page={n + 1}", "results": []} for n in range(1, 20)
    }
    client = RecognitionClient("http://remote.test", "tok", transport=_fake_pages(pages))
    with pytest.raises(PaginationError, match="empty"):
        client.list_labels()


def test_duplicates_across_pages_are_dropped_and_unpaginated_lists_accepted() -> None:
    base = "http://remote.test/recognition/v2/label/"
    pages = {
        "1": {"count": 3, "next": base + "?page=2", "results": [{"id": "a"}, {"id": "b"}]},
        "2": {"count": 3, "next": None, "results": [{"id": "b"}, {"id": "c"}]},
    }
    client = RecognitionClient("http://remote.test", "tok", transport=_fake_pages(pages))
    assert [lb.id for lb in client.list_labels()] == ["a", "b", "c"]

    bare = httpx.MockTransport(lambda r: httpx.Response(200, json=[{"id": "t1"}]))
    assert [t.id for t in RecognitionClient("http://x.test", "k", transport=bare).list_tasks()] == [
        "t1"
    ]


def test_listing_that_shrinks_mid_read_is_read_again(
    client: RecognitionClient, make_client: MakeClient, faults: FaultTransport
) -> None:
    ids = [client.upload_image(jpeg(300 + i))[0].id for i in range(5)]
    reader = make_client(transport=faults)
    iterator = reader.iter_images(page_size=2)
    got = [next(iterator).id, next(iterator).id]
    assert got == ids[:2]
    for image_id in ids[:3]:  # another clone deletes three images meanwhile
        client.delete_image(image_id)
    got += [i.id for i in iterator]
    assert got == [ids[0], ids[1], ids[3], ids[4]]  # each once; the deleted one not at all
    assert [c.outcome for c in faults.calls("GET")] == [200, 404, 200]
