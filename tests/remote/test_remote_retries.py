"""Retries over real HTTP with injected faults: what is retried, what is not, and how a
lost answer is resolved without repeating a non-idempotent request blindly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import stamina
from stamina.instrumentation import RetryDetails, get_on_retry_hooks, set_on_retry_hooks

from localrepo.errors import EXIT_UNREACHABLE
from localrepo.remote.client import RecognitionClient, parse_retry_after
from localrepo.remote.errors import (
    OutcomeUnknownError,
    RemoteUnavailableError,
    ServerError,
    ThrottledError,
)

from .conftest import MakeClient
from .faults import FaultTransport
from .images import jpeg


@pytest.fixture
def retry_waits() -> Iterator[list[float]]:
    """The wait stamina scheduled before each retry, in order (what the client asked
    for: a behaviour, where the time a retry took on a busy machine is not)."""
    waits: list[float] = []

    def record(details: RetryDetails) -> None:
        waits.append(details.wait_for)

    before = get_on_retry_hooks()
    set_on_retry_hooks([*before, record])
    try:
        yield waits
    finally:
        set_on_retry_hooks(before)


# -- what is retried -------------------------------------------------------------------------


def test_500_is_not_retried(fclient: RecognitionClient, faults: FaultTransport) -> None:
    faults.answer(500, method="GET", path="/task/", times=5)
    with pytest.raises(ServerError) as err:
        fclient.list_tasks()
    assert err.value.status == 500 and err.value.exit_code == EXIT_UNREACHABLE
    assert "GET task/" in str(err.value)
    assert len(faults.calls("GET", "/task/")) == 1


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_and_unavailable_are_retried(
    fclient: RecognitionClient, faults: FaultTransport, status: int
) -> None:
    task = fclient.create_task("t")
    faults.answer(status, method="GET", path="/task/", times=2)
    assert fclient.get_task(task.id) == task
    assert [c.outcome for c in faults.calls("GET", "/task/")] == [status, status, 200]


def test_other_4xx_are_not_retried(fclient: RecognitionClient, faults: FaultTransport) -> None:
    faults.answer(409, method="GET", path="/label/")
    with pytest.raises(Exception) as err:
        fclient.list_labels()
    assert getattr(err.value, "status", None) == 409
    assert len(faults.calls("GET", "/label/")) == 1


def test_retries_end_with_unavailable(make_client: MakeClient, faults: FaultTransport) -> None:
    client = make_client(transport=faults, retry_attempts=3)
    faults.answer(503, path="/task/", times=10)
    with pytest.raises(ServerError) as err:
        client.list_tasks()
    assert err.value.exit_code == EXIT_UNREACHABLE and err.value.status == 503
    assert "gave up after 3 attempts" in str(err.value)
    assert len(faults.calls(path="/task/")) == 3


def test_stamina_testing_mode_disables_waits(
    make_client: MakeClient, faults: FaultTransport, retry_waits: list[float]
) -> None:
    client = make_client(transport=faults, retry_wait_initial=5.0, retry_wait_max=5.0)
    faults.answer(503, path="/task/", times=2)
    with stamina.set_testing(True, attempts=3):
        assert client.list_tasks() == []
    assert retry_waits == [0.0, 0.0]  # not the 5 s backoff
    assert len(faults.calls(path="/task/")) == 3


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_connection_failures_are_retried_even_for_creates(
    fclient: RecognitionClient, faults: FaultTransport, exc: type[httpx.TransportError]
) -> None:
    faults.fail(exc, method="POST", path="/label/", times=2)
    label = fclient.create_label("dog")
    assert [c.outcome for c in faults.calls("POST", "/label/")] == [exc.__name__] * 2 + [201]
    assert faults.calls("GET", "/label/") == []  # never sent: no need to probe
    assert [lb.id for lb in fclient.list_labels()] == [label.id]


@pytest.mark.parametrize("exc", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError])
def test_lost_answer_of_a_get_is_retried(
    fclient: RecognitionClient, faults: FaultTransport, exc: type[httpx.TransportError]
) -> None:
    faults.fail(exc, method="GET", path="/task/", forward=True)
    assert fclient.list_tasks() == []
    assert len(faults.calls("GET", "/task/")) == 2


# -- lost answers of requests that change things ----------------------------------------------


def test_create_label_lost_answer_adopts_instead_of_twin(
    fclient: RecognitionClient, faults: FaultTransport
) -> None:
    # The server creates the label; the answer never arrives.
    faults.fail(httpx.ReadTimeout, method="POST", path="/label/", forward=True)
    label = fclient.create_label("dog", "category")
    assert label.name == "dog" and label.type == "category"
    assert len(faults.calls("POST", "/label/")) == 1  # not sent again
    probes = faults.calls("GET", "/label/")
    assert probes and "search=dog" in probes[0].url and "type=category" in probes[0].url
    assert [lb.id for lb in fclient.list_labels()] == [label.id]


def test_create_label_lost_request_creates_once(
    fclient: RecognitionClient, faults: FaultTransport
) -> None:
    # The connection dropped before the server saw the request: the probe finds
    # nothing and the label is created on the next attempt.
    faults.fail(httpx.RemoteProtocolError, method="POST", path="/label/", forward=False)
    label = fclient.create_label("cat", "tag")
    assert len(faults.calls("POST", "/label/")) == 2
    assert [lb.id for lb in fclient.list_labels()] == [label.id]


def test_create_label_probe_ignores_other_type_and_case(
    fclient: RecognitionClient, faults: FaultTransport
) -> None:
    fclient.create_label("Dog", "category")
    fclient.create_label("dog", "tag")
    faults.answer(504, method="POST", path="/label/", forward=False)
    label = fclient.create_label("dog", "category")
    assert (label.name, label.type) == ("dog", "category")
    assert len(fclient.list_labels(search="dog", type="category")) == 2  # Dog and dog


def test_create_task_502_after_commit_adopts(
    fclient: RecognitionClient, faults: FaultTransport
) -> None:
    faults.answer(502, method="POST", path="/task/", forward=True)
    task = fclient.create_task("animals", "multi_label")
    assert (task.name, task.type) == ("animals", "multi_label")
    assert len(faults.calls("POST", "/task/")) == 1
    assert [t.id for t in fclient.list_tasks()] == [task.id]


def test_upload_lost_answer_is_adopted_through_duplicate(
    fclient: RecognitionClient, faults: FaultTransport
) -> None:
    faults.fail(httpx.ReadTimeout, method="POST", path="/training-image/", forward=True)
    image, created = fclient.upload_image(jpeg(1), meta_data={"name": "a.jpg"})
    assert created is False  # this request made it, but the client cannot know
    assert image.meta_data == {"name": "a.jpg"}
    posts = faults.calls("POST", "/training-image/")
    assert [p.outcome for p in posts] == ["ReadTimeout", 400]
    assert [i.id for i in fclient.iter_images()] == [image.id]


def test_label_links_are_repeated_after_lost_answer(
    fclient: RecognitionClient, faults: FaultTransport
) -> None:
    image, _ = fclient.upload_image(jpeg(2))
    value = fclient.create_label("size", "value")
    faults.fail(httpx.ReadTimeout, path="/add-label/", forward=True)
    faults.answer(502, path="/update-value/", forward=True)
    faults.fail(httpx.RemoteProtocolError, path="/remove-label/", forward=True)
    fclient.add_image_label(image.id, value.id, 1.0)
    fclient.update_image_value(image.id, value.id, 2.0)
    assert [lb.value for lb in fclient.get_image(image.id).labels] == [2.0]
    fclient.remove_image_label(image.id, value.id)
    assert fclient.get_image(image.id).labels == ()
    for path in ("/add-label/", "/update-value/", "/remove-label/"):
        assert len(faults.calls("POST", path)) == 2


def test_delete_lost_answer_then_404_is_success(
    fclient: RecognitionClient, faults: FaultTransport
) -> None:
    image, _ = fclient.upload_image(jpeg(3))
    faults.fail(httpx.ReadTimeout, method="DELETE", forward=True)
    assert fclient.delete_image(image.id) is False  # the retry found it gone
    assert [c.outcome for c in faults.calls("DELETE")] == ["ReadTimeout", 404]
    assert list(fclient.iter_images()) == []


def test_non_idempotent_without_probe_reports_unknown_outcome(
    fclient: RecognitionClient, faults: FaultTransport
) -> None:
    task = fclient.create_task("t")
    faults.fail(httpx.ReadTimeout, method="POST", path="/classify/", forward=True)
    with pytest.raises(OutcomeUnknownError) as err:
        fclient.classify(task.id, [{"_base64": "aGVsbG8="}], store_images=True)
    assert err.value.exit_code == EXIT_UNREACHABLE
    assert "may or may not" in str(err.value)
    assert len(faults.calls("POST", "/classify/")) == 1


# -- 429 and Retry-After ----------------------------------------------------------------------


def test_retry_after_is_honoured(
    fclient: RecognitionClient, faults: FaultTransport, retry_waits: list[float]
) -> None:
    faults.answer(429, path="/task/", headers={"Retry-After": "1"})
    started = time.monotonic()
    assert fclient.list_tasks() == []
    assert retry_waits == [1.0]  # not the 0.01 s backoff
    # ... and waited it out (a lower bound: it holds on a busy machine too).
    assert time.monotonic() - started >= 0.95
    assert [c.outcome for c in faults.calls(path="/task/")] == [429, 200]


def test_retry_after_http_date_is_honoured(
    fclient: RecognitionClient, faults: FaultTransport
) -> None:
    # An HTTP date has one-second resolution: ask for ~2 s, expect at least ~1 s.
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    faults.answer(503, path="/label/", headers={"Retry-After": format_datetime(when, usegmt=True)})
    started = time.monotonic()
    assert fclient.list_labels() == []
    assert time.monotonic() - started >= 0.9


def test_retry_after_is_capped(
    make_client: MakeClient, faults: FaultTransport, retry_waits: list[float]
) -> None:
    client = make_client(transport=faults, retry_after_max=0.05, retry_attempts=3)
    faults.answer(429, path="/task/", headers={"Retry-After": "3600"}, times=5)
    with pytest.raises(ThrottledError) as err:
        client.list_tasks()
    assert retry_waits == [0.05, 0.05]  # capped, not the hour the server asked for
    assert err.value.exit_code == EXIT_UNREACHABLE and err.value.status == 429
    assert len(faults.calls(path="/task/")) == 3


def test_parse_retry_after() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Mon, 01 Jan 2024 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Mon, 01 Jan 2024 11:00:00 GMT", now=now) == 0.0
    for bad in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(bad) is None


def test_real_rate_limit_is_waited_out(server_factory: object, retry_waits: list[float]) -> None:
    server = server_factory("--rate-limit", "2/s")  # type: ignore[operator]
    faults = FaultTransport()
    with RecognitionClient(
        server.url, server.token, transport=faults, retry_wait_initial=0.01, retry_wait_jitter=0.01
    ) as client:
        # Calls until the limit is hit: on a busy machine a few calls may be slow enough
        # for the bucket to refill between them, so their number is not fixed.
        for _ in range(200):
            assert isinstance(client.list_tasks(), list)
            if any(c.outcome == 429 for c in faults.calls()):
                break
        throttled = [c for c in faults.calls() if c.outcome == 429]
        assert throttled, "the server's limit was never hit in 200 calls"
        assert len(retry_waits) == len(throttled)
        assert all(wait >= 1.0 for wait in retry_waits), retry_waits  # Retry-After (>= 1 s)
    fast = RecognitionClient(server.url, server.token, retry_attempts=2, retry_after_max=0.01)
    with fast, pytest.raises(ThrottledError) as err:
        for _ in range(500):  # until two 429s in a row (no 1 s wait in between)
            fast.list_tasks()
    assert err.value.exit_code == EXIT_UNREACHABLE
    assert "throttl" in str(err.value)


# -- unreachable ------------------------------------------------------------------------------


def test_server_down_is_unavailable_quickly(
    server_factory: object, retry_waits: list[float]
) -> None:
    server = server_factory()  # type: ignore[operator]
    url, token = server.url, server.token
    client = RecognitionClient(
        url, token, retry_attempts=3, retry_wait_initial=0.01, retry_wait_jitter=0.01, timeout=2
    )
    with client:
        assert client.list_tasks() == []
        server.stop()
        with pytest.raises(RemoteUnavailableError) as err:
            client.list_tasks()
        # Quickly: the short backoffs only, nothing waits out a timeout or a Retry-After.
        assert len(retry_waits) == 2 and all(w <= 0.05 for w in retry_waits), retry_waits
    assert err.value.exit_code == EXIT_UNREACHABLE
    message = str(err.value)
    assert "cannot reach" in message and url.rstrip("/") in message
    assert "gave up after 3 attempts" in message and token not in message


def test_dns_failure_is_unavailable() -> None:
    client = RecognitionClient(
        "http://no-such-host.invalid/", "t0ken", retry_attempts=2, retry_wait_initial=0.01
    )
    with client, pytest.raises(RemoteUnavailableError) as err:
        client.list_workspaces()
    assert err.value.exit_code == EXIT_UNREACHABLE
    # Not retried (tests/remote/test_remote_failfast.py): the URL and the request named.
    assert "http://no-such-host.invalid/" in str(err.value)
    assert "GET account/v2/workspace/" in str(err.value) and "is not known" in str(err.value)
