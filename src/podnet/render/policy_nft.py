"""NetworkPolicy as one nftables ruleset per node, rendered from the policy engine.

Hook and chains (table `inet podnet_<cluster>` in each node's namespace; all pod traffic of
a node is routed through it, so the forward hook sees every pod packet the node carries):

    forward (filter, policy accept)
      ├─ ct state established,related accept        replies of allowed connections
      ├─ ct state invalid drop
      ├─ ip saddr vmap @egress-pods    -> jump eg-<h>   local sources isolated for egress
      └─ ip daddr vmap @ingress-pods   -> jump in-<h>   local destinations isolated for ingress

    eg-<h>: one rule per admitting policy rule; a match `return`s (so that the destination's
            ingress is still judged when both pods live on this node); else count and reject.
    in-<h>: likewise, a match `accept`s; else count and reject.

Each isolated pod has its own chain (it carries the pod's drop counter; `<h>` hashes the
chain's content), with one rule per admitting policy rule: the rules of a node grow with its
own pods and their policies, not with the cluster. The cluster-wide part, the peer addresses,
lives in named sets shared by all chains. Blocked traffic is *rejected*, so a
denied probe fails immediately instead of waiting for a timeout: ICMP "administratively
prohibited" for every protocol (so "blocked" differs from "nothing listens", a TCP reset),
and the node's icmp_ratemask=0 keeps the kernel from throttling those errors.
Traffic of the node itself (host-network pods, kubelet) is in the input/output hooks and
never judged, as "traffic to and from the node where a Pod is running is always allowed".
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field

import numpy as np

from podnet.model.networkpolicy import NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort
from podnet.policy.addresses import AddressSet
from podnet.policy.classes import classify
from podnet.policy.endpoints import PodEndpoint
from podnet.policy.engine import Engine, policy_name
from podnet.policy.matrix import ClassCompiler
from podnet.policy.peers import ipblock_set
from podnet.policy.verdict import Direction

PROTO = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


def table_name(cluster: str) -> str:
    # Cluster names are DNS labels (no '_'), so this mapping cannot collide.
    return "podnet_" + cluster.replace("-", "_")


def _h(text: str, n: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def counter_name(pol: NetworkPolicy, what: str) -> str:
    """`pol_<hash>_accept`: nft object names are short; the hash is of `ns/name`."""
    return f"pol_{_h(policy_name(pol))}_{what}"


def _addr_elements(s: AddressSet) -> list[str]:
    out = []
    for lo, hi in s.intervals:
        a, b = ipaddress.IPv4Address(lo), ipaddress.IPv4Address(hi)
        out.append(str(a) if lo == hi else f"{a}-{b}")
    return out


@dataclass
class _Sets:
    """Named sets, deduplicated by content."""

    addr: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> elements
    tuples: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def address_set(self, elements: list[str]) -> str:
        key = tuple(elements)
        name = f"peer-{_h(','.join(key))}"
        self.addr[name] = key
        return name

    def tuple_set(self, elements: list[str]) -> str:
        key = tuple(sorted(set(elements)))
        name = f"np-{_h(','.join(key))}"
        self.tuples[name] = key
        return name


class PeerIndex:
    """What every peer of every rule matches, for one engine: computed once with the
    vectorised selector compiler of the analyzer's matrix (held equal to the per-pair engine
    by its property tests) and shared by all nodes of a sync. Rendering pod by pod with the
    per-pair engine instead costs ~45 s at 1,000 policies over 1,000 pods; this, ~0.5 s."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Classes without address atoms: ipBlocks are resolved as address sets, not here.
        classes = classify(engine.pods, [])
        self._compiler = ClassCompiler(engine, classes)
        self._class_of = classes.class_of
        self._ips = np.fromiter(
            (p.address for p in engine.pods), dtype=np.int64, count=len(engine.pods)
        )
        self._addresses: dict[tuple[int, str], AddressSet] = {}
        self._candidates: dict[tuple[int, str], list[PodEndpoint]] = {}
        self._selecting: dict[tuple[object, ...], list[NetworkPolicy]] = {}
        self.cluster_addrs = AddressSet.of((int(a), int(a)) for a in self._ips).union(
            AddressSet.of(
                (int(ipaddress.IPv4Address(ip)), int(ipaddress.IPv4Address(ip)))
                for ip in engine.placement.node_ip.values()
            )
        )

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
    """Renders the ruleset of one node."""

    def __init__(
        self, engine: Engine, node: str, cluster: str, peers: PeerIndex | None = None
    ) -> None:
        self.e = engine
        self.peers = peers or PeerIndex(engine)
        self.node = node
        self.table = table_name(cluster)
        self.sets = _Sets()
        self.chains: dict[str, list[str]] = {}
        self.ingress_map: dict[str, str] = {}
        self.egress_map: dict[str, str] = {}
        self.counters: set[str] = set()

    # ---- ports -------------------------------------------------------------------------
    @staticmethod
    def _port_match(rp: NetworkPolicyPort, number: int | None) -> str:
        proto = PROTO[rp.protocol]
        if rp.port is None:
            return f"meta l4proto {proto}"
        if isinstance(rp.port, str):
            return f"meta l4proto {proto} th dport {number}"
        if rp.end_port is not None and rp.end_port != rp.port:
            return f"meta l4proto {proto} th dport {rp.port}-{rp.end_port}"
        return f"meta l4proto {proto} th dport {rp.port}"

    # ---- chains ------------------------------------------------------------------------
    def _ingress_rules(self, pod: PodEndpoint, pols: list[NetworkPolicy]) -> list[str]:
        rules = []
        for pol in pols:
            ns = pol.metadata.namespace or "default"
            count = f"counter name {counter_name(pol, 'accept')}"
            self.counters.add(counter_name(pol, "accept"))
            for rule in pol.spec.ingress or ():
                src = ""
                if rule.from_:
                    src = f"ip saddr @{self.sets.address_set(_addr_elements(self.peers.addresses(rule.from_, ns)))} "
                if not rule.ports:
                    rules.append(f"{src}{count} accept")
                    continue
                for rp in rule.ports:
                    if not isinstance(rp.port, str):
                        rules.append(f"{src}{self._port_match(rp, None)} {count} accept")
                        continue
                    # A name this pod does not declare matches nothing: no rule.
                    for number in sorted(pod.resolve(rp.port, rp.protocol)):
                        rules.append(f"{src}{self._port_match(rp, number)} {count} accept")
        return rules

    def _egress_rules(self, pols: list[NetworkPolicy]) -> list[str]:
        rules = []
        for pol in pols:
            ns = pol.metadata.namespace or "default"
            count = f"counter name {counter_name(pol, 'accept')}"
            self.counters.add(counter_name(pol, "accept"))
            for rule in pol.spec.egress or ():
                dst_set = None
                if rule.to:
                    dst_set = self.sets.address_set(
                        _addr_elements(self.peers.addresses(rule.to, ns))
                    )
                dst = f"ip daddr @{dst_set} " if dst_set else ""
                if not rule.ports:
                    rules.append(f"{dst}{count} return")
                    continue
                for rp in rule.ports:
                    if isinstance(rp.port, str):
                        # "named ports resolve against the destination pod": every candidate
                        # destination pod that declares the name, as ip . proto . port.
                        cands = self.peers.candidates(rule.to, ns)
                        elems = [
                            f"{p.ip} . {PROTO[rp.protocol]} . {n}"
                            for p in cands
                            for n in sorted(p.resolve(rp.port, rp.protocol))
                        ]
                        if elems:
                            name = self.sets.tuple_set(elems)
                            rules.append(
                                f"ip daddr . meta l4proto . th dport @{name} {count} return"
                            )
                        continue
                    rules.append(f"{dst}{self._port_match(rp, None)} {count} return")
        return rules

    def _chain(self, prefix: str, rules: list[str], *final: str) -> str:
        body = [*rules, *final]
        name = f"{prefix}-{_h(chr(10).join(body))}"
        self.chains[name] = body
        return name

    def build(self) -> str:
        for pod in (p for p in self.e.pods if p.node == self.node and not p.host_network):
            in_pols = self.peers.selecting(pod, "ingress")
            if in_pols:
                drop = f"in_drop_{_h(pod.key)}"
                self.counters.add(drop)
                chain = self._chain(
                    "in",
                    self._ingress_rules(pod, in_pols),
                    *_deny(drop),
                )
                self.ingress_map[pod.ip] = chain
            eg_pols = self.peers.selecting(pod, "egress")
            if eg_pols:
                drop = f"eg_drop_{_h(pod.key)}"
                self.counters.add(drop)
                chain = self._chain(
                    "eg",
                    self._egress_rules(eg_pols),
                    *_deny(drop),
                )
                self.egress_map[pod.ip] = chain
        return self.text()

    def text(self) -> str:
        t = self.table
        out = [f"table inet {t}", f"delete table inet {t}", f"table inet {t} {{"]
        for c in sorted(self.counters):
            out.append(f"\tcounter {c} {{ }}")
        for name, elems in sorted(self.sets.addr.items()):
            out.append(f"\tset {name} {{\n\t\ttype ipv4_addr\n\t\tflags interval")
            if elems:
                out.append(f"\t\telements = {{ {', '.join(elems)} }}")
            out.append("\t}")
        for name, elems in sorted(self.sets.tuples.items()):
            out.append(f"\tset {name} {{\n\t\ttype ipv4_addr . inet_proto . inet_service")
            out.append(f"\t\telements = {{ {', '.join(elems)} }}")
            out.append("\t}")
        for mapname, entries in (
            ("ingress-pods", self.ingress_map),
            ("egress-pods", self.egress_map),
        ):
            out.append(f"\tmap {mapname} {{\n\t\ttype ipv4_addr : verdict")
            if entries:
                listed = ", ".join(
                    f"{ip} : jump {c}"
                    for ip, c in sorted(
                        entries.items(), key=lambda kv: ipaddress.IPv4Address(kv[0])
                    )
                )
                out.append(f"\t\telements = {{ {listed} }}")
            out.append("\t}")
        for name, body in sorted(self.chains.items()):
            out.append(f"\tchain {name} {{")
            out += [f"\t\t{r}" for r in body]
            out.append("\t}")
        if self.ingress_map or self.egress_map:
            # The hook exists only while some pod of this node is isolated: its `ct state`
            # turns on connection tracking for the whole namespace, which costs every
            # forwarded packet (about 5% of single-stream throughput per node crossed) and
            # buys nothing where no policy applies.
            out += [
                "\tchain forward {",
                "\t\ttype filter hook forward priority filter; policy accept;",
                "\t\tct state established,related accept",
                "\t\tct state invalid drop",
                "\t\tip saddr vmap @egress-pods",
                "\t\tip daddr vmap @ingress-pods",
                "\t}",
            ]
        out.append("}")
        return "\n".join(out) + "\n"


def _deny(counter: str) -> tuple[str, ...]:
    """Count, then reject with ICMP "administratively prohibited" — for TCP too: a client
    then tells "blocked by policy" (no route to host) from "nothing listens" (a reset)."""
    return (f"counter name {counter} reject with icmpx admin-prohibited",)


def render_node(engine: Engine, node: str, cluster: str, peers: PeerIndex | None = None) -> str:
    """The whole nft -f input for one node: replaces podnet's table atomically. Pass one
    PeerIndex for all the nodes of a sync to compute the peers once."""
    return NodeRuleset(engine, node, cluster, peers).build()


def render_all(engine: Engine, cluster: str) -> dict[str, str]:
    """{node: its whole `nft -f` text} for every node of the engine's cluster, with one
    PeerIndex shared by all of them: every peer is computed once per sync."""
    peers = PeerIndex(engine)
    return {
        n.metadata.name: render_node(engine, n.metadata.name, cluster, peers)
        for n in engine.cluster.nodes
    }


def short_hash(text: str, n: int = 10) -> str:
    """The short hash in the names of podnet's nft objects: a pod's drop counters are
    `in_drop_<short_hash("ns/pod")>` and `eg_drop_...`, a policy's `pol_<...>_accept`."""
    return _h(text, n)
