"""The packet tracer of podnet.testing walks a Table as the kernel would: jumps come back
on `return` or at a chain's end, a verdict map without the key is no verdict, the base
chain's policy decides when nothing else does."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Literal

import pytest

from podnet.nftables.expr import (
    ACCEPT,
    DROP,
    RETURN,
    DPort,
    Field,
    InSet,
    Jump,
    Proto,
    Range,
    Reject,
    VMap,
)
from podnet.nftables.model import Chain, Hook, Map, Rule, Set, Table
from podnet.testing import Packet, Tracer, trace

A, B = IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2")


def table(policy: Literal["accept", "drop"] = "accept") -> Table:
    hook = Hook("filter", "forward", "filter", policy)
    return Table(
        "inet",
        "t",
        sets=(
            Set("peers", ("ipv4_addr",), ("interval",), (Range(A, B),)),
            Set("np", ("ipv4_addr", "inet_proto", "inet_service"), (), ((B, "tcp", 8080),)),
        ),
        maps=(Map("by-src", ("ipv4_addr",), ((A, Jump("eg")),)),),
        chains=(
            Chain("eg", (Rule((InSet((Field.IP_DADDR,), "peers"), Proto("udp")), verdict=RETURN),
                         Rule((InSet((Field.IP_DADDR, Field.L4PROTO, Field.TH_DPORT), "np"),), verdict=RETURN),
                         Rule((Proto("tcp"), DPort(22)),),  # counts only: no verdict
                         Rule(verdict=Reject()))),
            Chain("forward", (Rule(verdict=VMap((Field.IP_SADDR,), "by-src")),
                              Rule((Proto("sctp"),), verdict=DROP),
                              Rule((DPort(1, 1024),), verdict=ACCEPT)), hook),
        ),
    )  # fmt: skip


@pytest.mark.parametrize(
    "pkt, want",
    [
        (Packet("10.0.0.1", "10.0.0.2", "udp", 53), "accept"),  # return, then the policy
        (Packet("10.0.0.1", "10.0.0.2", "tcp", 8080), "accept"),  # concatenated set
        (Packet("10.0.0.1", "10.0.0.2", "tcp", 8081), "reject"),
        (Packet("10.0.0.1", "10.0.0.2", "tcp", 22), "reject"),  # a counting rule goes on
        (Packet("10.0.0.9", "10.0.0.2", "sctp", 9), "drop"),  # not in the map: next rule
    ],
    ids=["return", "concat-set", "not-in-set", "no-verdict", "vmap-miss"],
)
def test_verdicts(pkt: Packet, want: str) -> None:
    assert trace(table(), pkt) == want


def test_falling_off_the_base_chain_is_its_policy() -> None:
    pkt = Packet("10.0.0.9", "10.0.0.2", "tcp", 5000)
    assert Tracer(table("accept")).trace(pkt) == "accept"
    assert Tracer(table("drop")).trace(pkt) == "drop"
    assert Tracer(table("drop")).trace(Packet("10.0.0.9", "10.0.0.2", "tcp", 80)) == "accept"


def test_no_base_chain_accepts() -> None:
    assert trace(Table("inet", "t"), Packet("10.0.0.1", "10.0.0.2", "tcp", 1)) == "accept"
