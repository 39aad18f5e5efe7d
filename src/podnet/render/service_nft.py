"""Services as nftables rules, modelled on kube-proxy's nftables mode (KEP-3866), in the
same table `inet podnet_<cluster>` as the policy rules (docs/services.md has the diagram).

    nat-prerouting (nat, dstnat) ─┐
    nat-output     (nat, dstnat) ─┴─► services
        ip daddr . meta l4proto . th dport vmap @service-ips      ClusterIP, LB, externalIPs
        fib daddr type local meta l4proto . th dport vmap @service-nodeports
    svc-<h>-ns/name/proto/port   numgen random mod N == 0 meta l4proto P dnat ip to <e0>
                                 numgen random mod N-1 == 0 ... dnat ip to <e1> ...
                                 meta l4proto P dnat ip to <last>
                                 (ClientIP affinity: ip saddr @aff-<e> goto ep-<e>, then the
                                 same choice with goto ep-<e> instead of the dnat)
    svl-<h>-...                  the same over this node's endpoints (Local policies)
    ext-<h>-...                  external traffic: mark for masquerade (Cluster), or keep the
                                 client's address and use local endpoints (Local)
    ep-<h>-...__ip/port          (affinity only) update @aff-<e>; dnat ip to ip:port
    nat-postrouting (nat, srcnat) ─► masquerading: meta mark & 0x4000 -> masquerade
    filter-input|forward|output (filter, -110, before the policy's forward at 0):
        ct state new: ip daddr . proto . port vmap @no-endpoint-services  -> reject
                      (input) fib daddr local . proto . port @no-endpoint-nodeports
                      (forward) ct status dnat fib daddr . iif oif exists -> mark (hairpin)

One chain per Service port (svc-, plus svl-/ext- where a policy needs them), not one per
endpoint as well: nft 1.0.6 loads and caches chains slowly (30,000 chains for 10,000
Services x 2 endpoints took 1.9 s to load, and every incremental `nft -f` fetches every
chain first: ~160 ms), so endpoints are DNAT rules in the Service's chain and hairpin is
one static rule on forward; an endpoint chain remains only where ClientIP affinity needs
one per endpoint (its set update).

Everything that changes is per Service port (its chains, its affinity sets, its map
elements, named by identity): `ServiceRules` keeps them as separate values, so that an
incremental update of the table changes only the objects of the Service that changed.
The pieces of a port that does not depend on the node (no Local policy) are built once per
value and shared by every node (`_shared_pieces` caches them by ServicePort value).

Pure: the reconciler merges the result into each node's table (`merge`), one transaction.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network
from itertools import compress
from operator import attrgetter, itemgetter
from typing import TypeVar

from podnet.nftables import text
from podnet.nftables.expr import (
    DROP,
    Addr,
    CtDnat,
    CtState,
    Dnat,
    Element,
    Fib,
    FibBackOut,
    Field,
    Goto,
    InSet,
    Jump,
    MarkBit,
    MarkSet,
    Masquerade,
    Numgen,
    Proto,
    Reject,
    Return,
    SetUpdate,
    Verdict,
    VMap,
)
from podnet.nftables.model import Chain, DataType, Family, Hook, Map, Rule, Set, Table
from podnet.render import kernel_names as names
from podnet.render.service_ports import (
    Endpoint,
    PortDelta,
    ServicePort,
    local_endpoints,
    usable,
)
from podnet.state.network import CLUSTER_CIDR, SERVICE_CIDR

MapElement = tuple[Element, Verdict]
TUPLE3 = (Field.IP_DADDR, Field.L4PROTO, Field.TH_DPORT)
TUPLE2 = (Field.L4PROTO, Field.TH_DPORT)
# kube-proxy's priorities: the endpoint checks run before DNAT on output (-100) and before
# any filter chain of the policies (0), so a port without endpoints is refused at once.
FILTER_PRIORITY = -110
# Numbers, not nft's names: nft 1.0.6 knows `dstnat` on prerouting only, not on output.
DSTNAT, SRCNAT = -100, 100
REJECT_TO = Goto(names.REJECT_CHAIN)


@dataclass(frozen=True, slots=True)
class Pieces:
    """One Service port's share of a node's table."""

    chains: tuple[Chain, ...] = ()
    sets: tuple[Set, ...] = ()
    service_ips: tuple[MapElement, ...] = ()
    nodeports: tuple[MapElement, ...] = ()
    no_endpoint_ips: tuple[MapElement, ...] = ()
    no_endpoint_nodeports: tuple[MapElement, ...] = ()

    def objects(self) -> tuple[object, ...]:
        """What the port puts into a node's table: its chains, sets and map elements (a
        table patched by `merge_delta` holds these very objects)."""
        return (
            *self.chains,
            *self.sets,
            *self.service_ips,
            *self.nodeports,
            *self.no_endpoint_ips,
            *self.no_endpoint_nodeports,
        )


@dataclass(frozen=True, slots=True)
class ServiceRules:
    """A node's Service rules: per Service port, its pieces (identity -> Pieces); the
    ranges the static chains name."""

    ports: tuple[tuple[str, Pieces], ...]
    cluster_cidr: IPv4Network = CLUSTER_CIDR
    service_cidr: IPv4Network = SERVICE_CIDR

    def __bool__(self) -> bool:
        return bool(self.ports)


def render_node(
    ports: Iterable[ServicePort],
    node: str,
    cluster_cidr: IPv4Network,
    service_cidr: IPv4Network = SERVICE_CIDR,
) -> ServiceRules:
    """The Service rules of one node (ports from render.service_ports.service_ports)."""
    ports = tuple(ports)
    pieces = _shared_pieces(cluster_cidr).pieces(ports, node)
    out = tuple(zip(map(_IDENTITY, ports), pieces, strict=True))
    return ServiceRules(out, cluster_cidr, service_cidr)


_IDENTITY = attrgetter("identity")
_PIECES = itemgetter(1)


@dataclass(frozen=True, slots=True)
class RulesDelta:
    """How a node's ServiceRules differ from the `base` they were derived from: the
    pieces of the Service ports that went (as they were) and came (as they are). The
    applier writes the difference from these alone (`difference`), and the node's table
    is patched with them (`merge_delta`): no pass over the unchanged ports."""

    base: ServiceRules
    went: tuple[Pieces, ...]
    came: tuple[Pieces, ...]


def render_all(
    ports: tuple[ServicePort, ...],
    nodes: Iterable[str],
    cluster_cidr: IPv4Network,
    service_cidr: IPv4Network,
) -> dict[str, ServiceRules]:
    """Every node's Service rules, every port rendered (or found in the shared cache)."""
    return {n: render_node(ports, n, cluster_cidr, service_cidr) for n in nodes}


def render_changes(
    ports: tuple[ServicePort, ...],
    nodes: Iterable[str],
    cluster_cidr: IPv4Network,
    service_cidr: IPv4Network,
    like: Mapping[str, ServiceRules] | None = None,
    delta: PortDelta | None = None,
) -> tuple[dict[str, ServiceRules], dict[str, RulesDelta]]:
    """Every node's Service rules, as render_all. With `like` (the rules of `delta.base`, rendered by the
    last call) and `delta` (service_ports.PortCache.delta: what changed since), a node's
    rules are `like`'s with the changed ports' pieces taken out and put in, and the second
    value says so per node; without them (or another CIDR), everything is rendered."""
    nodes = tuple(nodes)
    partial = (
        like is not None
        and delta is not None
        and len(delta.went) + len(delta.came) <= MAX_PARTIAL
        and all(
            (r := like.get(n)) is not None
            and (r.cluster_cidr, r.service_cidr) == (cluster_cidr, service_cidr)
            for n in nodes
        )
    )
    if not partial or like is None or delta is None:
        return render_all(ports, nodes, cluster_cidr, service_cidr), {}
    out: dict[str, ServiceRules] = {}
    deltas: dict[str, RulesDelta] = {}
    went_ids = frozenset(map(_IDENTITY, delta.went))
    shared = {id(sp): _node_pieces(sp, None, cluster_cidr) for sp in delta.came if not sp.per_node}
    for n in nodes:
        base = like[n]
        came = tuple(
            (sp.identity, shared.get(id(sp)) or _node_pieces(sp, n, cluster_cidr))
            for sp in delta.came
        )
        if not went_ids and not came:
            out[n] = base
            continue
        kept, gone = base.ports, ()
        if went_ids:
            keep = [True] * len(kept)
            for i in _positions(base, went_ids):
                keep[i] = False
            gone = tuple(map(_PIECES, compress(kept, map(operator.not_, keep))))
            kept = tuple(compress(kept, keep))
        # In the order of `ports`, as render_all gives it (kept ports keep their relative
        # order; each came port goes where the new answer has it: a C-level index each).
        listed = list(kept)
        for at, entry in sorted(
            zip(map(ports.index, delta.came), came, strict=True), key=itemgetter(0)
        ):
            listed.insert(at, entry)
        rules = ServiceRules(tuple(listed), cluster_cidr, service_cidr)
        out[n] = rules
        if base and rules:
            deltas[n] = RulesDelta(base, gone, tuple(map(_PIECES, came)))
        # else the first port came or the last went: the static chains and maps come or go
        # with them (merge), which a patch of the ports' pieces cannot say.
    return out, deltas


# Beyond this many changed ports, rendering every node's rules is as cheap.
MAX_PARTIAL = 512


def _positions(rules: ServiceRules, identities: frozenset[str]) -> list[int]:
    """Where in `rules.ports` the given identities are (a C-level pass over the names)."""
    names_ = map(itemgetter(0), rules.ports)
    return list(compress(itertools.count(), map(identities.__contains__, names_)))


class _Shared:
    """The pieces of the ports without a Local policy (the same on every node), by the
    port object's id: the reconciler keeps an unchanged Service's ServicePort objects
    (service_ports.PortCache), so a sync finds them with C-level dict and set operations
    over the ids, and builds pieces for the new ports only. Looking each port up by value
    (an lru_cache: a Python-level hash call and a frame per port) cost 15-20 ms of CPU
    per sync at 10,000 Services. The cache holds each port object it has pieces for, so
    an id in it is never reused by another object; ports absent from the latest call are
    forgotten. A port equal in value but another object is rendered again: equal pieces,
    which nftables.text.update compares by value and leaves alone."""

    def __init__(self, cluster_cidr: IPv4Network) -> None:
        self.cidr = cluster_cidr
        self.by_id: dict[int, Pieces] = {}
        self.owner: dict[int, ServicePort] = {}

    def pieces(self, ports: tuple[ServicePort, ...], node: str) -> list[Pieces]:
        ids = list(map(id, ports))
        new = set(ids).difference(self.by_id)
        lookup = self.by_id
        if new:
            by_id = dict(zip(ids, ports, strict=True))
            mine: dict[int, Pieces] = {}
            for i in new:
                sp = by_id[i]
                if sp.per_node:  # a Local policy: this node's own pieces, never shared
                    mine[i] = _node_pieces(sp, node, self.cidr)
                else:
                    self.by_id[i] = _node_pieces(sp, None, self.cidr)
                    self.owner[i] = sp
            for gone in self.by_id.keys() - by_id.keys():
                del self.by_id[gone], self.owner[gone]
            lookup = {**self.by_id, **mine} if mine else self.by_id
        return list(map(lookup.__getitem__, ids))


@functools.lru_cache(maxsize=16)
def _shared_pieces(cluster_cidr: IPv4Network) -> _Shared:
    """One cache per cluster CIDR (the pieces name it)."""
    return _Shared(cluster_cidr)


def _node_pieces(sp: ServicePort, node: str | None, cidr: IPv4Network) -> Pieces:
    """`node` None: the port has no Local policy, its pieces are the same on every node."""
    ident = sp.identity
    cluster_eps = usable(sp.endpoints)
    local_eps = local_endpoints(sp, node) if node is not None else ()
    svc = names.service_object(names.SERVICE_CHAIN, ident)
    # Only the names a port uses are hashed (10,000 Services: a third of a cold render).
    svl = names.service_object(names.LOCAL_CHAIN, ident) if node is not None else ""
    chains: list[Chain] = []
    sets: list[Set] = []
    every = tuple(dict.fromkeys((*cluster_eps, *local_eps))) if local_eps else cluster_eps
    if sp.affinity is not None:
        for ep in every:
            chain, affinity = _endpoint(sp, ep, sp.affinity)
            chains.append(chain)
            sets.append(affinity)
    if not cluster_eps:
        # "no endpoints": refused at once (ICMP port unreachable -> ECONNREFUSED).
        addrs = [sp.cluster_ip, *sp.external_ips] if sp.cluster_ip else list(sp.external_ips)
        nep = tuple(((a, sp.protocol, sp.port), REJECT_TO) for a in addrs)
        nnp = ((sp.protocol, sp.node_port), REJECT_TO) if sp.node_port else None
        return Pieces(no_endpoint_ips=nep, no_endpoint_nodeports=(nnp,) if nnp else ())
    chains.append(Chain(svc, _choose(sp, cluster_eps)))
    needs_local = node is not None
    if needs_local:
        # "Local": only this node's endpoints; none here -> dropped (the Service is not
        # broken, it has no endpoint on this node), as kube-proxy does.
        body = _choose(sp, local_eps) if local_eps else (Rule(verdict=DROP),)
        chains.append(Chain(svl, body))
    service_ips: list[MapElement] = []
    if sp.cluster_ip is not None:
        target = svl if sp.internal_local else svc
        service_ips.append(((sp.cluster_ip, sp.protocol, sp.port), Goto(target)))
    has_external = bool(sp.external_ips) or sp.node_port is not None
    ext = names.service_object(names.EXTERNAL_CHAIN, ident) if has_external else ""
    if has_external:
        chains.append(Chain(ext, _external(sp, svc, svl, cidr)))
        service_ips += [((a, sp.protocol, sp.port), Goto(ext)) for a in sp.external_ips]
    nodeports = (((sp.protocol, sp.node_port), Goto(ext)),) if sp.node_port else ()
    return Pieces(
        chains=tuple(chains),
        sets=tuple(sets),
        service_ips=tuple(service_ips),
        nodeports=nodeports,
    )


def _external(sp: ServicePort, svc: str, svl: str, cidr: IPv4Network) -> tuple[Rule, ...]:
    mark = Jump(names.MARK_MASQ_CHAIN)
    if not sp.external_local:
        # externalTrafficPolicy Cluster: any node, any endpoint; the client's address is
        # replaced by the node's so that the reply comes back through this node.
        return (Rule(verdict=mark), Rule(verdict=Goto(svc)))
    # Local: the client's address is kept (no masquerade), so only this node's endpoints
    # can answer. Pods and the node itself are not external clients: they use every
    # endpoint (kube-proxy's short-circuit), the node's own traffic masqueraded.
    return (
        Rule((Addr(Field.IP_SADDR, cidr),), verdict=Goto(svc)),
        Rule((Fib("saddr"),), verdict=mark),
        Rule((Fib("saddr"),), verdict=Goto(svc)),
        Rule(verdict=Goto(svl)),
    )


def _choose(sp: ServicePort, eps: tuple[Endpoint, ...]) -> tuple[Rule, ...]:
    """One endpoint at random: rule i of n goes to endpoint i with probability 1/(n-i), so
    each is chosen with probability 1/n (expr.Numgen says why not a vmap). Without
    affinity the rule DNATs itself (`meta l4proto` gives nft the transport header the
    port needs); with it, affinity first (a client seen before goes to the same endpoint
    until its entry times out), and each choice goes to the endpoint's chain, which
    records the client."""
    rules: list[Rule] = []
    proto: tuple[Proto, ...] = ()
    targets: list[Verdict]
    if sp.affinity is not None:
        chains = [_endpoint_name(sp, e) for e in eps]
        rules += [
            Rule((InSet((Field.IP_SADDR,), _affinity_name(c)),), verdict=Goto(c)) for c in chains
        ]
        targets = [Goto(c) for c in chains]
    else:
        proto = (Proto(sp.protocol),)
        targets = [Dnat(e.ip, e.port) for e in eps]
    n = len(targets)
    rules += [Rule((Numgen(n - i), *proto), verdict=t) for i, t in enumerate(targets[:-1])]
    rules.append(Rule(proto, verdict=targets[-1]))
    return tuple(rules)


def _affinity_name(endpoint_chain: str) -> str:
    return names.service_object(names.AFFINITY_SET, endpoint_chain)


def _endpoint_name(sp: ServicePort, ep: Endpoint) -> str:
    return names.service_object(names.ENDPOINT_CHAIN, f"{sp.identity}__{ep.ip}/{ep.port}")


def _endpoint(sp: ServicePort, ep: Endpoint, timeout: int) -> tuple[Chain, Set]:
    """ClientIP affinity: the endpoint's chain records the client in its set, then DNATs."""
    name = _endpoint_name(sp, ep)
    aff = _affinity_name(name)
    affinity = Set(aff, ("ipv4_addr",), ("dynamic", "timeout"), timeout=timeout)
    dnat = Rule(
        (Proto(sp.protocol),),
        statements=(SetUpdate(aff, (Field.IP_SADDR,)),),
        verdict=Dnat(ep.ip, ep.port),
    )
    return Chain(name, (dnat,)), affinity


# ---- the table ------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _static_chains(cluster_cidr: IPv4Network, service_cidr: IPv4Network) -> tuple[Chain, ...]:
    jump = Jump
    new = CtState(("new",))
    return (
        Chain(
            names.NAT_PREROUTING_CHAIN,
            (Rule(verdict=jump(names.SERVICES_CHAIN)),),
            Hook("nat", "prerouting", DSTNAT),
        ),
        Chain(
            names.NAT_OUTPUT_CHAIN,
            (Rule(verdict=jump(names.SERVICES_CHAIN)),),
            Hook("nat", "output", DSTNAT),
        ),
        Chain(
            names.NAT_POSTROUTING_CHAIN,
            (Rule(verdict=jump(names.MASQUERADING_CHAIN)),),
            Hook("nat", "postrouting", SRCNAT),
        ),
        Chain(
            names.SERVICES_CHAIN,
            (
                # ClusterIP traffic from outside the pod network (the node itself, a
                # host-network pod) is masqueraded, as kube-proxy does with --cluster-cidr:
                # one rule here rather than one per Service (10,000 rules fewer to load).
                Rule(
                    (Addr(Field.IP_DADDR, service_cidr), Addr(Field.IP_SADDR, cluster_cidr, True)),
                    verdict=jump(names.MARK_MASQ_CHAIN),
                ),
                Rule(verdict=VMap(TUPLE3, names.SERVICE_IPS_MAP)),
                Rule((Fib("daddr"),), verdict=VMap(TUPLE2, names.SERVICE_NODEPORTS_MAP)),
            ),
        ),
        Chain(
            names.MASQUERADING_CHAIN,
            (
                Rule((MarkBit(names.MASQ_BIT, present=False),), verdict=Return()),
                Rule(statements=(MarkSet(names.MASQ_BIT, clear=True),), verdict=Masquerade()),
            ),
        ),
        Chain(names.MARK_MASQ_CHAIN, (Rule(statements=(MarkSet(names.MASQ_BIT),)),)),
        Chain(
            names.FILTER_INPUT_CHAIN,
            (
                Rule((new,), verdict=jump(names.NODEPORT_CHECK_CHAIN)),
                Rule((new,), verdict=jump(names.SERVICE_CHECK_CHAIN)),
            ),
            Hook("filter", "input", FILTER_PRIORITY),
        ),
        Chain(
            names.FILTER_FORWARD_CHAIN,
            (
                Rule((new,), verdict=jump(names.SERVICE_CHECK_CHAIN)),
                # Hairpin: a pod reaching itself through a Service would get its own reply
                # from its own address and drop it (it knows the connection as one to the
                # virtual address); masquerading makes the reply come back through the
                # node, which un-NATs it. A DNATed packet routed back out of the link it
                # came in by is that pod: one static rule, where kube-proxy has one per
                # endpoint (nft 1.0.6 pays for every rule and chain at each load).
                Rule((new, CtDnat(), FibBackOut()), verdict=jump(names.MARK_MASQ_CHAIN)),
            ),
            Hook("filter", "forward", FILTER_PRIORITY),
        ),
        Chain(
            names.FILTER_OUTPUT_CHAIN,
            (Rule((new,), verdict=jump(names.SERVICE_CHECK_CHAIN)),),
            Hook("filter", "output", FILTER_PRIORITY),
        ),
        Chain(
            names.SERVICE_CHECK_CHAIN,
            (Rule(verdict=VMap(TUPLE3, names.NO_ENDPOINT_SERVICES_MAP)),),
        ),
        Chain(
            names.NODEPORT_CHECK_CHAIN,
            (Rule((Fib("daddr"),), verdict=VMap(TUPLE2, names.NO_ENDPOINT_NODEPORTS_MAP)),),
        ),
        Chain(names.REJECT_CHAIN, (Rule(verdict=Reject("port-unreachable")),)),
    )


_T3: tuple[DataType, ...] = ("ipv4_addr", "inet_proto", "inet_service")
_T2: tuple[DataType, ...] = ("inet_proto", "inet_service")
_MAPS = (  # each map and the Pieces field that holds its elements
    (names.SERVICE_IPS_MAP, _T3, "service_ips"),
    (names.SERVICE_NODEPORTS_MAP, _T2, "nodeports"),
    (names.NO_ENDPOINT_SERVICES_MAP, _T3, "no_endpoint_ips"),
    (names.NO_ENDPOINT_NODEPORTS_MAP, _T2, "no_endpoint_nodeports"),
)


def merge(table: Table, rules: ServiceRules | None) -> Table:
    """`table` (the policy rules of a node, or a table that already holds Service rules:
    those are replaced) with `rules` added. No Service port: no Service object at all, so
    that a cluster without Services pays no NAT hook (nor conntrack for it)."""
    base = policy_part(table)
    if not rules:
        return base
    # The pieces' own objects, gathered at C speed (10,000 Services: ~1 ms, where a loop
    # in Python took ~17 ms): nftables.text.update takes an object both tables hold for
    # unchanged, so an unchanged Service costs no hashing there either.
    pieces = list(map(_PIECES, rules.ports))
    maps = tuple(
        Map(name, kind, tuple(itertools.chain.from_iterable(map(attrgetter(field), pieces))))
        for name, kind, field in _MAPS
    )
    return Table(
        base.family,
        base.name,
        counters=base.counters,
        sets=(*base.sets, *itertools.chain.from_iterable(map(attrgetter("sets"), pieces))),
        maps=base.maps + maps,
        chains=(
            *base.chains,
            *_static_chains(rules.cluster_cidr, rules.service_cidr),
            *itertools.chain.from_iterable(map(attrgetter("chains"), pieces)),
        ),
    )


def merge_delta(table: Table, delta: RulesDelta) -> Table:
    """`table` (merged with `delta.base`: it holds the very objects of its pieces) with the
    pieces that went taken out and those that came added: what `merge` of the new rules
    gives, up to the order of the table's objects (the changed ports' last). C-level passes over the table's
    objects by identity, where `merge` walks every port's pieces."""
    went, came = delta.went, delta.came
    gone = {id(x) for p in went for x in p.objects()}

    def kept(xs: tuple[_X, ...]) -> tuple[_X, ...]:
        if not gone:
            return xs
        return tuple(compress(xs, map(operator.not_, map(gone.__contains__, map(id, xs)))))

    maps = tuple(
        Map(
            m.name,
            m.type,
            (*kept(m.elements), *(e for p in came for e in getattr(p, _FIELD[m.name]))),
            m.flags,
        )
        if m.name in _FIELD
        else m
        for m in table.maps
    )
    return Table(
        table.family,
        table.name,
        counters=table.counters,
        sets=(*kept(table.sets), *(x for p in came for x in p.sets)),
        maps=maps,
        chains=(*kept(table.chains), *(c for p in came for c in p.chains)),
    )


_X = TypeVar("_X")
_FIELD = {name: field for name, _, field in _MAPS}


def difference(delta: RulesDelta, family: Family, name: str) -> str | None:
    """The `nft -f` input that turns a table holding `delta.base`'s pieces into one
    holding the new rules' (nftables.text.update over the changed ports' objects alone:
    the same commands as over the whole tables, without walking them); None when only
    a replace can do it."""

    def part(pieces: tuple[Pieces, ...]) -> Table:
        return Table(
            family,
            name,
            sets=tuple(x for p in pieces for x in p.sets),
            maps=tuple(
                Map(m, kind, tuple(e for p in pieces for e in getattr(p, f)))
                for m, kind, f in _MAPS
            ),
            chains=tuple(c for p in pieces for c in p.chains),
        )

    return text.update(part(delta.went), part(delta.came))


def policy_part(table: Table) -> Table:
    """`table` without its Service objects."""
    keep = names.is_service_object
    if not any(keep(c.name) for c in table.chains):
        return table
    return Table(
        table.family,
        table.name,
        counters=table.counters,
        sets=tuple(s for s in table.sets if not keep(s.name)),
        maps=tuple(m for m in table.maps if not keep(m.name)),
        chains=tuple(c for c in table.chains if not keep(c.name)),
    )
