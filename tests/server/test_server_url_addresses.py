"""The `_url` check (issue 20, item 4): every encoding of a private address is refused
(server/addresses.py, table-driven), over HTTP too, and the fetch connects to the
address it checked, whatever the resolver answers next (DNS rebinding)."""

from __future__ import annotations

import http.server
import ipaddress
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.imagegen import class_image

from localrepo.server.addresses import host_literal, refusal

from .trainhelp import multi_class_task, train

# (address or host as written, allowed without --allow-private-urls)
TABLE = [
    ("93.184.216.34", True),
    ("8.8.8.8", True),
    ("2606:4700:4700::1111", True),
    ("2002:5db8:d822::1", True),  # 6to4 of 93.184.216.34
    ("64:ff9b::5db8:d822", True),  # NAT64 of 93.184.216.34
    ("::ffff:93.184.216.34", True),
    ("127.0.0.1", False),
    ("10.0.0.1", False),
    ("172.16.5.4", False),
    ("192.168.1.1", False),
    ("169.254.169.254", False),  # cloud metadata
    ("100.64.0.1", False),  # shared (CGNAT)
    ("0.0.0.0", False),
    ("224.0.0.1", False),
    ("::1", False),
    ("::", False),
    ("fe80::1", False),
    ("fc00::1", False),
    ("::ffff:10.0.0.1", False),  # IPv4-mapped
    ("::ffff:127.0.0.1", False),
    ("::10.0.0.1", False),  # IPv4-compatible
    ("::127.0.0.1", False),
    ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
    ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
    ("64:ff9b:1::a00:1", False),  # local-use NAT64
    ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
    ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
    ("2002:c0a8:101::5", False),  # 6to4 of 192.168.1.1
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo, client 10.0.0.1
    ("fe80::1%eth0", False),
    ("167772161", False),  # decimal 10.0.0.1
    ("2130706433", False),  # decimal 127.0.0.1
    ("0x7f000001", False),  # hex
    ("0177.0.0.1", False),  # octal
    ("0x7f.1", False),
    ("127.1", False),
    ("10.1", False),
    ("012.0.0.1", False),  # octal 10.0.0.1
]


@pytest.mark.parametrize(("host", "allowed"), TABLE)
def test_refusal_table(host: str, allowed: bool) -> None:
    assert (refusal(host, allow_private=False) is None) is allowed, refusal(host, False)


@pytest.mark.parametrize(("host", "allowed"), TABLE)
def test_allow_private_lets_all_but_multicast_and_unspecified_through(
    host: str, allowed: bool
) -> None:
    ip = host_literal(host)
    assert ip is not None
    always_refused = ip.is_multicast or ip.is_unspecified
    assert (refusal(host, allow_private=True) is None) is (not always_refused)


def test_host_literal_reads_addresses_like_the_c_resolver_and_leaves_names_alone() -> None:
    assert host_literal("167772161") == ipaddress.ip_address("10.0.0.1")
    assert host_literal("0xa000001") == ipaddress.ip_address("10.0.0.1")
    assert host_literal("10.258") == ipaddress.ip_address("10.0.1.2")
    assert host_literal("[::ffff:10.0.0.1]") == ipaddress.ip_address("::ffff:a00:1")
    for name in ("example.org", "1.2.3.4.example.org", "10.0.0.256", "0x1g", "", "1..2"):
        assert host_literal(name) is None, name
    assert refusal("example.org", False) == "not an IP address"


@pytest.fixture(scope="module")
def private_site() -> Iterator[tuple[str, list[str]]]:
    """A web server on 127.0.0.1 that serves an image and notes every request."""
    seen: list[str] = []
    body = class_image("circle", 3)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()


def test_encoded_private_addresses_and_dns_rebinding_over_http(
    server_factory: Callable[..., Any],
    private_site: tuple[str, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    count = tmp_path / "resolver-answers"
    faults = Path(__file__).resolve().parents[1] / "support" / "rebind"
    monkeypatch.setenv("LOCALREPO_TEST_REBIND_COUNT", str(count))
    monkeypatch.setenv("PYTHONPATH", f"{faults}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    server = server_factory(
        "--backend", "handcrafted", "--min-images-per-label", "3", "--url-timeout", "2"
    )
    api = server.client()
    task, _ = multi_class_task(api, per_label=4)
    assert train(api, task["id"])["train_status"] == "TRAINED"
    site, seen = private_site
    port = site.rsplit(":", 1)[1]
    encoded = [
        f"[64:ff9b::7f00:1]:{port}",  # NAT64
        f"[64:ff9b:1::7f00:1]:{port}",
        f"[2002:7f00:1::1]:{port}",  # 6to4
        f"[::ffff:127.0.0.1]:{port}",  # mapped
        f"[::127.0.0.1]:{port}",  # compatible
        f"2130706433:{port}",  # decimal
        f"0x7f000001:{port}",  # hex
        f"0177.0.0.1:{port}",  # octal
        f"127.1:{port}",
    ]
    records = [{"_url": f"http://{host}/x.jpg", "_id": host} for host in encoded]
    r = api.post("classify/", json={"task_id": task["id"], "records": records})
    assert r.status_code == 200, r.text
    for rec in r.json()["records"]:
        assert rec["_status"]["code"] == 403, rec
        assert "--allow-private-urls" in rec["_status"]["text"], rec
    # DNS rebinding: the first answer is public (and checked), the next would be
    # 127.0.0.1; the fetch must never reach the private site.
    rebind = [{"_url": f"http://rebind.localrepo.test:{port}/secret.jpg", "_id": "rebind"}]
    r = api.post("classify/", json={"task_id": task["id"], "records": rebind})
    assert r.status_code == 200, r.text
    status = r.json()["records"][0]["_status"]
    assert status["code"] != 200, status
    assert count.read_text() == "1"  # resolved once: the connection went to that answer
    assert seen == []
