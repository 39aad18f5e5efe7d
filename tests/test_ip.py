"""model.ip: the fast path agrees with `ipaddress` on every spelling."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podnet.model.ip import canonical_ip, ipv4_int


@given(st.integers(0, 2**32 - 1))
def test_canonical_quads(value: int) -> None:
    text = str(ipaddress.IPv4Address(value))
    assert canonical_ip(text) == text
    assert ipv4_int(text) == value


@pytest.mark.parametrize(
    "text", ["10.0.0.1", "0.0.0.0", "255.255.255.255", "2001:db8::1", "2001:DB8:0::1", "::"]
)
def test_as_ipaddress_prints_it(text: str) -> None:
    addr = ipaddress.ip_address(text)
    assert canonical_ip(text) == str(addr)
    assert ipv4_int(text) == (int(addr) if addr.version == 4 else None)


@pytest.mark.parametrize("text", ["010.0.0.1", "256.1.1.1", "1.2.3", "1.2.3.4.5", "", "a.b.c.d"])
def test_refused_as_ipaddress_refuses_it(text: str) -> None:
    with pytest.raises(ValueError):
        ipaddress.ip_address(text)
    with pytest.raises(ValueError):
        canonical_ip(text)
    with pytest.raises(ValueError):
        ipv4_int(text)
