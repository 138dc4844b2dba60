"""The command lines of a localrepo-server cluster, in one place.

`scripts/cluster.py` runs exactly these on this machine, and `deploy/compose.yaml` and
`deploy/systemd/*.service` run exactly these in production:
`tests/cluster/test_deploy.py` fails when those files say anything else. What differs
between places is never on the command line but in the environment (`ENVIRONMENT`): the
data folder, the database URL, the object store, and their secrets.

Each is the arguments after the program (`localrepo-server`); `{host}` and `{port}` in
`API` are filled per process (compose: `0.0.0.0`, 8000 in every container; the script:
127.0.0.1 and a free port per process).
"""

from __future__ import annotations

# Everything a process reads from its environment, never from its command line.
ENVIRONMENT = (
    "LOCALREPO_SERVER_DATA",  # the data folder (shared by all processes on one host)
    "LOCALREPO_SERVER_DATABASE_URL",  # PostgreSQL, shared by all processes
    "LOCALREPO_STORAGE",  # the object store's URL, when image bytes live there
    "AWS_ACCESS_KEY_ID",  # its credentials
    "AWS_SECRET_ACCESS_KEY",
)

# Once, before any API process starts: the schema (concurrent starts would race for it).
INIT = ("init",)

# An API process: serves the API and the web pages; trains nothing (`--no-worker`).
API = ("serve", "--host", "{host}", "--port", "{port}", "--no-worker", "--backend", "handcrafted")

# A training worker: takes queued trainings, one at a time, from the shared database; it
# looks for the jobs of dead workers every 5 s (a cheap query) rather than every minute.
WORKER = ("worker", "--backend", "handcrafted", "--requeue-every", "5")


def api(host: str, port: int) -> list[str]:
    return [part.format(host=host, port=port) for part in API]


def worker() -> list[str]:
    return list(WORKER)


def init() -> list[str]:
    return list(INIT)
