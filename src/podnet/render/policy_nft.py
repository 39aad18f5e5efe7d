"""NetworkPolicy as one nftables table per node, built from the policy engine as a value
(podnet.nftables; its text module writes the `nft -f` input; every name comes from
podnet.render.kernel_names).

Hook and chains (table `inet podnet_<cluster>` in each node's namespace; all pod traffic of
a node is routed through it, so the forward hook sees every pod packet the node carries):

    forward (filter, policy accept)
      ├─ ct state established,related accept        replies of allowed connections
      ├─ ct state invalid drop
      ├─ ip saddr vmap @egress-pods    -> jump eg-<h>   local sources isolated for egress
      └─ ip daddr vmap @ingress-pods   -> jump in-<h>   local destinations isolated for ingress

    eg-<h>: the pod to itself `return`s (hairpin, below); one rule per admitting policy
            rule; a match `return`s (so that the destination's ingress is still judged
            when both pods live on this node); else count and reject.
    in-<h>: the pod from itself `accept`s; likewise, a match `accept`s; else count and
            reject.

A pod's packet to its own address never leaves its namespace, except through a Service:
kube-proxy's DNAT picks the pod itself (hairpin) and the node masquerades the packet to its
own address after this chain. "Pods cannot block localhost access, nor access from their
resident node" (the NetworkPolicy concepts page), and the engine answers a pod to itself
"allowed": so the pod's own address passes its chains first.

Each isolated pod has its own chain (it carries the pod's drop counter; `<h>` hashes the
chain's rules as nftables.text renders them), with one rule per admitting policy rule: the
rules of a node grow with its own pods and their policies, not with the cluster. The cluster-wide part, the peer addresses,
lives in named sets shared by all chains. Blocked traffic is *rejected*, so a
denied probe fails immediately instead of waiting for a timeout: ICMP "administratively
prohibited" for every protocol (so "blocked" differs from "nothing listens", a TCP reset),
and the node's icmp_ratemask=0 keeps the kernel from throttling those errors.
Traffic of the node itself (host-network pods, kubelet) is in the input/output hooks and
never judged, as "traffic to and from the node where a Pod is running is always allowed".
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address

import numpy as np

from podnet.model.networkpolicy import NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort
from podnet.model.quarantine_label import is_quarantine
from podnet.nftables import text as nft_text
from podnet.nftables.expr import (
    ACCEPT,
    DROP,
    RETURN,
    Addr,
    CtState,
    DPort,
    Element,
    Field,
    InSet,
    Jump,
    L4Proto,
    Log,
    Match,
    Proto,
    Range,
    Reject,
    TcpNoSyn,
    Verdict,
    VMap,
)
from podnet.nftables.model import Chain, Counter, Hook, Map, Rule, Set, Table
from podnet.policy.addresses import AddressSet
from podnet.policy.classes import PodClasses, class_key, classify
from podnet.policy.endpoints import PodEndpoint
from podnet.policy.engine import Engine, policy_name
from podnet.policy.matrix import ClassCompiler
from podnet.policy.peers import ipblock_set
from podnet.policy.verdict import Direction
from podnet.render import flow_log
from podnet.render import kernel_names as names

PROTO: dict[str, L4Proto] = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
PortTuple = tuple[IPv4Address, L4Proto, int]
_CHAINS: tuple[tuple[Direction, str], ...] = (
    ("ingress", names.INGRESS_CHAIN),
    ("egress", names.EGRESS_CHAIN),
)


def _addr_elements(s: AddressSet) -> tuple[Element, ...]:
    return tuple(
        IPv4Address(lo) if lo == hi else Range(IPv4Address(lo), IPv4Address(hi))
        for lo, hi in s.intervals
    )


@dataclass
class _Sets:
    """Named sets, deduplicated by content (a set's name hashes its elements' text)."""

    # id(AddressSet) -> (it, its set's name): PeerIndex returns one AddressSet object per
    # peers, so each is converted once per node; the value holds it, so its id stays valid.
    _named: dict[int, tuple[AddressSet, str, tuple[Element, ...]]] = field(default_factory=dict)

    def address_set(self, addresses: AddressSet, part: _Part) -> str:
        found = self._named.get(id(addresses))
        if found is None:
            elements = _addr_elements(addresses)
            name = names.nft_object(names.PEER_SET, ",".join(map(nft_text.element, elements)))
            found = self._named[id(addresses)] = (addresses, name, elements)
        part.addr[found[1]] = found[2]
        return found[1]

    @staticmethod
    def tuple_set(elements: list[PortTuple], part: _Part) -> str:
        by_text: dict[str, Element] = {nft_text.element(e): e for e in elements}
        key = sorted(by_text)
        name = names.nft_object(names.PORT_SET, ",".join(key))
        part.tuples[name] = tuple(by_text[k] for k in key)
        return name


@dataclass(frozen=True, slots=True)
class PodRules:
    """What one pod puts into its node's table: its chain per isolated direction (name and
    body) and the sets and counters its chains' rules need. A node's table is the union of
    its pods' (plus the base chain while some pod is isolated), so an incremental sync
    renders only the pods a change can touch and keeps the others' from the last sync
    (render/policy_scope says which)."""

    ip: str
    ingress: tuple[str, tuple[Rule, ...]] | None
    egress: tuple[str, tuple[Rule, ...]] | None
    addr_sets: tuple[tuple[str, tuple[Element, ...]], ...]
    tuple_sets: tuple[tuple[str, tuple[Element, ...]], ...]
    counters: frozenset[str]


@dataclass
class _Part:
    """The sets and counters some rules name (one policy's, or one pod's)."""

    addr: dict[str, tuple[Element, ...]] = field(default_factory=dict)
    tuples: dict[str, tuple[Element, ...]] = field(default_factory=dict)
    counters: set[str] = field(default_factory=set)

    def add(self, other: _Part) -> None:
        self.addr.update(other.addr)
        self.tuples.update(other.tuples)
        self.counters |= other.counters


class PeerIndex:
    """What every peer of every rule matches, for one engine: computed once with the
    vectorised selector compiler of the analyzer's matrix (held equal to the per-pair engine
    by its property tests) and shared by all nodes of a sync. Rendering pod by pod with the
    per-pair engine instead costs ~45 s at 1,000 policies over 1,000 pods; this, ~0.5 s."""

    def __init__(self, engine: Engine, like: PeerIndex | None = None) -> None:
        """`like`: the index of `engine.previous`'s engine: its classes are patched for the
        pods that changed (O(changed), not O(pods)), and its selector compiler and policy
        choices are kept when they cannot differ."""
        self.engine = engine
        self._addresses: dict[tuple[int, str], AddressSet] = {}
        self._candidates: dict[tuple[int, str], list[PodEndpoint]] = {}
        self._selecting: dict[tuple[object, ...], list[NetworkPolicy]] = {}
        self._cluster_addrs: AddressSet | None = None
        prev = engine.previous
        if like is not None and prev is not None and prev[0] is like.engine and self._patch(like):
            return
        # Classes without address atoms: ipBlocks are resolved as address sets, not here.
        classes = classify(engine.pods, [])
        self._compiler = ClassCompiler(engine, classes)
        self._class_of = classes.class_of
        self._reps = classes.reps
        self._keys = {class_key(r): i for i, r in enumerate(classes.reps)}
        self._ips = np.fromiter(
            (p.address for p in engine.pods), dtype=np.int64, count=len(engine.pods)
        )

    def _patch(self, like: PeerIndex) -> bool:
        """Take over `like`'s classes with the changed pods' positions redone; False when
        it cannot be (settings differ, or stale classes have piled up)."""
        old, new = like.engine, self.engine
        if (old.ipblock_pods, old.hostnetwork_pods) != (new.ipblock_pods, new.hostnetwork_pods):
            return False
        assert new.previous is not None
        changed = sorted(new.previous[1])
        gone = [i for k in changed if (i := _position(old.pods, k)) is not None]
        came = [(i, new.pods[i]) for k in changed if (i := _position(new.pods, k)) is not None]
        keys, reps = like._keys, like._reps
        classes: list[int] = []
        for _, p in came:
            c = keys.get(class_key(p))
            if c is None:
                if reps is like._reps:  # copy on first write: `like` stays valid
                    keys, reps = dict(keys), list(reps)
                c = keys[class_key(p)] = len(reps)
                reps.append(p)
            classes.append(c)
        if len(reps) > 2 * len(new.pods) + 64:
            return False  # mostly classes nobody is in any more: classify afresh
        at = [i - n for n, (i, _) in enumerate(came)]  # np.insert counts before inserting
        self._class_of = np.insert(np.delete(like._class_of, gone), at, classes)
        addresses = [p.address for _, p in came]
        self._ips = np.insert(np.delete(like._ips, gone), at, addresses)
        self._keys, self._reps = keys, reps
        same_ns = old.ns_labels == new.ns_labels
        if reps is like._reps and same_ns:
            self._compiler = like._compiler  # masks over the same classes and namespaces
        else:
            self._compiler = ClassCompiler(new, PodClasses(self._class_of, reps, _rep_ips(reps)))
        if old.cluster.policies is new.cluster.policies and same_ns:
            self._selecting = like._selecting  # the same policies choose the same way
        return True

    @property
    def cluster_addrs(self) -> AddressSet:
        """Every pod and node address (what `--ipblock-pods ignore` takes out of ipBlocks)."""
        if self._cluster_addrs is None:
            self._cluster_addrs = AddressSet.of((int(a), int(a)) for a in self._ips).union(
                AddressSet.of(
                    (int(ipaddress.IPv4Address(ip)), int(ipaddress.IPv4Address(ip)))
                    for ip in self.engine.placement.node_ip.values()
                )
            )
        return self._cluster_addrs

    def selecting(self, pod: PodEndpoint, direction: Direction) -> list[NetworkPolicy]:
        """Engine.selecting, memoised: it depends on namespace, labels and host network only."""
        key = (pod.namespace, tuple(sorted(pod.labels.items())), pod.host_network, direction)
        found = self._selecting.get(key)
        if found is None:
            found = self._selecting[key] = self.engine.selecting(pod, direction)
        return found

    def addresses(self, peers: tuple[NetworkPolicyPeer, ...], policy_ns: str) -> AddressSet:
        """Pod addresses the selector peers match, plus the ipBlocks' address ranges."""
        key = (id(peers), policy_ns)  # the peers tuple lives as long as the cluster snapshot
        found = self._addresses.get(key)
        if found is None:
            ips: list[int] = []
            blocks = AddressSet()
            for peer in peers:
                if peer.ip_block is None:
                    mask = self._compiler.peer(peer, policy_ns)[self._class_of]
                    ips += [int(a) for a in self._ips[mask]]
                    continue
                block = ipblock_set(peer.ip_block)
                if self.engine.ipblock_pods == "ignore":
                    block = block.minus(self.cluster_addrs)
                blocks = blocks.union(block)
            found = self._addresses[key] = AddressSet.of((a, a) for a in ips).union(blocks)
        return found

    def candidates(
        self, peers: tuple[NetworkPolicyPeer, ...] | None, policy_ns: str
    ) -> list[PodEndpoint]:
        """Pods (host-network ones by their node address) an egress rule's peers admit."""
        if not peers:
            return list(self.engine.pods)
        key = (id(peers), policy_ns)
        found = self._candidates.get(key)
        if found is None:
            allowed = self.addresses(peers, policy_ns)
            found = self._candidates[key] = [
                p for p in self.engine.pods if allowed.contains(p.address)
            ]
        return found


class NodeRuleset:
    """Builds the table of one node, pod by pod."""

    def __init__(
        self, engine: Engine, node: str, cluster: str, peers: PeerIndex | None = None
    ) -> None:
        self.e = engine
        self.peers = peers or PeerIndex(engine)
        self.node = node
        self.table = names.table_name(cluster)
        self.sets = _Sets()
        # (id(policy), direction, pod key or "") -> the policy's rules with their text, and
        # the sets and counters they name.
        self._policy_rules: dict[tuple[int, Direction, str], tuple[list[tuple[Rule, str]], _Part]]
        self._policy_rules = {}

    # ---- ports -------------------------------------------------------------------------
    @staticmethod
    def _port_match(rp: NetworkPolicyPort, number: int | None) -> tuple[Match, ...]:
        proto = Proto(PROTO[rp.protocol])
        if rp.port is None:
            return (proto,)
        if isinstance(rp.port, str):
            assert number is not None
            return (proto, DPort(number))
        if rp.end_port is not None and rp.end_port != rp.port:
            return (proto, DPort(rp.port, rp.end_port))
        return (proto, DPort(rp.port))

    @staticmethod
    def _accept_counter(pol: NetworkPolicy, part: _Part) -> str:
        name = names.policy_accept_counter(policy_name(pol))
        part.counters.add(name)
        return name

    # ---- chains ------------------------------------------------------------------------
    def _rules(
        self, pod: PodEndpoint, pols: list[NetworkPolicy], direction: Direction, part: _Part
    ) -> list[tuple[Rule, str]]:
        """The rules of each policy in turn, with their text (chain names hash it). Built
        once per policy and node: the same for every pod the policy selects, except an
        ingress rule with a named port, which resolves against the pod itself."""
        out: list[tuple[Rule, str]] = []
        for pol in pols:
            per_pod = direction == "ingress" and any(
                isinstance(rp.port, str) for r in pol.spec.ingress or () for rp in r.ports or ()
            )
            key = (id(pol), direction, pod.key if per_pod else "")
            found = self._policy_rules.get(key)
            if found is None:
                used = _Part()
                if direction == "ingress":
                    rules = self._ingress_rules(pod, pol, used)
                else:
                    rules = self._egress_rules(pol, used)
                found = self._policy_rules[key] = ([(r, nft_text.rule(r)) for r in rules], used)
            out += found[0]
            part.add(found[1])
        return out

    def _ingress_rules(self, pod: PodEndpoint, pol: NetworkPolicy, part: _Part) -> list[Rule]:
        rules = []
        ns = pol.metadata.namespace or "default"
        count = self._accept_counter(pol, part)
        for i, rule in enumerate(pol.spec.ingress or ()):
            log = (flow_log.admitted(policy_name(pol), "ingress", i),)
            src: tuple[Match, ...] = ()
            if rule.from_:
                peer_set = self.sets.address_set(self.peers.addresses(rule.from_, ns), part)
                src = (InSet((Field.IP_SADDR,), peer_set),)
            if not rule.ports:
                rules.append(Rule(src, count, ACCEPT, log))
                continue
            for rp in rule.ports:
                if not isinstance(rp.port, str):
                    rules.append(Rule(src + self._port_match(rp, None), count, ACCEPT, log))
                    continue
                # A name this pod does not declare matches nothing: no rule.
                for number in sorted(pod.resolve(rp.port, rp.protocol)):
                    rules.append(Rule(src + self._port_match(rp, number), count, ACCEPT, log))
        return rules

    def _egress_rules(self, pol: NetworkPolicy, part: _Part) -> list[Rule]:
        rules = []
        ns = pol.metadata.namespace or "default"
        count = self._accept_counter(pol, part)
        for i, rule in enumerate(pol.spec.egress or ()):
            log = (flow_log.admitted(policy_name(pol), "egress", i),)
            dst: tuple[Match, ...] = ()
            if rule.to:
                peer_set = self.sets.address_set(self.peers.addresses(rule.to, ns), part)
                dst = (InSet((Field.IP_DADDR,), peer_set),)
            if not rule.ports:
                rules.append(Rule(dst, count, RETURN, log))
                continue
            for rp in rule.ports:
                if isinstance(rp.port, str):
                    # "named ports resolve against the destination pod": every candidate
                    # destination pod that declares the name, as ip . proto . port.
                    proto = PROTO[rp.protocol]
                    elems: list[PortTuple] = [
                        (IPv4Address(p.ip), proto, n)
                        for p in self.peers.candidates(rule.to, ns)
                        for n in sorted(p.resolve(rp.port, rp.protocol))
                    ]
                    if elems:
                        key = (Field.IP_DADDR, Field.L4PROTO, Field.TH_DPORT)
                        match = InSet(key, self.sets.tuple_set(elems, part))
                        rules.append(Rule((match,), count, RETURN, log))
                    continue
                rules.append(Rule(dst + self._port_match(rp, None), count, RETURN, log))
        return rules

    @staticmethod
    def _chain(
        prefix: str, rules: list[tuple[Rule, str]], deny: Rule, quarantine: tuple[Rule, ...] = ()
    ) -> tuple[str, tuple[Rule, ...]]:
        """A pod's chain, named after its rules' text."""
        ends = (*quarantine, deny)
        text = "\n".join([*(t for _, t in rules), *map(nft_text.rule, ends)])
        return names.nft_object(prefix, text), (*(r for r, _ in rules), *ends)

    @staticmethod
    def _hairpin(pod: PodEndpoint, direction: Direction) -> tuple[Rule, str]:
        """The pod reaching itself through a Service passes (see the module docstring)."""
        if direction == "ingress":
            rule = Rule((Addr(Field.IP_SADDR, IPv4Address(pod.ip)),), verdict=ACCEPT)
        else:
            rule = Rule((Addr(Field.IP_DADDR, IPv4Address(pod.ip)),), verdict=RETURN)
        return rule, nft_text.rule(rule)

    def pod_rules(self, pod: PodEndpoint) -> PodRules:
        """What `pod` (of this node) puts into the table."""
        part = _Part()
        chains: dict[Direction, tuple[str, tuple[Rule, ...]]] = {}
        for direction, prefix in _CHAINS:
            pols = self.peers.selecting(pod, direction)
            if pols:
                drop = (
                    names.ingress_drop_counter(pod.key)
                    if direction == "ingress"
                    else names.egress_drop_counter(pod.key)
                )
                part.counters.add(drop)
                rules = [self._hairpin(pod, direction), *self._rules(pod, pols, direction, part)]
                log = flow_log.rejected(pod.key, direction, map(policy_name, pols))
                deny = _deny(drop, log)
                quarantine = (
                    _quarantine_deny(drop, log) if is_quarantine(pols[0].metadata.labels) else ()
                )
                chains[direction] = self._chain(prefix, rules, deny, quarantine)
        return PodRules(
            pod.ip,
            chains.get("ingress"),
            chains.get("egress"),
            tuple(part.addr.items()),
            tuple(part.tuples.items()),
            frozenset(part.counters),
        )

    def origins(self, pod: PodEndpoint, direction: Direction) -> list[str]:
        """What each rule of the pod's chain for `direction` stands for, in chain order:
        "hairpin", "ns/policy ingress[i]" (explain's naming of a policy rule; one policy
        rule with several ports renders several nft rules), "default deny". Rendered
        rule by rule with the same code as the chain itself, so positions cannot drift
        apart (`podnet trace` maps a traced rule handle back to its policy this way)."""
        out = ["hairpin"]
        field_name = "ingress" if direction == "ingress" else "egress"
        selecting = list(self.peers.selecting(pod, direction))
        for pol in selecting:
            for i, rule in enumerate(getattr(pol.spec, field_name) or ()):
                spec = pol.spec.model_copy(update={field_name: [rule]})
                one = pol.model_copy(update={"spec": spec})
                used = _Part()
                if direction == "ingress":
                    n = len(self._ingress_rules(pod, one, used))
                else:
                    n = len(self._egress_rules(one, used))
                out += [f"{policy_name(pol)} {direction}[{i}]"] * n
        if selecting and is_quarantine(selecting[0].metadata.labels):
            out.append("quarantine (reset of an open TCP connection)")
        out.append("default deny")
        return out

    def build(
        self,
        reuse: Mapping[str, PodRules] | None = None,
        dirty: frozenset[str] | None = None,
    ) -> tuple[Table, dict[str, PodRules]]:
        """The table, and what each pod put into it. With `reuse` (the last sync's pods of
        this node) and `dirty` (the pods a change can touch), a pod outside `dirty` keeps
        what it had: only the dirty ones are rendered."""
        pods: dict[str, PodRules] = {}
        for pod in (p for p in self.e.pods if p.node == self.node and not p.host_network):
            prior = None
            if reuse is not None and dirty is not None and pod.key not in dirty:
                prior = reuse.get(pod.key)
            if prior is not None and prior.ip == pod.ip:
                pods[pod.key] = prior
            else:
                pods[pod.key] = self.pod_rules(pod)
        return self.table_value(pods.values()), pods

    def table_value(self, pods: Iterable[PodRules]) -> Table:
        addr: dict[str, tuple[Element, ...]] = {}
        tuples: dict[str, tuple[Element, ...]] = {}
        counters: set[str] = set()
        chains: dict[str, tuple[Rule, ...]] = {}
        ingress_map: dict[str, str] = {}  # pod ip -> its chain
        egress_map: dict[str, str] = {}
        for p in pods:
            addr.update(p.addr_sets)
            tuples.update(p.tuple_sets)
            counters |= p.counters
            if p.ingress is not None:
                chains[p.ingress[0]] = p.ingress[1]
                ingress_map[p.ip] = p.ingress[0]
            if p.egress is not None:
                chains[p.egress[0]] = p.egress[1]
                egress_map[p.ip] = p.egress[0]
        sets = [
            *(Set(n, ("ipv4_addr",), ("interval",), e) for n, e in sorted(addr.items())),
            *(
                Set(n, ("ipv4_addr", "inet_proto", "inet_service"), (), e)
                for n, e in sorted(tuples.items())
            ),
        ]
        maps = [_jump_map(names.INGRESS_MAP, ingress_map)]
        maps.append(_jump_map(names.EGRESS_MAP, egress_map))
        chain_values = [Chain(name, body) for name, body in sorted(chains.items())]
        if ingress_map or egress_map:
            # The hook exists only while some pod of this node is isolated: its `ct state`
            # turns on connection tracking for the whole namespace, which costs every
            # forwarded packet (about 5% of single-stream throughput per node crossed) and
            # buys nothing where no policy applies.
            chain_values.append(_forward_chain())
        return Table(
            family=names.NFT_FAMILY,
            name=self.table,
            counters=tuple(Counter(c) for c in sorted(counters)),
            sets=tuple(sets),
            maps=tuple(maps),
            chains=tuple(chain_values),
        )


def _jump_map(name: str, chain_of: dict[str, str]) -> Map:
    """A verdict map pod IP -> `jump <its chain>`, in address order."""
    by_ip = sorted((IPv4Address(ip), chain) for ip, chain in chain_of.items())
    elements: tuple[tuple[Element, Verdict], ...] = tuple((ip, Jump(c)) for ip, c in by_ip)
    return Map(name, ("ipv4_addr",), elements)


def _forward_chain() -> Chain:
    """Replies of allowed connections pass; a new connection from (to) an isolated pod
    jumps to its egress (ingress) chain through the verdict maps."""
    return Chain(
        names.FORWARD_CHAIN,
        (
            Rule((CtState(("established", "related")),), verdict=ACCEPT),
            Rule((CtState(("invalid",)),), verdict=DROP),
            Rule(verdict=VMap((Field.IP_SADDR,), names.EGRESS_MAP)),
            Rule(verdict=VMap((Field.IP_DADDR,), names.INGRESS_MAP)),
        ),
        hook=Hook("filter", "forward", "filter", "accept"),
    )


def _deny(counter: str, log: Log) -> Rule:
    """Count, log (the flow log's tag: render/flow_log), then reject with ICMP
    "administratively prohibited" — for TCP too: a client then tells "blocked by policy"
    (no route to host) from "nothing listens" (a reset)."""
    return Rule(counter=counter, verdict=Reject("admin-prohibited"), statements=(log,))


def _quarantine_deny(counter: str, log: Log) -> tuple[Rule, ...]:
    """Before the reject, a quarantined pod's chain resets TCP packets of connections
    already open: once `podnet quarantine` deleted a connection's conntrack entry, its next
    packet is judged here as new (conntrack picks a connection up mid-stream), and a reset
    ends the sender's socket at once, where an ICMP error is only a soft error to an
    established TCP connection (it would hang on in retransmissions). A SYN is rejected as
    everywhere else (ICMP admin-prohibited): a probe still tells "blocked" from "nothing
    listens"."""
    return (Rule((TcpNoSyn(),), counter, Reject("tcp-reset"), statements=(log,)),)


@dataclass(frozen=True)
class NodeRender:
    """A node's table and what each of its pods put into it (for the next sync's reuse)."""

    table: Table
    pods: dict[str, PodRules]


def render_node(engine: Engine, node: str, cluster: str, peers: PeerIndex | None = None) -> Table:
    """The whole table of one node (podnet.nftables.text.replace makes it the `nft -f`
    transaction that replaces podnet's table atomically). Pass one PeerIndex for all the
    nodes of a sync to compute the peers once."""
    return NodeRuleset(engine, node, cluster, peers).build()[0]


def render_nodes(
    engine: Engine,
    cluster: str,
    only: frozenset[str] | None = None,
    reuse: Mapping[str, Mapping[str, PodRules]] | None = None,
    dirty: frozenset[str] | None = None,
) -> dict[str, NodeRender]:
    """{node: its table and pods} for every node (or those in `only`), one PeerIndex shared
    by all (every peer computed once per sync, and only when a rendered pod needs it). With
    `reuse` (node -> the last sync's pods) and `dirty` (pod keys a change can touch:
    render/policy_scope), only the dirty pods are rendered."""
    peers = _following(engine)
    out = {}
    for n in engine.cluster.nodes:
        name = n.metadata.name
        if only is None or name in only:
            prior = reuse.get(name) if reuse is not None else None
            table, pods = NodeRuleset(engine, name, cluster, peers).build(
                prior, dirty if prior is not None else None
            )
            out[name] = NodeRender(table, pods)
    return out


# The index of the last engine rendered in this process (the daemon renders one engine per
# sync): the next sync's engine, patched from that one (Engine.previous), patches its index
# too. Only used when the identity check holds, so a stale entry costs nothing but memory.
_last: list[PeerIndex] = []


def _following(engine: Engine) -> PeerIndex:
    prev = engine.previous
    like = _last[0] if _last and prev is not None and _last[0].engine is prev[0] else None
    index = PeerIndex(engine, like)
    _last[:] = [index]
    return index


def _position(pods: list[PodEndpoint], key: tuple[str, str]) -> int | None:
    """Where the pod (namespace, name) is in an engine's pods (the cluster's order)."""
    i = bisect_left(pods, key, key=lambda p: (p.namespace, p.name))
    return i if i < len(pods) and (pods[i].namespace, pods[i].name) == key else None


def _rep_ips(reps: list[PodEndpoint]) -> np.ndarray:
    return np.fromiter((p.address for p in reps), dtype=np.uint32, count=len(reps))


def render_all(
    engine: Engine, cluster: str, only: frozenset[str] | None = None
) -> dict[str, Table]:
    """{node: its table} for every node of the engine's cluster (or the nodes in `only`),
    with one PeerIndex shared by all of them: every peer is computed once per sync."""
    return {n: r.table for n, r in render_nodes(engine, cluster, only).items()}
