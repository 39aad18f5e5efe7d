"""A packet tracer over the rulesets podnet renders: the second opinion on the renderer.

It parses the subset of nft syntax that policy_nft.py writes (sets, verdict maps, chains of
match-then-verdict rules) and walks one new connection through a node's forward hook as the
kernel would: a jump returns to the caller on `return` or the end of the chain; `accept`,
`drop` and `reject` end the hook. Tests hold its verdicts equal to the policy engine's, so a
renderer bug cannot hide behind a passing engine.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

PROTO_NAMES = {"tcp": 6, "udp": 17, "sctp": 132}


@dataclass(frozen=True)
class Packet:
    saddr: str
    daddr: str
    protocol: str  # "tcp", "udp", "sctp"
    dport: int


@dataclass
class Ruleset:
    addr_sets: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    tuple_sets: dict[str, set[tuple[int, str, int]]] = field(default_factory=dict)
    maps: dict[str, dict[int, str]] = field(default_factory=dict)  # ip -> "jump chain"
    chains: dict[str, list[str]] = field(default_factory=dict)


def _ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def _interval(text: str) -> tuple[int, int]:
    if "-" in text:
        lo, hi = text.split("-")
        return _ip(lo), _ip(hi)
    if "/" in text:
        net = ipaddress.IPv4Network(text)
        return int(net.network_address), int(net.broadcast_address)
    return _ip(text), _ip(text)


def parse(text: str) -> Ruleset:
    rs = Ruleset()
    lines = [line.strip() for line in text.splitlines()]
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(set|map|chain) (\S+) \{$", line)
        if not m:
            i += 1
            continue
        what, name = m.groups()
        body = []
        i += 1
        while lines[i] != "}":
            body.append(lines[i])
            i += 1
        i += 1
        if what == "chain":
            rs.chains[name] = [b for b in body if not b.startswith("type ")]
            continue
        elems = next((b for b in body if b.startswith("elements = {")), "")
        items = [
            x.strip()
            for x in elems.removeprefix("elements = {").removesuffix("}").split(",")
            if x.strip()
        ]
        if what == "map":
            rs.maps[name] = {_ip(k.strip()): v.strip() for k, v in (x.split(":") for x in items)}
        elif any("." in b and "type ipv4_addr ." in b for b in body):
            rs.tuple_sets[name] = {
                (_ip(a), p, int(port)) for a, p, port in (tuple(x.split(" . ")) for x in items)
            }
        else:
            rs.addr_sets[name] = [_interval(x) for x in items]
    return rs


def _matches(rs: Ruleset, rule: str, pkt: Packet) -> tuple[bool, str]:
    """(all matches hold, the verdict part of the rule)."""
    tokens = rule.split()
    pos = 0
    src, dst = _ip(pkt.saddr), _ip(pkt.daddr)
    while pos < len(tokens):
        t = tokens[pos : pos + 3]
        if t[:2] == ["ip", "saddr"] and t[2].startswith("@"):
            if not any(lo <= src <= hi for lo, hi in rs.addr_sets[t[2][1:]]):
                return False, ""
            pos += 3
        elif t[:2] == ["ip", "daddr"] and len(t) > 2 and t[2].startswith("@"):
            if not any(lo <= dst <= hi for lo, hi in rs.addr_sets[t[2][1:]]):
                return False, ""
            pos += 3
        elif tokens[pos : pos + 8][:7] == ["ip", "daddr", ".", "meta", "l4proto", ".", "th"]:
            name = tokens[pos + 8][1:]
            if (dst, pkt.protocol, pkt.dport) not in rs.tuple_sets[name]:
                return False, ""
            pos += 9
        elif t[:2] == ["meta", "l4proto"]:
            if t[2] != pkt.protocol:
                return False, ""
            pos += 3
        elif t[:2] == ["th", "dport"]:
            lo, _, hi = t[2].partition("-")
            if not int(lo) <= pkt.dport <= int(hi or lo):
                return False, ""
            pos += 3
        elif t[:2] == ["counter", "name"]:
            pos += 3
        else:
            return True, " ".join(tokens[pos:])
    return True, ""


def trace(rs: Ruleset, pkt: Packet) -> str:
    """The verdict of the forward hook for the first packet of a connection:
    'accept' (including falling off the base chain, whose policy is accept) or 'reject'/'drop'."""
    if "forward" not in rs.chains:
        return "accept"  # no hook: nothing of this node is isolated
    return _walk(rs, "forward", pkt, depth=0) or "accept"


def _walk(rs: Ruleset, chain: str, pkt: Packet, depth: int) -> str | None:
    if depth > 16:
        raise RecursionError("jump loop in ruleset")
    for rule in rs.chains[chain]:
        if rule.startswith("ct state"):
            continue  # a new connection: neither established nor invalid
        m = re.match(r"^ip (saddr|daddr) vmap @(\S+)$", rule)
        if m:
            addr = _ip(pkt.saddr if m.group(1) == "saddr" else pkt.daddr)
            target = rs.maps[m.group(2)].get(addr)
            if target is None:
                continue
            verdict = _walk(rs, target.removeprefix("jump "), pkt, depth + 1)
            if verdict is not None:
                return verdict
            continue
        hit, verdict = _matches(rs, rule, pkt)
        if not hit:
            continue
        if verdict == "return":
            return None
        if verdict.startswith("jump "):
            result = _walk(rs, verdict.removeprefix("jump "), pkt, depth + 1)
            if result is not None:
                return result
            continue
        if verdict == "accept":
            return "accept"
        if verdict.startswith(("reject", "drop")):
            return verdict.split()[0]
    return None
