"""The expressions of a rule, as values: what a packet is matched on (fields), the
matches podnet writes, set and map elements, and verdicts.

A new kind of rule is a new field or a new dataclass here plus one case in
podnet.nftables.text (and in the test tracer); nothing parses text back. The Service NAT of
kube-proxy's nftables mode added `Addr`, `Fib`, `MarkBit`, `Numgen` (matches), `MarkSet` and
`SetUpdate` (statements), `Numgen` (a match), `Goto`, `Dnat` and `Masquerade` (verdicts).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv4Network
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


@dataclass(frozen=True, slots=True)
class Addr:
    """`ip saddr 10.244.0.0/16`, `ip daddr 10.96.0.1`, or with `!=` when `negate`."""

    field: Literal[Field.IP_SADDR, Field.IP_DADDR]
    net: IPv4Network | IPv4Address  # an address: cheaper to build than a /32 network
    negate: bool = False


@dataclass(frozen=True, slots=True)
class Fib:
    """`fib daddr type local` (or saddr): the address is one of this namespace's own; how
    NodePorts match "any address of the node" without listing them."""

    which: Literal["saddr", "daddr"] = "daddr"


@dataclass(frozen=True, slots=True)
class FibBackOut:
    """`fib daddr . iif oif exists`: the route to the destination leaves by the interface
    the packet came in by. After DNAT, on a pod's veth, that is a pod sent to itself
    (hairpin): one rule instead of a rule (or a set element) per endpoint."""


@dataclass(frozen=True, slots=True)
class CtDnat:
    """`ct status dnat`: the connection was DNATed (by a Service rule)."""


@dataclass(frozen=True, slots=True)
class MarkBit:
    """`meta mark & BIT != 0` (or `== 0` when not `present`)."""

    bit: int
    present: bool = True


@dataclass(frozen=True, slots=True)
class Numgen:
    """`numgen random mod N == V`: a fresh random number per evaluation. Rule i of n
    endpoints matching `mod n-i == 0` chooses each endpoint with probability 1/n.

    Rejected: kube-proxy's `numgen random mod N vmap { 0 : goto a, ... }`, one anonymous
    map per Service. nft 1.0.6 (Debian 12) handles anonymous sets in time quadratic in their
    number: 4,000 Services took 8.5 s to load, against 0.9 s as rules."""

    mod: int
    value: int = 0


@dataclass(frozen=True, slots=True)
class TcpNoSyn:
    """`tcp flags & syn == 0`: a TCP packet that opens nothing, i.e. one of a connection
    already open (conntrack picks such a packet up mid-stream as `ct state new` when its
    entry is gone)."""


Match = (
    CtState | Proto | DPort | InSet | Addr | Fib | FibBackOut | CtDnat | MarkBit | Numgen | TcpNoSyn
)


# ---- statements (they act, then the rule goes on to its verdict) ------------------------
@dataclass(frozen=True, slots=True)
class MarkSet:
    """`meta mark set meta mark | BIT` (`^ BIT` when `clear`: the bit is known to be set)."""

    bit: int
    clear: bool = False


@dataclass(frozen=True, slots=True)
class SetUpdate:
    """`update @set { KEY }`: add the packet's key to a dynamic set, (re)starting the
    element's timeout (ClientIP session affinity)."""

    set: str
    key: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Log:
    """`log prefix "PREFIX" group N`: a copy of the packet's headers to the nfnetlink_log
    group N of this network namespace, tagged with PREFIX (at most 127 bytes). Nobody
    listening on the group: the message is dropped in the kernel at once."""

    group: int
    prefix: str


Statement = MarkSet | SetUpdate | Log


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
class Goto:
    """Like Jump, but the called chain does not come back here: its end (or `return`) is
    the end of the caller's caller."""

    chain: str


@dataclass(frozen=True, slots=True)
class Dnat:
    """`dnat ip to ADDR:PORT` (the rule must match a protocol: nft needs it for a port)."""

    addr: IPv4Address
    port: int


@dataclass(frozen=True, slots=True)
class Masquerade:
    """`masquerade fully-random`: the source becomes the outgoing interface's address, with a
    random source port (kube-proxy's choice: avoids port clashes between nodes' SNATs)."""


@dataclass(frozen=True, slots=True)
class Reject:
    """`reject with icmpx admin-prohibited`: ICMP "administratively prohibited" for every
    protocol (icmpx: the inet family's codes, translated per address family)."""

    code: Literal["admin-prohibited", "port-unreachable", "host-unreachable", "tcp-reset"] = (
        "admin-prohibited"
    )
    # port-unreachable: what a closed port answers; TCP's connect() fails with ECONNREFUSED
    # tcp-reset: `reject with tcp reset` (TCP only: the rule must match TCP, as TcpNoSyn does);
    # the sender's socket is reset at once, established or not, where ICMP errors are only
    # soft errors to an established TCP connection (it retransmits until it times out)


@dataclass(frozen=True, slots=True)
class VMap:
    """`KEY vmap @map`: the verdict the named map holds for the packet's key; a key the
    map does not hold is no verdict (the next rule is evaluated)."""

    key: tuple[Field, ...]
    map: str


Verdict = Accept | Drop | Return | Jump | Goto | Reject | VMap | Dnat | Masquerade

ACCEPT, DROP, RETURN = Accept(), Drop(), Return()
