"""nftables objects as immutable values: a table holds counters, sets, verdict maps and
chains; a chain holds rules; a rule is typed matches, an optional named counter and a
verdict (podnet.nftables.expr). Nothing here knows nft's syntax: podnet.nftables.text
renders a Table, and only the datapath hands that text to the kernel.

Order is the caller's: objects render in the order they are given, so a renderer that
sorts its input renders deterministic text (golden files compare it byte for byte).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Literal

from podnet.nftables.expr import Element, Match, Statement, Verdict

Family = Literal["inet", "ip", "ip6", "netdev", "bridge", "arp"]
ChainType = Literal["filter", "nat", "route"]
HookName = Literal["prerouting", "input", "forward", "output", "postrouting", "ingress"]
# nft data types used in set and map declarations (a concatenation lists several).
DataType = Literal["ipv4_addr", "inet_proto", "inet_service", "mark", "verdict"]
SetFlag = Literal["interval", "constant", "timeout", "dynamic"]


@dataclass(frozen=True, slots=True)
class Counter:
    """A named counter object; packets and bytes are its starting values (a re-created
    table keeps a counter's count only when the values are written back)."""

    name: str
    packets: int = 0
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class Set:
    """A named set: `type` is one data type or a concatenation of several."""

    name: str
    type: tuple[DataType, ...]
    flags: tuple[SetFlag, ...] = ()
    elements: tuple[Element, ...] = ()
    timeout: int | None = None  # seconds an element lives (flags timeout); None: forever


@dataclass(frozen=True, slots=True)
class Map:
    """A named verdict map (`type KEY : verdict`): a lookup that ends in a verdict."""

    name: str
    type: tuple[DataType, ...]
    elements: tuple[tuple[Element, Verdict], ...] = ()
    flags: tuple[SetFlag, ...] = ()


@dataclass(frozen=True, slots=True)
class Hook:
    """What makes a chain a base chain: attached to a netfilter hook at a priority (a
    number or a standard name: `filter`, `dstnat`, `srcnat`, ...)."""

    type: ChainType
    hook: HookName
    priority: int | str
    policy: Literal["accept", "drop"] | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """Matches (all must hold), then an optional named counter, then statements (mark,
    set update), then a verdict (None: evaluation goes on with the next rule)."""

    matches: tuple[Match, ...] = ()
    counter: str | None = None
    verdict: Verdict | None = None
    statements: tuple[Statement, ...] = ()


@dataclass(frozen=True, slots=True)
class Chain:
    name: str
    rules: tuple[Rule, ...] = ()
    hook: Hook | None = None  # None: a regular chain, reached by jump or goto only


@dataclass(frozen=True, slots=True)
class Table:
    family: Family
    name: str
    counters: tuple[Counter, ...] = ()
    sets: tuple[Set, ...] = ()
    maps: tuple[Map, ...] = ()
    chains: tuple[Chain, ...] = ()

    @property
    def rule_count(self) -> int:
        """Rules in every chain (a base chain's hook declaration is not a rule)."""
        return sum(map(len, map(_RULES, self.chains)))  # C-level: 20,000 chains a sync

    def with_counter_values(self, values: Mapping[str, tuple[int, int]]) -> Table:
        """This table with each counter that `values` names starting at (packets, bytes)."""
        if not values:
            return self
        counters = tuple(
            Counter(c.name, *values[c.name]) if c.name in values else c for c in self.counters
        )
        return dataclasses.replace(self, counters=counters)


_RULES = attrgetter("rules")
