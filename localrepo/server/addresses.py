"""Which addresses a ``_url`` record may reach (pure; no I/O, no DNS).

Contract: ``refusal(address, allow_private)`` is None for an address the server may
connect to, else the reason (a few words) it may not. Refused, unless
``allow_private`` (``--allow-private-urls``): every address that is not globally
reachable (loopback, private, link-local, shared, reserved, documentation...), and every
IPv6 address that carries such an IPv4 address inside it: IPv4-mapped
(``::ffff:10.0.0.1``), IPv4-compatible (``::10.0.0.1``), NAT64 (``64:ff9b::/96``, and the
local-use ``64:ff9b:1::/48``), 6to4 (``2002::/16``) and Teredo (``2001::/32``, server and
client). Always refused: multicast and the unspecified address.

``host_literal`` reads a URL's host the way the C resolver does when it is an address
written out: dotted IPv4 with one to four parts, each decimal, octal (leading ``0``) or
hex (``0x``) (``167772161``, ``0xa000001``, ``012.0.0.1``, ``10.1`` are all 10.0.0.x),
or IPv6 (with a zone), so that such a host is judged before any lookup.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _part(text: str) -> int | None:
    if not text:
        return None
    try:
        if text[:2].lower() == "0x":
            return int(text[2:], 16) if text[2:] else 0
        if len(text) > 1 and text[0] == "0":
            return int(text[1:], 8)
        return int(text, 10) if text.isdigit() else None
    except ValueError:
        return None


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = [_part(p) for p in parts]
    if any(v is None for v in values):
        return None
    nums: list[int] = values  # type: ignore[assignment]
    head, last = nums[:-1], nums[-1]
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for v in head:
        value = value * 256 + v
    return ipaddress.IPv4Address(value * 256 ** (4 - len(head)) + last)


def host_literal(host: str) -> IPAddress | None:
    """The address a host written as an address stands for; None for a name."""
    host = host.strip().strip("[]")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return None
    return _inet_aton(host)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (see the module's list)."""
    found: list[ipaddress.IPv4Address] = []
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    elif ip in _NAT64 or ip in _COMPATIBLE or ip in _NAT64_LOCAL:
        found.append(low32)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def refusal(address: str | IPAddress, allow_private: bool) -> str | None:
    """Why the server may not connect to ``address``; None when it may."""
    ip = address if not isinstance(address, str) else host_literal(address)
    if ip is None:
        return "not an IP address"
    if ip.is_multicast or ip.is_unspecified:
        return "a multicast or unspecified address"
    if allow_private:
        return None
    if not ip.is_global:
        return "a private, loopback or reserved address"
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in embedded_ipv4(ip):
            if not inner.is_global:
                return f"an IPv6 form of the private, loopback or reserved address {inner}"
    return None
