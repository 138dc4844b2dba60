"""`localrepo.remote.urls.with_scheme` (pure) and how the credentials file and the
transport use it: a URL typed without a scheme, and URLs that are refused."""

from __future__ import annotations

import pytest

from localrepo.credentials import normalise_url
from localrepo.errors import EXIT_USAGE, LocalrepoError
from localrepo.remote.client import RecognitionClient
from localrepo.remote.urls import is_loopback, with_scheme


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("localhost:8000", "http://localhost:8000"),
        ("LOCALHOST:8000/", "http://LOCALHOST:8000/"),
        ("app.localhost", "http://app.localhost"),
        ("127.0.0.1:9/api", "http://127.0.0.1:9/api"),
        ("127.5.6.7", "http://127.5.6.7"),
        ("[::1]:8000", "http://[::1]:8000"),
        ("  localhost  ", "http://localhost"),
        ("api.example.com", "https://api.example.com"),
        ("10.0.0.5:8000", "https://10.0.0.5:8000"),
        ("localhost.example.com", "https://localhost.example.com"),
        ("128.0.0.1", "https://128.0.0.1"),
    ],
)
def test_a_scheme_is_added_by_host(typed: str, expected: str) -> None:
    assert with_scheme(typed) == (expected, True)


@pytest.mark.parametrize(
    "typed", ["http://localhost:8000/", "https://localhost/", "HTTPS://api.example.com"]
)
def test_a_url_with_a_scheme_is_kept(typed: str) -> None:
    assert with_scheme(typed) == (typed, False)


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("http://a b/", "spaces"),
        ("ftp://example.com/", "'ftp'"),
        ("file:///etc/passwd", "'file'"),
        ("http://", "no host"),
        ("localhost:port", "port"),
        ("http://localhost:99999/", "port"),
    ],
)
def test_broken_input_is_a_usage_error_naming_it(typed: str, why: str) -> None:
    with pytest.raises(LocalrepoError) as err:
        with_scheme(typed)
    assert err.value.exit_code == EXIT_USAGE
    assert why in str(err.value) and repr(typed.strip()) in str(err.value)
    assert "http://localhost:8000/" in str(err.value)  # what to type instead


def test_a_refusal_never_shows_a_password() -> None:
    with pytest.raises(LocalrepoError) as err:
        with_scheme("ftp://user:s3cret@example.com/")
    assert "s3cret" not in str(err.value) and "***@example.com" in str(err.value)


def test_is_loopback() -> None:
    assert is_loopback("localhost") and is_loopback("127.0.0.1") and is_loopback("[::1]")
    assert not is_loopback("example.com") and not is_loopback("192.168.1.1")


def test_the_credentials_key_and_the_client_agree_on_the_scheme() -> None:
    assert normalise_url("localhost:8000") == "http://localhost:8000/"
    assert normalise_url("api.example.com") == "https://api.example.com/"
    with RecognitionClient("localhost:8000", "t") as client:
        assert client.base_url == "http://localhost:8000/"
    with RecognitionClient("api.example.com/recognition/v2/", "t") as client:
        assert client.base_url == "https://api.example.com/"
    with pytest.raises(LocalrepoError):
        RecognitionClient("ftp://example.com", "t")
