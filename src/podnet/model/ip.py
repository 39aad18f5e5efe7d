"""IPv4 addresses as text and as integers, fast for the common canonical dotted quad.

A 10,000-pod dump holds 30,000 addresses (podIP, podIPs, hostIP); parsing each through
`ipaddress` was a tenth of the analysis. Anything but a canonical dotted quad still goes
through `ipaddress`, so that every spelling it accepts or refuses stays accepted or refused.
"""

from __future__ import annotations

import ipaddress
import re

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_V4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def canonical_ip(text: str) -> str:
    """The address as `ipaddress` prints it; ValueError if it is none."""
    if _CANONICAL_V4.fullmatch(text):
        return text
    return str(ipaddress.ip_address(text))


def ipv4_int(text: str) -> int | None:
    """The address as an integer, or None when it is not IPv4."""
    if _CANONICAL_V4.fullmatch(text):
        a, b, c, d = text.split(".")
        return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)
    addr = ipaddress.ip_address(text)
    return int(addr) if isinstance(addr, ipaddress.IPv4Address) else None
