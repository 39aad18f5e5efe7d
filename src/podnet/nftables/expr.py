"""The expressions of a rule, as values: what a packet is matched on (fields), the
matches podnet writes, set and map elements, and verdicts.

A new kind of rule (kube-proxy's Service NAT: `numgen random mod N vmap {...}`, `dnat to`,
`masquerade`, `ct mark`) is a new field or a new dataclass here plus one case in
podnet.nftables.text; nothing parses text back, so nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address
from typing import Literal

L4Proto = Literal["tcp", "udp", "sctp"]


class Field(Enum):
    """A packet field a match or a lookup reads (several concatenate into one key)."""

    IP_SADDR = "ip saddr"
    IP_DADDR = "ip daddr"
    L4PROTO = "meta l4proto"
    TH_DPORT = "th dport"  # transport header: the port of TCP, UDP and SCTP alike


# ---- set and map elements --------------------------------------------------------------
Value = IPv4Address | int | str  # an address, a port or number, a protocol name


@dataclass(frozen=True, slots=True)
class Range:
    """An inclusive interval, `lo-hi` (a set needs `flags interval` to hold ranges)."""

    lo: Value
    hi: Value


Element = Value | Range | tuple[Value, ...]  # a tuple: one element of a concatenated type


# ---- matches ---------------------------------------------------------------------------
CtStateName = Literal["new", "established", "related", "invalid", "untracked"]


@dataclass(frozen=True, slots=True)
class CtState:
    """`ct state a,b`: the connection tracking state is one of these."""

    states: tuple[CtStateName, ...]


@dataclass(frozen=True, slots=True)
class Proto:
    """`meta l4proto NAME`."""

    name: L4Proto


@dataclass(frozen=True, slots=True)
class DPort:
    """`th dport N` or `th dport N-M` (inclusive)."""

    lo: int
    hi: int | None = None  # None: the single port lo


@dataclass(frozen=True, slots=True)
class InSet:
    """`KEY @set`: the packet's key (one field, or a concatenation such as
    `ip daddr . meta l4proto . th dport`) is an element of the named set."""

    key: tuple[Field, ...]
    set: str


Match = CtState | Proto | DPort | InSet


# ---- verdicts --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Accept:
    pass


@dataclass(frozen=True, slots=True)
class Drop:
    pass


@dataclass(frozen=True, slots=True)
class Return:
    """Back to the chain that jumped here (in a base chain: its policy)."""


@dataclass(frozen=True, slots=True)
class Jump:
    chain: str


@dataclass(frozen=True, slots=True)
class Reject:
    """`reject with icmpx admin-prohibited`: ICMP "administratively prohibited" for every
    protocol (icmpx: the inet family's codes, translated per address family)."""

    code: Literal["admin-prohibited", "port-unreachable", "host-unreachable"] = "admin-prohibited"


@dataclass(frozen=True, slots=True)
class VMap:
    """`KEY vmap @map`: the verdict the named map holds for the packet's key; a key the
    map does not hold is no verdict (the next rule is evaluated)."""

    key: tuple[Field, ...]
    map: str


Verdict = Accept | Drop | Return | Jump | Reject | VMap

ACCEPT, DROP, RETURN = Accept(), Drop(), Return()
