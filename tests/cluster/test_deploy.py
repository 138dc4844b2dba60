"""The deployment files run exactly the cluster script's command lines (issue 22 item 7):
deploy/compose.yaml, deploy/Dockerfile and deploy/systemd/*.service say what
scripts/clusterkit/commands.py says, and the real `localrepo-server` parser accepts it.
Docker is not run here; what can be checked without it is."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from localrepo.server.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
sys.path.insert(0, str(ROOT / "scripts"))

from clusterkit import commands  # noqa: E402


def parses(args: list[str]) -> None:
    """The server's own parser takes these arguments (it exits 2 on any it does not)."""
    parsed = build_parser().parse_args(args)
    assert parsed.command == args[0]


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_runs_the_scripts_commands() -> None:
    services = compose()["services"]
    assert services["init"]["command"] == commands.init()
    assert services["api"]["command"] == commands.api("0.0.0.0", 8000)
    assert services["worker"]["command"] == commands.worker()
    assert services["api"]["deploy"]["replicas"] == 3
    assert services["worker"]["deploy"]["replicas"] == 2
    for name in ("init", "api", "worker"):
        parses(services[name]["command"])
        env = services[name]["environment"]
        # Where the data is comes from the environment the script sets too, and every
        # secret is a variable of deploy/.env, never written in the file.
        assert set(env) <= set(commands.ENVIRONMENT)
        assert {"LOCALREPO_SERVER_DATA", "LOCALREPO_SERVER_DATABASE_URL"} <= set(env)
        assert "${POSTGRES_PASSWORD" in env["LOCALREPO_SERVER_DATABASE_URL"]
        assert env["AWS_SECRET_ACCESS_KEY"].startswith("${")
    assert {"postgres", "minio", "lb"} <= set(services)
    # The object store the API is told about is the bucket the compose file creates.
    bucket = services["bucket"]["command"][-1].split("/", 1)[1]
    assert services["api"]["environment"]["LOCALREPO_STORAGE"].startswith(f"s3://{bucket}/")


def test_the_load_balancer_checks_readiness_on_the_api_port() -> None:
    config = (DEPLOY / "haproxy.cfg").read_text()
    assert "option httpchk GET /readyz" in config
    assert re.search(r"server-template api \d+ api:8000 ", config)
    assert compose()["services"]["lb"]["ports"] == ["8000:8000"]


def test_the_image_runs_the_api_command() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    [entry] = re.findall(r"^ENTRYPOINT (.+)$", text, re.M)
    [cmd] = re.findall(r"^CMD (.+)$", text, re.M)
    assert json.loads(entry) == ["localrepo-server"]
    assert json.loads(cmd) == commands.api("0.0.0.0", 8000)


def unit_lines(name: str, key: str) -> list[list[str]]:
    text = (DEPLOY / "systemd" / name).read_text()
    return [shlex.split(m) for m in re.findall(rf"^{key}=(.+)$", text, re.M)]


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("localrepo-server.service", commands.api("127.0.0.1", 8000)),
        ("localrepo-worker@.service", commands.worker()),
    ],
)
def test_systemd_units_run_the_scripts_commands(unit: str, expected: list[str]) -> None:
    [argv] = unit_lines(unit, "ExecStart")
    assert argv[0].endswith("/localrepo-server")
    assert argv[1:] == expected
    parses(argv[1:])
    # Secrets from a file only root reads, never on the command line.
    assert unit_lines(unit, "EnvironmentFile") == [["/etc/localrepo/server.env"]]
    assert ["LOCALREPO_SERVER_DATA=/var/lib/localrepo"] in unit_lines(unit, "Environment")


def test_the_api_unit_makes_the_schema_first() -> None:
    [argv] = unit_lines("localrepo-server.service", "ExecStartPre")
    assert argv[1:] == commands.init()
    parses(argv[1:])
