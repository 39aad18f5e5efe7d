"""A packet tracer over the tables podnet renders: the second opinion on the renderer.

It walks one new connection through a node's table (podnet.nftables values, as the
renderer built them; nothing is parsed) as the kernel would: from the base chain on the
forward hook, a jump returns to the caller on `return` or at the end of the chain;
`accept`, `drop` and `reject` end the hook; falling off the base chain is its policy.
Tests hold its verdicts equal to the policy engine's, so a renderer bug cannot hide behind
a passing engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import assert_never

from podnet.nftables.expr import (
    Accept,
    CtState,
    DPort,
    Drop,
    Element,
    Field,
    InSet,
    Jump,
    Match,
    Proto,
    Range,
    Reject,
    Return,
    Value,
    Verdict,
    VMap,
)
from podnet.nftables.model import Chain, Rule, Table

MAX_DEPTH = 16


@dataclass(frozen=True)
class Packet:
    """The first packet of a connection (`ct state new`)."""

    saddr: str
    daddr: str
    protocol: str  # "tcp", "udp", "sctp"
    dport: int


class Tracer:
    """One table, indexed by name once, to trace many packets through."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.chains = {c.name: c for c in table.chains}
        self.sets = {s.name: s.elements for s in table.sets}
        self.maps = {m.name: m.elements for m in table.maps}
        self.base = [c for c in table.chains if c.hook is not None and c.hook.hook == "forward"]
        self.pkt = Packet("0.0.0.0", "0.0.0.0", "tcp", 0)

    def trace(self, pkt: Packet) -> str:
        """The verdict of the forward hook for the first packet of a connection: 'accept'
        (including falling off a base chain whose policy is accept), 'reject' or 'drop'."""
        self.pkt = pkt
        for chain in self.base:  # several base chains on one hook: each must accept
            policy = chain.hook.policy if chain.hook else None
            outcome = self.chain(chain, depth=0) or policy or "accept"
            if outcome != "accept":
                return outcome
        return "accept"  # no hook: nothing of this node is isolated

    def field(self, f: Field) -> Value:
        if f is Field.IP_SADDR:
            return IPv4Address(self.pkt.saddr)
        if f is Field.IP_DADDR:
            return IPv4Address(self.pkt.daddr)
        if f is Field.L4PROTO:
            return self.pkt.protocol
        if f is Field.TH_DPORT:
            return self.pkt.dport
        assert_never(f)

    def key(self, key: tuple[Field, ...]) -> tuple[Value, ...]:
        return tuple(self.field(f) for f in key)

    def holds(self, m: Match) -> bool:
        if isinstance(m, CtState):
            return "new" in m.states  # a new connection: neither established nor invalid
        if isinstance(m, Proto):
            return m.name == self.pkt.protocol
        if isinstance(m, DPort):
            return m.lo <= self.pkt.dport <= (m.lo if m.hi is None else m.hi)
        if isinstance(m, InSet):
            key = self.key(m.key)
            return any(_contains(e, key) for e in self.sets[m.set])
        assert_never(m)

    def chain(self, chain: Chain, depth: int) -> str | None:
        """The verdict that ends the hook ('accept', 'drop', 'reject'), or None: back to
        the caller (a `return`, or the end of the chain)."""
        if depth > MAX_DEPTH:
            raise RecursionError("jump loop in ruleset")
        for rule in chain.rules:
            if not all(self.holds(m) for m in rule.matches):
                continue
            outcome = self.verdict(rule, depth)
            if outcome != "continue":
                return outcome
        return None

    def verdict(self, rule: Rule, depth: int) -> str | None:
        """'continue' when the rule has no verdict for this packet."""
        v: Verdict | None = rule.verdict
        if isinstance(v, VMap):
            key = self.key(v.key)
            v = next((t for e, t in self.maps[v.map] if _contains(e, key)), None)
        if v is None:
            return "continue"
        if isinstance(v, Accept):
            return "accept"
        if isinstance(v, Drop):
            return "drop"
        if isinstance(v, Reject):
            return "reject"
        if isinstance(v, Return):
            return None
        if isinstance(v, Jump):
            outcome = self.chain(self.chains[v.chain], depth + 1)
            return "continue" if outcome is None else outcome
        if isinstance(v, VMap):
            raise ValueError("a verdict map holds another vmap")
        assert_never(v)


def _contains(e: Element, key: tuple[Value, ...]) -> bool:
    """Whether set element `e` holds the packet's key (a range: lo <= value <= hi)."""
    parts = e if isinstance(e, tuple) else (e,)
    return len(parts) == len(key) and all(
        _in_range(p, v) if isinstance(p, Range) else p == v for p, v in zip(parts, key, strict=True)
    )


def _in_range(r: Range, v: Value) -> bool:
    if isinstance(r.lo, IPv4Address) and isinstance(r.hi, IPv4Address):
        return isinstance(v, IPv4Address) and r.lo <= v <= r.hi
    if isinstance(r.lo, int) and isinstance(r.hi, int):
        return isinstance(v, int) and r.lo <= v <= r.hi
    raise TypeError(f"no order on range {r}")


def trace(table: Table | Tracer, pkt: Packet) -> str:
    """Tracer(table).trace(pkt); pass a Tracer to trace many packets through one table."""
    return (table if isinstance(table, Tracer) else Tracer(table)).trace(pkt)
