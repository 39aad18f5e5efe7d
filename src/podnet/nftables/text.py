"""The one place that writes nft syntax: a Table (podnet.nftables.model) -> `nft -f` text.

`replace(table)` is the whole transaction the datapath applies:

    table inet NAME            create it if missing, so that the delete cannot fail
    delete table inet NAME     drop the old contents (counters, sets, chains) ...
    table inet NAME { ... }    ... and declare the new, all in one atomic transaction

No packet sees a half-built ruleset: `nft -f` commits the three together or nothing.

`update(old, new)` is the transaction of an incremental sync, when the kernel holds `old`:
only what differs, in an order in which every reference is valid at each step:

    add    counters, sets, chains (with their rules) that `new` has and `old` has not
    change set and map elements (delete the old element, add the new: one transaction)
    delete chains, then sets, then counters that `old` has and `new` has not

Counters that both hold are not touched, so they keep counting (a replace has to write
their values back); a chain or set is named after its content (render/kernel_names), so a
changed one is a new name and the old one goes. Anything `update` cannot express (a set's
type, a base chain's hook) answers None: replace the table.

The shape of each command decides how much nft 1.0.6 reads from the kernel before it
applies the batch (src/cache.c, evaluate_cache_add/del): `add rule`, `add element`, a
`table { }` block and every `delete` make it dump every chain, set and object of every
table in the namespace (30 ms of nft's CPU at 10,000 Services), while `add chain`, `add
set`, `add map`, `add counter` and `flush chain` fetch the tables alone. So what `update`
adds is written in the second kind where nft allows it: a new or changed regular chain as
`add chain T C { rule; rule; }` (a changed one flushed first), new elements as `add map T
M { type ...; elements = { ... } }` (re-declaring an existing map or set with the same
type adds the elements, as `add element` does). Not for a chain whose rules name a set
that this batch does not declare (nft resolves `@set` in its cache: "No such file or
directory"), nor a base chain, nor an interval set (nft merges intervals with the
elements it reads first): those keep the first kind. A batch of one Service added or one
endpoint changed then costs nft ~10 ms of CPU at 10,000 Services instead of ~30 ms
(docs/services.md, the figures).

The difference is structural: objects are keyed by name and compared as values (identity
first: an unchanged Service's chains are the same objects in both tables), elements keyed
by their key as values, and only what differs is written as text. Comparing rendered text
cost 150-290 ms for one Service added at 10,000 (every map element rendered twice); keyed
values cost a dict per map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address
from itertools import compress
from socket import inet_ntoa
from typing import TypeVar, assert_never, cast

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
    Statement,
    TcpNoSyn,
    Value,
    Verdict,
    VMap,
)
from podnet.nftables.model import Chain, Counter, Hook, Map, Rule, Set, Table


def replace(table: Table) -> str:
    """The `nft -f` input that replaces `table` whole, atomically."""
    head = f"{table.family} {table.name}"
    return f"table {head}\ndelete table {head}\n" + declare(table)


def kept_elements(table: Table, kept: Mapping[str, Sequence[tuple[str, int]]]) -> str:
    """`add element` commands that put back, after `replace(table)` in the same
    transaction, what the kernel's dynamic sets held: each (address, seconds left) of a
    set that `table` declares dynamic (ClientIP affinity: a client keeps its endpoint
    across a full sync), its expiry capped by the set's timeout."""
    head = f"{table.family} {table.name}"
    out = []
    for s in table.sets:
        entries = kept.get(s.name) if "dynamic" in s.flags else None
        if not entries:
            continue
        cap = s.timeout if s.timeout is not None else None
        listed = ", ".join(
            f"{addr} expires {max(1, min(left, cap) if cap else left)}s" for addr, left in entries
        )
        out.append(f"add element {head} {s.name} {{ {listed} }}\n")
    return "".join(out)


def update(old: Table, new: Table) -> str | None:
    """The `nft -f` input that turns `old` (what the kernel holds) into `new` in one atomic
    transaction, touching only what differs; "" when nothing does; None when only a
    replace can do it."""
    if (old.family, old.name) != (new.family, new.name):
        return None
    head = f"{new.family} {new.name}"
    # (stage, command): the order in which every reference is valid at each step.
    out: list[tuple[int, str]] = []
    declared: set[str] = set()  # the sets and maps this batch declares (nft's cache has them)
    old_counters = set(map(_name, old.counters))
    new_counters = set(map(_name, new.counters))
    out += [
        (_COUNTERS, f"add counter {head} {c.name}")
        for c in new.counters
        if c.name not in old_counters
    ]
    kinds: tuple[tuple[str, Sequence[Set | Map], Sequence[Set | Map]], ...] = (
        ("set", old.sets, new.sets),
        ("map", old.maps, new.maps),
    )
    for kind, before, after in kinds:
        went, came = _unshared(before, after)
        was = {x.name: x for x in went}
        for x in came:
            prior = was.pop(x.name, None)
            if prior is None:
                # A new set has no elements in the kernel to merge with: `add set` also
                # for an interval set.
                out.append((_SETS, f"add {kind} {head} {_declaration(x, x.elements)}"))
                declared.add(x.name)
                continue
            if prior == x:
                continue
            if (prior.type, prior.flags, _timeout(prior)) != (x.type, x.flags, _timeout(x)):
                return None
            gone, came_e = _changed_elements(*_unshared_elements(prior, x))
            if gone:
                out.append((_UNLINKS, f"delete element {head} {x.name} {{ {', '.join(gone)} }}"))
            if not came_e:
                continue
            if isinstance(x, Set) and "interval" in x.flags:
                out.append((_ELEMENTS, f"add element {head} {x.name} {{ {', '.join(came_e)} }}"))
            else:
                out.append((_ELEMENTS, f"add {kind} {head} {_declaration(x, came_e)}"))
        if kind == "map" and was:
            return None  # the base chain refers to the maps: podnet's maps never go
        out += [(_DELETES + 1, f"delete {kind} {head} {n}") for n in was]
    went_chains, came_chains = _unshared(old.chains, new.chains)
    was_chain = {c.name: c for c in went_chains}
    for c in came_chains:
        prior_c = was_chain.pop(c.name, None)
        if prior_c is not None and prior_c == c:
            continue
        if prior_c is not None and prior_c.hook != c.hook:
            return None
        if prior_c is not None:
            out.append((_CHAINS, f"flush chain {head} {c.name}"))
        if c.hook is None and _named_sets(c) <= declared:
            body = "".join(f" {rule(r)};" for r in c.rules)
            out.append((_CHAINS, f"add chain {head} {c.name} {{{body} }}"))
        elif prior_c is None:
            out.append((_CHAINS, f"table {head} {{\n{_chain(c)}\n}}"))
        else:
            out += [(_CHAINS, f"add rule {head} {c.name} {rule(r)}") for r in c.rules]
    # Deletes in reverse order of reference: chains (they use sets and counters) first.
    out += [(_DELETES, f"delete chain {head} {n}") for n in _referrers_first(was_chain)]
    out += [
        (_DELETES + 2, f"delete counter {head} {n}") for n in sorted(old_counters - new_counters)
    ]
    out.sort(key=_stage)  # stable: each stage keeps its order
    return "".join(f"{cmd}\n" for _, cmd in out)


# The stages of an update: element deletes first (a changed element is deleted, then
# added with its new verdict); counters and sets before the chains that name them; chains
# (a changed one flushed first) before the map elements that jump to them; then what goes.
_UNLINKS, _COUNTERS, _SETS, _CHAINS, _ELEMENTS, _DELETES = range(6)


def _stage(item: tuple[int, str]) -> int:
    return item[0]


def _referrers_first(chains: dict[str, Chain]) -> list[str]:
    """The names of `chains` (all going) in an order in which none is deleted while
    another of them still jumps to it (the kernel refuses: EBUSY), e.g. a Service's chain
    before the endpoint chains it goes to."""
    targets = {n: _jumps(c) & chains.keys() for n, c in chains.items()}
    out: list[str] = []
    left = dict(targets)
    while left:
        referenced = set().union(*left.values())
        free = [n for n in left if n not in referenced] or list(left)  # a loop: any order
        for n in free:
            out.append(n)
            del left[n]
    return out


def _jumps(c: Chain) -> set[str]:
    return {r.verdict.chain for r in c.rules if isinstance(r.verdict, Goto | Jump)}


def _declaration(x: Set | Map, elements: Sequence[object]) -> str:
    """`NAME { type ...; flags ...; timeout ...; elements = { ... } }` of an `add set` or
    `add map` (its elements: rendered ones, or the model's)."""
    typ = " . ".join(x.type) + (" : verdict" if isinstance(x, Map) else "")
    parts = [f"type {typ};"]
    if x.flags:
        parts.append(f"flags {','.join(x.flags)};")
    if _timeout(x) is not None:
        parts.append(f"timeout {_timeout(x)}s;")
    if elements:
        listed = [e if isinstance(e, str) else _element_text(x, e) for e in elements]
        parts.append(f"elements = {{ {', '.join(listed)} }}")
    return f"{x.name} {{ {' '.join(parts)} }}"


def _element_text(x: Set | Map, e: object) -> str:
    if isinstance(x, Map):
        k, v = cast(tuple[Element, Verdict], e)
        return f"{element(k)} : {verdict(v)}"
    return element(cast(Element, e))


def _named_sets(c: Chain) -> set[str]:
    """The sets and maps that the rules of `c` look up or update by name."""
    out: set[str] = set()
    for r in c.rules:
        out.update(m.set for m in r.matches if isinstance(m, InSet))
        out.update(s.set for s in r.statements if isinstance(s, SetUpdate))
        if isinstance(r.verdict, VMap):
            out.add(r.verdict.map)
    return out


_T = TypeVar("_T")


def _unshared(before: Sequence[_T], after: Sequence[_T]) -> tuple[list[_T], list[_T]]:
    """The objects only `before` holds and those only `after` holds, by identity, each in
    its order. An object both hold is unchanged: a renderer that caches per Service hands
    the same chain, set and element objects to the next table, so for one Service changed
    among 10,000 this costs a few C-level passes (ids, set differences, compress) and no
    comparison of values; those that differ by identity are then keyed and compared by
    value. Keying every chain and element by value in Python cost ~40 ms there; sets of
    ids built from lists and positions looked up in a dict, ~10 ms; these passes, ~3 ms.
    Each name (chain, set) and each element is held once per table (the kernel's rule)."""
    old_ids = set(map(id, before))
    new_ids = set(map(id, after))
    went = old_ids - new_ids
    came = new_ids - old_ids
    return _picked(before, went), _picked(after, came)


def _picked(xs: Sequence[_T], ids: set[int]) -> list[_T]:
    if not ids:
        return []
    return list(compress(xs, map(ids.__contains__, map(id, xs))))


def _name(x: Counter) -> str:
    return x.name


def _changed_elements(
    before: dict[Element, Verdict | None],
    after: dict[Element, Verdict | None],
) -> tuple[list[str], list[str]]:
    """The elements to delete (what went or changed), then those to add (what came or
    changed), rendered (a map element's verdict cannot be changed in place: the kernel
    refuses an add whose key exists with other data). Elements are keyed by their key (a
    map's value: its verdict; a set's: None), compared as values; only those that differ
    are rendered."""
    gone = [element(k) for k, v in before.items() if k not in after or after[k] != v]
    came = [
        element(k) if v is None else f"{element(k)} : {verdict(v)}"
        for k, v in after.items()
        if k not in before or before[k] != v
    ]
    return gone, came


def _unshared_elements(
    before: Set | Map, after: Set | Map
) -> tuple[dict[Element, Verdict | None], dict[Element, Verdict | None]]:
    """The elements only one of the two holds (by identity, see `_unshared`), keyed by
    value: a set's to None, a map's to its verdict."""
    if isinstance(before, Set) and isinstance(after, Set):
        went_s, came_s = _unshared(before.elements, after.elements)
        return dict.fromkeys(went_s), dict.fromkeys(came_s)
    if isinstance(before, Map) and isinstance(after, Map):
        went_m, came_m = _unshared(before.elements, after.elements)
        return dict(went_m), dict(came_m)
    raise TypeError(f"{before.name}: a set and a map")


def _timeout(x: Set | Map) -> int | None:
    return x.timeout if isinstance(x, Set) else None


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
    if s.timeout is not None:
        out.append(f"\t\ttimeout {s.timeout}s")
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
    parts += [statement(s) for s in r.statements]
    if r.verdict is not None:
        parts.append(verdict(r.verdict))
    return " ".join(parts)


def _key(key: tuple[Field, ...]) -> str:
    return " . ".join(f.value for f in key)


def match(m: Match) -> str:
    if isinstance(m, Numgen):
        return f"numgen random mod {m.mod} == {m.value}"
    if isinstance(m, TcpNoSyn):
        return "tcp flags & syn == 0"
    if isinstance(m, Proto):
        return f"meta l4proto {m.name}"
    if isinstance(m, InSet):
        return f"{_key(m.key)} @{m.set}"
    if isinstance(m, DPort):
        return f"th dport {m.lo}" if m.hi is None else f"th dport {m.lo}-{m.hi}"
    if isinstance(m, CtState):
        return f"ct state {','.join(m.states)}"
    if isinstance(m, Addr):
        return f"{m.field.value} {'!= ' if m.negate else ''}{m.net}"
    if isinstance(m, Fib):
        return f"fib {m.which} type local"
    if isinstance(m, FibBackOut):
        return "fib daddr . iif oif exists"
    if isinstance(m, CtDnat):
        return "ct status dnat"
    if isinstance(m, MarkBit):
        return f"meta mark & {m.bit:#x} {'!=' if m.present else '=='} 0"
    assert_never(m)


def statement(s: Statement) -> str:
    if isinstance(s, MarkSet):
        return f"meta mark set meta mark {'^' if s.clear else '|'} {s.bit:#x}"
    if isinstance(s, SetUpdate):
        return f"update @{s.set} {{ {_key(s.key)} }}"
    if isinstance(s, Log):
        return f'log prefix "{s.prefix}" group {s.group}'
    assert_never(s)


def verdict(v: Verdict) -> str:
    # The most frequent first (a full sync of 10,000 Services renders 30,000 of them).
    if isinstance(v, Goto):
        return f"goto {v.chain}"
    if isinstance(v, Dnat):
        return f"dnat ip to {_value(v.addr)}:{v.port}"
    if isinstance(v, Jump):
        return f"jump {v.chain}"
    if isinstance(v, Accept):
        return "accept"
    if isinstance(v, Return):
        return "return"
    if isinstance(v, Masquerade):
        return "masquerade fully-random"
    if isinstance(v, Reject):
        return "reject with tcp reset" if v.code == "tcp-reset" else f"reject with icmpx {v.code}"
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
    if isinstance(v, IPv4Address):
        return inet_ntoa(v.packed)  # the same text as str(v), at half the cost
    return str(v) if isinstance(v, int) else v
