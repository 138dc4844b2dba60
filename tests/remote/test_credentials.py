"""Token resolution order and the credentials file (mode 0600, atomic, per URL)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from localrepo import credentials as cred
from localrepo.errors import EXIT_AUTH

TOKEN = "tok-0123456789abcdef"


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "config" / "localrepo"
    monkeypatch.setenv(cred.ENV_CONFIG_DIR, str(folder))
    monkeypatch.delenv(cred.ENV_TOKEN, raising=False)
    return folder


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_normalise_url() -> None:
    n = cred.normalise_url
    assert n("https://API.Example.com") == "https://api.example.com/"
    assert n("https://api.example.com:443/") == "https://api.example.com/"
    assert n("http://127.0.0.1:8000") == "http://127.0.0.1:8000/"
    assert n("http://user:pw@host:80/base?x=1#f") == "http://host/base/"
    assert n("api.example.com") == "https://api.example.com/"
    assert n("http://[::1]:9000/p/") == "http://[::1]:9000/p/"


def test_save_load(config_dir: Path) -> None:
    assert cred.load_token("https://a.test") is None
    path = cred.save_token("https://a.test", TOKEN)
    assert path == config_dir / "credentials.toml"
    assert mode(path) == 0o600 and mode(config_dir) == 0o700
    assert cred.load_token("https://a.test/") == TOKEN
    assert cred.load_token("https://A.test:443") == TOKEN
    assert cred.load_token("https://b.test") is None
    cred.save_token("http://127.0.0.1:8000", "other")
    cred.save_token("https://a.test", "newer")
    assert cred.load_token("https://a.test") == "newer"
    assert cred.load_token("http://127.0.0.1:8000/") == "other"
    assert cred.load_token("http://127.0.0.1:8000") == "other"
    assert [p.name for p in config_dir.iterdir() if p.suffix == ".tmp"] == []


def test_mode_is_0600_whatever_the_umask(config_dir: Path) -> None:
    old = os.umask(0)
    try:
        path = cred.save_token("https://a.test", TOKEN)
    finally:
        os.umask(old)
    assert mode(path) == 0o600


def test_existing_loose_file_and_folder_are_fixed(
    config_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config_dir.mkdir(parents=True, mode=0o755)
    os.chmod(config_dir, 0o755)
    path = config_dir / "credentials.toml"
    path.write_text('[remote."https://a.test/"]\ntoken = "old-secret"\n')
    os.chmod(path, 0o644)
    caplog.set_level(logging.DEBUG)
    assert cred.load_token("https://a.test") == "old-secret"
    assert mode(path) == 0o600
    cred.save_token("https://b.test", TOKEN)
    assert mode(path) == 0o600 and mode(config_dir) == 0o700
    assert "readable by others" in caplog.text
    assert "old-secret" not in caplog.text and TOKEN not in caplog.text


def test_resolution_order(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://a.test"
    with pytest.raises(cred.MissingTokenError) as err:
        cred.resolve_token(url)
    assert err.value.exit_code == EXIT_AUTH
    message = str(err.value)
    assert "--token" in message and "LOCALREPO_TOKEN" in message and "repo login" in message
    cred.save_token(url, "from-file")
    assert cred.resolve_token(url) == "from-file"
    monkeypatch.setenv("LOCALREPO_TOKEN", "from-env")
    assert cred.resolve_token(url) == "from-env"
    assert cred.resolve_token(url, "from-arg") == "from-arg"
    assert cred.resolve_token(url, "  ") == "from-env"  # an empty --token is no token
    assert cred.resolve_token(url, environ={}) == "from-file"


def test_broken_file_error_quotes_no_token(config_dir: Path) -> None:
    config_dir.mkdir(parents=True)
    (config_dir / "credentials.toml").write_text(f'[remote."x"\ntoken = "{TOKEN}"\n')
    with pytest.raises(cred.LocalrepoError) as err:
        cred.load_token("https://a.test")
    assert TOKEN not in str(err.value) and "credentials" in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_default_location_is_the_user_config_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv(cred.ENV_CONFIG_DIR)
    assert (
        cred.credentials_path() == platformdirs.user_config_path("localrepo") / "credentials.toml"
    )
