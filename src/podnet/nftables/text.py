"""The one place that writes nft syntax: a Table (podnet.nftables.model) -> `nft -f` text.

`replace(table)` is the whole transaction the datapath applies:

    table inet NAME            create it if missing, so that the delete cannot fail
    delete table inet NAME     drop the old contents (counters, sets, chains) ...
    table inet NAME { ... }    ... and declare the new, all in one atomic transaction

No packet sees a half-built ruleset: `nft -f` commits the three together or nothing.
"""

from __future__ import annotations

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
from podnet.nftables.model import Chain, Counter, Hook, Map, Rule, Set, Table


def replace(table: Table) -> str:
    """The `nft -f` input that replaces `table` whole, atomically."""
    head = f"{table.family} {table.name}"
    return f"table {head}\ndelete table {head}\n" + declare(table)


def declare(table: Table) -> str:
    """`table FAMILY NAME { ... }`: counters, sets, maps, then chains, each in given order."""
    out = [f"table {table.family} {table.name} {{"]
    out += [_counter(c) for c in table.counters]
    out += [_set(s) for s in table.sets]
    out += [_map(m) for m in table.maps]
    out += [_chain(c) for c in table.chains]
    out.append("}")
    return "\n".join(out) + "\n"


def _counter(c: Counter) -> str:
    if c.packets == 0 and c.bytes == 0:
        return f"\tcounter {c.name} {{ }}"
    return f"\tcounter {c.name} {{ packets {c.packets} bytes {c.bytes} }}"


def _set(s: Set) -> str:
    out = [f"\tset {s.name} {{", f"\t\ttype {' . '.join(s.type)}"]
    if s.flags:
        out.append(f"\t\tflags {','.join(s.flags)}")
    if s.elements:
        out.append(f"\t\telements = {{ {', '.join(element(e) for e in s.elements)} }}")
    out.append("\t}")
    return "\n".join(out)


def _map(m: Map) -> str:
    out = [f"\tmap {m.name} {{", f"\t\ttype {' . '.join(m.type)} : verdict"]
    if m.flags:
        out.append(f"\t\tflags {','.join(m.flags)}")
    if m.elements:
        listed = ", ".join(f"{element(k)} : {verdict(v)}" for k, v in m.elements)
        out.append(f"\t\telements = {{ {listed} }}")
    out.append("\t}")
    return "\n".join(out)


def _chain(c: Chain) -> str:
    out = [f"\tchain {c.name} {{"]
    if c.hook is not None:
        out.append(f"\t\t{_hook(c.hook)}")
    out += [f"\t\t{rule(r)}" for r in c.rules]
    out.append("\t}")
    return "\n".join(out)


def _hook(h: Hook) -> str:
    text = f"type {h.type} hook {h.hook} priority {h.priority};"
    return text if h.policy is None else f"{text} policy {h.policy};"


def rule(r: Rule) -> str:
    """One rule, as it stands on its line inside a chain."""
    parts = [match(m) for m in r.matches]
    if r.counter is not None:
        parts.append(f"counter name {r.counter}")
    if r.verdict is not None:
        parts.append(verdict(r.verdict))
    return " ".join(parts)


def _key(key: tuple[Field, ...]) -> str:
    return " . ".join(f.value for f in key)


def match(m: Match) -> str:
    if isinstance(m, InSet):
        return f"{_key(m.key)} @{m.set}"
    if isinstance(m, Proto):
        return f"meta l4proto {m.name}"
    if isinstance(m, DPort):
        return f"th dport {m.lo}" if m.hi is None else f"th dport {m.lo}-{m.hi}"
    if isinstance(m, CtState):
        return f"ct state {','.join(m.states)}"
    assert_never(m)


def verdict(v: Verdict) -> str:
    if isinstance(v, Accept):
        return "accept"
    if isinstance(v, Return):
        return "return"
    if isinstance(v, Jump):
        return f"jump {v.chain}"
    if isinstance(v, Reject):
        return f"reject with icmpx {v.code}"
    if isinstance(v, Drop):
        return "drop"
    if isinstance(v, VMap):
        return f"{_key(v.key)} vmap @{v.map}"
    assert_never(v)


def element(e: Element) -> str:
    """A set or map element: a value, a range `lo-hi`, or a concatenation `a . b . c`."""
    if isinstance(e, tuple):
        return " . ".join(_value(v) for v in e)
    if isinstance(e, Range):
        return f"{_value(e.lo)}-{_value(e.hi)}"
    return _value(e)


def _value(v: Value) -> str:
    return str(v) if isinstance(v, IPv4Address | int) else v
