"""A real S3-compatible server on loopback for the object-storage tests: moto's server
mode in a subprocess (``python -m moto.server``), one per test session (per xdist
worker), with a fresh bucket per test.

Credentials are fixed fake ones; the secret is distinctive so that a test can look
for it in logs (it must never be there).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from support.waiting import limit

ACCESS_KEY = "AKIALOCALREPOTEST"
SECRET_KEY = "s3cr3t-never-in-a-log-0f9a7c"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    def __init__(self) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + limit(30)
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the moto S3 server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=limit(10))
            self._proc = None

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self) -> Bucket:
        name = f"t-{uuid.uuid4().hex[:16]}"
        client = self.client()
        client.create_bucket(Bucket=name)
        return Bucket(name, "imgs", self.endpoint, client)


@dataclass
class Bucket:
    name: str
    prefix: str
    endpoint: str
    client: Any  # boto3's, to look at the bucket from outside the server

    @property
    def url(self) -> str:
        return f"s3://{self.name}/{self.prefix}?endpoint={self.endpoint}&region={REGION}"

    def objects(self, under: str = "") -> dict[str, int]:
        """key (below the prefix) -> size, of the objects under ``under``."""
        found: dict[str, int] = {}
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=f"{self.prefix}/{under}"
        )
        for page in pages:
            for obj in page.get("Contents", []):
                found[obj["Key"].removeprefix(self.prefix + "/")] = obj["Size"]
        return found

    def get(self, key: str) -> bytes:
        body = self.client.get_object(Bucket=self.name, Key=f"{self.prefix}/{key}")["Body"]
        return bytes(body.read())

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=f"{self.prefix}/{key}", Body=data)


def credentials_env() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
    }
