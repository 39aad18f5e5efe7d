"""A packet tracer over the tables podnet renders: the second opinion on the renderer.

It walks one new connection through a node's table (podnet.nftables values, as the
renderer built them; nothing is parsed) as the kernel would: from the base chain on the
forward hook, a jump returns to the caller on `return` or at the end of the chain;
`accept`, `drop` and `reject` end the hook; falling off the base chain is its policy.
Tests hold its verdicts equal to the policy engine's, so a renderer bug cannot hide behind
a passing engine.

Service NAT: `Tracer.nat(pkt)` walks the nat base chains of prerouting (or output) as the
kernel does for a connection's first packet and answers where DNAT sends it and whether it
was marked for masquerade; each `numgen random mod N` draws the next digit of the caller's
`pick` in base N, so a test can enumerate every endpoint a Service may choose
(`Tracer.endpoints`); then, for a packet that came in (prerouting), the filter chains of
forward (which mark a hairpin), and the nat chains of postrouting (the masquerade of what
was marked). `fib daddr type local` holds for the addresses the caller says the node
owns; `fib daddr . iif oif exists` holds when the destination is the source (each pod is
its own link; the tracer knows no other routes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import assert_never

from podnet.nftables.expr import (
    Accept,
    Addr,
    CtDnat,
    CtState,
    Dnat,
    DPort,
    Drop,
    Element,
    Fib,
    FibBackOut,
    Field,
    Goto,
    InSet,
    Jump,
    Log,
    MarkBit,
    MarkSet,
    Masquerade,
    Match,
    Numgen,
    Proto,
    Range,
    Reject,
    Return,
    SetUpdate,
    TcpNoSyn,
    Value,
    Verdict,
    VMap,
)
from podnet.nftables.model import Chain, Rule, Table

MAX_DEPTH = 16
_PRIORITY = {
    "raw": -300,
    "mangle": -150,
    "dstnat": -100,
    "filter": 0,
    "security": 50,
    "srcnat": 100,
}


@dataclass(frozen=True)
class Packet:
    """The first packet of a connection (`ct state new`)."""

    saddr: str
    daddr: str
    protocol: str  # "tcp", "udp", "sctp"
    dport: int


@dataclass(frozen=True)
class Nat:
    """What the nat hook did to a connection's first packet."""

    verdict: str  # 'accept' or 'drop'
    packet: Packet  # after DNAT (unchanged without)
    masquerade: bool  # masqueraded in postrouting (marked before, or a hairpin)
    dnat: bool


class Tracer:
    """One table, indexed by name once, to trace many packets through."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.chains = {c.name: c for c in table.chains}
        self.sets = {s.name: s.elements for s in table.sets}
        self.maps = {m.name: m.elements for m in table.maps}
        self.base = self.hooked("forward", "filter")
        self.pkt = Packet("0.0.0.0", "0.0.0.0", "tcp", 0)
        self.local: frozenset[IPv4Address] = frozenset()
        self.pick = 0
        self.mark = 0
        self.dnatted = False
        self.masqueraded = False
        self.updated: list[str] = []  # dynamic sets a rule would add the source to
        self.logged: list[str] = []  # prefixes of the log statements the packet met

    def hooked(self, hook: str, kind: str) -> list[Chain]:
        """The base chains of one hook and type, in the kernel's order (priority)."""
        chains = [
            c for c in self.table.chains if c.hook and (c.hook.hook, c.hook.type) == (hook, kind)
        ]
        return sorted(chains, key=lambda c: _priority(c.hook.priority if c.hook else 0))

    def trace(self, pkt: Packet, local: frozenset[IPv4Address] = frozenset()) -> str:
        """The verdict of the forward hook for the first packet of a connection: 'accept'
        (including falling off a base chain whose policy is accept), 'reject' or 'drop'."""
        self.pkt, self.local, self.mark, self.dnatted = pkt, local, 0, False
        self.logged = []
        return self._hook(self.base)

    def filter(self, hook: str, pkt: Packet, local: frozenset[IPv4Address] = frozenset()) -> str:
        """The verdict of the filter base chains of `hook` ('input', 'output', ...)."""
        self.pkt, self.local, self.mark, self.dnatted = pkt, local, 0, False
        self.logged = []
        return self._hook(self.hooked(hook, "filter"))

    def nat(
        self,
        pkt: Packet,
        hook: str = "prerouting",
        local: frozenset[IPv4Address] = frozenset(),
        pick: int = 0,
    ) -> Nat:
        """The nat chains of `hook` for a connection's first packet, then those of
        postrouting; `pick` stands for numgen's random number (taken mod N)."""
        self.pkt, self.local, self.pick, self.mark, self.dnatted = pkt, local, pick, 0, False
        self.updated, self.masqueraded, self.logged = [], False, []
        verdict = self._hook(self.hooked(hook, "nat"), nat=True)
        if verdict == "accept" and hook == "prerouting":
            verdict = self._hook(self.hooked("forward", "filter"))
        if verdict == "accept":
            verdict = self._hook(self.hooked("postrouting", "nat"), nat=True)
        return Nat(verdict, self.pkt, self.masqueraded, self.dnatted)

    def endpoints(
        self, pkt: Packet, hook: str = "prerouting", local: frozenset[IPv4Address] = frozenset()
    ) -> set[tuple[str, int]]:
        """Every (address, port) the nat hook may DNAT this packet to (each numgen pick)."""
        out = set()
        for pick in range(64):
            n = self.nat(pkt, hook, local, pick)
            if n.dnat and n.verdict == "accept":
                out.add((n.packet.daddr, n.packet.dport))
        return out

    def _hook(self, base: list[Chain], nat: bool = False) -> str:
        for chain in base:  # several base chains on one hook: each must accept
            policy = chain.hook.policy if chain.hook else None
            outcome = self.chain(chain, depth=0) or policy or "accept"
            if outcome != "accept":
                return outcome
            if nat and (self.dnatted or self.masqueraded):  # NAT ends the nat hook
                break
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
        if isinstance(m, Addr):
            addr = IPv4Address(self.field(m.field))  # type: ignore[arg-type]
            inside = addr == m.net if isinstance(m.net, IPv4Address) else addr in m.net
            return inside != m.negate
        if isinstance(m, Fib):
            text = self.pkt.daddr if m.which == "daddr" else self.pkt.saddr
            return IPv4Address(text) in self.local
        if isinstance(m, FibBackOut):
            return self.pkt.daddr == self.pkt.saddr
        if isinstance(m, CtDnat):
            return self.dnatted
        if isinstance(m, MarkBit):
            return bool(self.mark & m.bit) == m.present
        if isinstance(m, Numgen):
            self.pick, draw = divmod(self.pick, m.mod)
            return draw == m.value
        if isinstance(m, TcpNoSyn):
            return False  # the packet traced opens its connection (a SYN for TCP)
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
        for st in rule.statements:
            if isinstance(st, MarkSet):
                self.mark = self.mark ^ st.bit if st.clear else self.mark | st.bit
            elif isinstance(st, SetUpdate):
                self.updated.append(st.set)
            elif isinstance(st, Log):
                self.logged.append(st.prefix)
            else:
                assert_never(st)
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
        if isinstance(v, Goto):  # the target's end returns from this chain too
            return self.chain(self.chains[v.chain], depth + 1)
        if isinstance(v, Dnat):
            self.pkt = dataclasses.replace(self.pkt, daddr=str(v.addr), dport=v.port)
            self.dnatted = True
            return "accept"
        if isinstance(v, Masquerade):
            self.masqueraded = True
            return "accept"
        if isinstance(v, VMap):
            raise ValueError("a verdict map holds another vmap")
        assert_never(v)


def _priority(p: int | str) -> int:
    return p if isinstance(p, int) else _PRIORITY[p]


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
