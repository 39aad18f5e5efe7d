"""Scheduling and IPAM: which node each pod runs on and which address it holds.

Pure and deterministic: the same snapshot and the same held allocations give the same
placement. Semantics follow the CNI host-local plugin: an address held by a pod is never
handed to another, the first address of each node range is kept for the node side, and
allocation proceeds upward from there. A pod's `status.podIP` from a dump is honoured.
"""

from __future__ import annotations

import heapq
import ipaddress
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from podnet.model.cluster import Cluster
from podnet.model.cluster_objects import Node
from podnet.model.errors import InputError, Problem
from podnet.model.ip import ipv4_int
from podnet.model.kinds import identity
from podnet.model.pod import Pod
from podnet.state.network import NetworkConfig

PodKey = tuple[str, str]  # (namespace, name)


def pod_key(p: Pod) -> PodKey:
    return (p.metadata.namespace or "default", p.metadata.name)


@dataclass(frozen=True)
class Placement:
    node_cidr: dict[str, ipaddress.IPv4Network]
    node_ip: dict[str, str]
    pod_node: dict[PodKey, str]
    pod_ip: dict[PodKey, str]
    warnings: tuple[Problem, ...] = field(default=(), compare=False)


def _problem(
    cluster: Cluster, kind: str, ns: str | None, name: str, path: str, msg: str
) -> Problem:
    ident = identity(kind, ns, name)
    return Problem(cluster.origins.get(ident), ident, path, msg)


def _declared_cidr(node: Node) -> ipaddress.IPv4Network | None:
    """spec.podCIDR, or the first IPv4 range of spec.podCIDRs ("If this field is specified,
    the 0th entry must match the podCIDR field")."""
    for text in (node.spec.pod_cidr, *node.spec.pod_cidrs):
        if text:
            net = ipaddress.ip_network(text, strict=False)
            if isinstance(net, ipaddress.IPv4Network):
                return net
    return None


def _range_of(ip: str, net: NetworkConfig) -> int | None:
    """The first address of the node range of the cluster CIDR that holds `ip`, if the
    cluster CIDR holds it (an integer: a dump has thousands of pods and few ranges)."""
    addr = ipv4_int(ip)
    mask = (0xFFFFFFFF << (32 - net.node_prefix)) & 0xFFFFFFFF
    cluster = net.cluster_cidr
    if addr is None or addr & int(cluster.netmask) != int(cluster.network_address):
        return None
    return addr & mask


def _node_cidrs(
    cluster: Cluster,
    net: NetworkConfig,
    problems: list[Problem],
    recorded: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, ipaddress.IPv4Network]:
    """Each node's pod range: declared (spec.podCIDR), else derived from the addresses its
    pods hold in a dump, else the next free range of the cluster CIDR.

    A dump without Node objects (a pod list, or `kubectl get pods -A -o yaml`) still says
    where its pods live: spec.nodeName and status.podIP. The node range that holds most of a
    node's pods is that node's podCIDR (kube-controller-manager hands out one range per
    node); every other node takes the next free range, unless pods that name no node lie
    in ranges no node holds: those ranges then go to nodes whose free range holds no pod.
    """
    nodes = [n.metadata.name for n in cluster.nodes]
    out: dict[str, ipaddress.IPv4Network] = {}
    for n in cluster.nodes:
        declared = _declared_cidr(n)
        if declared is not None:
            out[n.metadata.name] = declared
    taken = set(out.values())
    # A live cluster's nodes keep the range they were given (`recorded`: the store's node
    # table, which each sync writes): a node added since `up` declares none, and the next
    # free range is not the same one once other nodes came or went.
    for name in nodes:
        if name not in out and recorded and name in recorded:
            rng = ipaddress.IPv4Network(recorded[name][1])
            if not any(rng.overlaps(t) for t in taken):
                out[name] = rng
                taken.add(rng)

    def free(cidr: ipaddress.IPv4Network) -> bool:
        return not any(cidr.overlaps(t) for t in taken)

    seen: dict[str, Counter[int]] = {}
    starts: set[int] = set()
    for p in cluster.pods:
        start = _range_of(p.ip, net) if p.ip and not p.spec.host_network else None
        if start is None:
            continue
        if p.spec.node_name:
            seen.setdefault(p.spec.node_name, Counter())[start] += 1
        else:
            starts.add(start)
    unnamed = {ipaddress.IPv4Network((s, net.node_prefix)) for s in starts}
    for name in nodes:
        if name in out or name not in seen:
            continue
        # most pods first, then the lowest range: deterministic
        for start, _ in sorted(seen[name].items(), key=lambda kv: (-kv[1], kv[0])):
            rng = ipaddress.IPv4Network((start, net.node_prefix))
            if free(rng):
                out[name] = rng
                taken.add(rng)
                break
    fresh = (s for s in net.cluster_cidr.subnets(new_prefix=net.node_prefix) if free(s))
    given = [name for name in nodes if name not in out]
    for name in given:
        spare = next(fresh, None)
        if spare is None:  # nodes with declared ranges take none of the cluster CIDR's
            problems.append(
                Problem(
                    None,
                    "",
                    "",
                    f"{len(nodes)} nodes do not fit: cluster CIDR {net.cluster_cidr} holds {net.max_nodes} node ranges of /{net.node_prefix}; give a larger one with --cluster-cidr (e.g. 10.240.0.0/12)",
                )
            )
            return {}
        out[name] = spare
        taken.add(spare)
    # Ranges of pods that name no node and that no node holds yet replace, in address order,
    # the fresh ranges that hold no such pod (a fresh range that holds pods stays put).
    held = set(out.values())
    uncovered = sorted(r for r in unnamed if r not in held and free(r))
    idle = [name for name in given if out[name] not in unnamed]
    for name, rng in zip(idle, uncovered, strict=False):
        out[name] = rng
    return out


def _node_ips(
    cluster: Cluster, net: NetworkConfig, recorded: Mapping[str, tuple[str, str]] | None = None
) -> dict[str, str]:
    """Each node's address: its InternalIP, else the one a live cluster recorded for it,
    else the next free one of the node network."""
    hosts: Iterator[ipaddress.IPv4Address] = net.node_network.hosts()
    next(hosts)  # .1 stays free: the fabric's own address
    recorded = recorded or {}
    own = {
        n.metadata.name: n.internal_ip or recorded.get(n.metadata.name, (None, ""))[0]
        for n in cluster.nodes
    }
    taken = {ip for ip in own.values() if ip}
    out = {}
    for n in cluster.nodes:
        ip = own[n.metadata.name]
        while ip is None or (ip in taken and ip != own[n.metadata.name]):
            ip = str(next(hosts))
        out[n.metadata.name] = ip
        taken.add(ip)
    return out


def place(
    cluster: Cluster,
    net: NetworkConfig | None = None,
    held: Mapping[PodKey, tuple[str, str]] | None = None,
    strict: bool = False,
    nodes: Mapping[str, tuple[str, str]] | None = None,
) -> Placement:
    """Place every pod. `held` maps pods to (node, ip) already allocated; they keep them.
    `nodes` (a live cluster's node table: name -> (ip, podCIDR)) likewise for the nodes.

    With `strict` (a live cluster), a pinned pod IP must lie in the cluster CIDR; the
    analyzer instead honours any IP a dump gives, because that is the address ipBlocks see.
    """
    net = net or NetworkConfig()
    held = held or {}
    problems: list[Problem] = []
    cidrs = _node_cidrs(cluster, net, problems, nodes)
    if problems:
        raise InputError(problems)
    node_ip = _node_ips(cluster, net, nodes)
    node_names = [n.metadata.name for n in cluster.nodes]
    labels = {n.metadata.name: n.metadata.labels for n in cluster.nodes}
    sched = _Scheduler(node_names, labels)
    pod_node: dict[PodKey, str] = {}
    pod_ip: dict[PodKey, str] = {}
    used: set[str] = set()
    pending: list[Pod] = []
    # First pass: pods whose node or address is fixed (held, pinned, or named).
    for p in cluster.pods:
        key = pod_key(p)
        ns, name = key
        if key in held:
            held_node, held_ip = held[key]
            pod_node[key], pod_ip[key] = held_node, held_ip
            used.add(held_ip)
            sched.add(held_node)
            continue
        node: str | None = p.spec.node_name
        if node is not None and node not in cidrs:
            problems.append(
                _problem(cluster, "Pod", ns, name, "spec.nodeName", f"node {node!r} does not exist")
            )
            continue
        pinned = p.ip if not p.spec.host_network else None
        if pinned is not None:
            ip = pinned
            # Parsed only when asked about: a dump's pods mostly name their node already.
            addr = ipaddress.ip_address(ip) if strict or node is None else None
            if strict and addr not in net.cluster_cidr:
                problems.append(
                    _problem(
                        cluster,
                        "Pod",
                        ns,
                        name,
                        "status.podIP",
                        f"{ip} is outside the cluster CIDR {net.cluster_cidr}",
                    )
                )
                continue
            if ip in used:
                other = next(k for k, v in pod_ip.items() if v == ip)
                problems.append(
                    _problem(
                        cluster,
                        "Pod",
                        ns,
                        name,
                        "status.podIP",
                        f"{ip} is already the address of pod {other[0]}/{other[1]}",
                    )
                )
                continue
            if node is None:
                node = next((n for n, c in cidrs.items() if addr in c), None)
            if node is None and strict:
                problems.append(
                    _problem(
                        cluster, "Pod", ns, name, "status.podIP", f"{ip} lies in no node's podCIDR"
                    )
                )
                continue
            if node is None:
                node = sched.pick(p.spec.node_selector)
            if node is None:
                problems.append(
                    _problem(
                        cluster,
                        "Pod",
                        ns,
                        name,
                        "spec.nodeSelector",
                        f"no node matches {p.spec.node_selector}",
                    )
                )
                continue
            pod_node[key], pod_ip[key] = node, ip
            used.add(ip)
            sched.add(node)
            continue
        if node is not None:
            pod_node[key] = node
            sched.add(node)
        pending.append(p)
    # Second pass: spread the rest evenly, then hand out addresses per node in order.
    cursors = {n: _free_hosts(c, used) for n, c in cidrs.items()}
    for p in pending:
        key = pod_key(p)
        target = pod_node.get(key)
        if target is None:
            target = sched.pick(p.spec.node_selector)
            if target is None:
                problems.append(
                    _problem(
                        cluster,
                        "Pod",
                        *key,
                        "spec.nodeSelector",
                        f"no node matches {p.spec.node_selector}",
                    )
                )
                continue
            pod_node[key] = target
            sched.add(target)
        if p.spec.host_network:
            pod_ip[key] = node_ip[target]
            continue
        free = next(cursors[target], None)
        if free is None:
            problems.append(
                _problem(
                    cluster,
                    "Pod",
                    *key,
                    "status.podIP",
                    f"node {target}'s podCIDR {cidrs[target]} is exhausted",
                )
            )
            continue
        pod_ip[key] = free
    if problems:
        raise InputError(problems)
    return Placement(cidrs, node_ip, pod_node, pod_ip)


def _free_hosts(cidr: ipaddress.IPv4Network, used: set[str]) -> Iterator[str]:
    hosts = cidr.hosts()
    next(hosts, None)  # the range's first address is reserved for the node side
    for h in hosts:
        s = str(h)
        if s not in used:
            used.add(s)
            yield s


class _Scheduler:
    """The least-loaded node among those a nodeSelector admits, ties to the first declared.

    One heap of (load, position) per distinct nodeSelector, built when first asked; a
    load change pushes a fresh entry and stale ones are dropped when they surface, so
    each choice costs O(log nodes) instead of a scan of every node.
    """

    def __init__(self, nodes: list[str], labels: Mapping[str, Mapping[str, str]]) -> None:
        self.nodes = nodes
        self.labels = labels
        self.load = dict.fromkeys(nodes, 0)
        self.position = {n: i for i, n in enumerate(nodes)}
        self.heaps: dict[frozenset[tuple[str, str]], list[tuple[int, int]]] = {}
        self.member: dict[str, list[list[tuple[int, int]]]] = {n: [] for n in nodes}

    def add(self, node: str) -> None:
        """One more pod on `node` (a node no heap knows, e.g. a held one, only counts)."""
        self.load[node] = self.load.get(node, 0) + 1
        entry = (self.load[node], self.position.get(node, -1))
        for heap in self.member.get(node, ()):
            heapq.heappush(heap, entry)

    def pick(self, selector: Mapping[str, str]) -> str | None:
        key = frozenset(selector.items())
        heap = self.heaps.get(key)
        if heap is None:
            eligible = [n for n in self.nodes if all(self.labels[n].get(k) == v for k, v in key)]
            heap = self.heaps[key] = [(self.load[n], self.position[n]) for n in eligible]
            heapq.heapify(heap)
            for n in eligible:
                self.member[n].append(heap)
        while heap:
            load, pos = heap[0]
            node = self.nodes[pos]
            if load == self.load[node]:
                return node
            heapq.heappop(heap)  # stale: the node has gained pods since
        return None
