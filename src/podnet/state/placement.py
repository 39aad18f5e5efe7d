"""Scheduling and IPAM: which node each pod runs on and which address it holds.

Pure and deterministic: the same snapshot and the same held allocations give the same
placement. Semantics follow the CNI host-local plugin: an address held by a pod is never
handed to another, the first address of each node range is kept for the node side, and
allocation proceeds upward from there. A pod's `status.podIP` from a dump is honoured.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from podnet.model.cluster import Cluster
from podnet.model.errors import InputError, Problem
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


def _node_cidrs(
    cluster: Cluster, net: NetworkConfig, problems: list[Problem]
) -> dict[str, ipaddress.IPv4Network]:
    nodes = [n.metadata.name for n in cluster.nodes]
    if len(nodes) > net.max_nodes:
        problems.append(
            Problem(
                None,
                "",
                "",
                f"{len(nodes)} nodes do not fit: cluster CIDR {net.cluster_cidr} holds {net.max_nodes} node ranges of /{net.node_prefix}",
            )
        )
        return {}
    out: dict[str, ipaddress.IPv4Network] = {}
    for n in cluster.nodes:
        if n.spec.pod_cidr:
            out[n.metadata.name] = ipaddress.IPv4Network(n.spec.pod_cidr)
    taken = set(out.values())
    free = (
        s
        for s in net.cluster_cidr.subnets(new_prefix=net.node_prefix)
        if not any(s.overlaps(t) for t in taken)
    )
    for name in nodes:
        if name not in out:
            out[name] = next(free)
    return out


def _node_ips(cluster: Cluster, net: NetworkConfig) -> dict[str, str]:
    hosts: Iterator[ipaddress.IPv4Address] = net.node_network.hosts()
    next(hosts)  # .1 stays free: the fabric's own address
    taken = {n.internal_ip for n in cluster.nodes if n.internal_ip}
    out = {}
    for n in cluster.nodes:
        ip = n.internal_ip
        while ip is None or (ip in taken and ip != n.internal_ip):
            ip = str(next(hosts))
        out[n.metadata.name] = ip
        taken.add(ip)
    return out


def place(
    cluster: Cluster,
    net: NetworkConfig | None = None,
    held: Mapping[PodKey, tuple[str, str]] | None = None,
    strict: bool = False,
) -> Placement:
    """Place every pod. `held` maps pods to (node, ip) already allocated; they keep them.

    With `strict` (a live cluster), a pinned pod IP must lie in the cluster CIDR; the
    analyzer instead honours any IP a dump gives, because that is the address ipBlocks see.
    """
    net = net or NetworkConfig()
    held = held or {}
    problems: list[Problem] = []
    cidrs = _node_cidrs(cluster, net, problems)
    if problems:
        raise InputError(problems)
    node_ip = _node_ips(cluster, net)
    node_names = [n.metadata.name for n in cluster.nodes]
    labels = {n.metadata.name: n.metadata.labels for n in cluster.nodes}
    load = dict.fromkeys(node_names, 0)
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
            load[held_node] = load.get(held_node, 0) + 1
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
            addr = ipaddress.ip_address(ip)
            inside = addr in net.cluster_cidr
            if strict and not inside:
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
                node = _least_loaded(node_names, load, p.spec.node_selector, labels)
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
            load[node] += 1
            continue
        if node is not None:
            pod_node[key] = node
            load[node] += 1
        pending.append(p)
    # Second pass: spread the rest evenly, then hand out addresses per node in order.
    cursors = {n: _free_hosts(c, used) for n, c in cidrs.items()}
    for p in pending:
        key = pod_key(p)
        target = pod_node.get(key)
        if target is None:
            target = _least_loaded(node_names, load, p.spec.node_selector, labels)
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
            load[target] += 1
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


def _least_loaded(
    nodes: list[str],
    load: dict[str, int],
    selector: Mapping[str, str],
    labels: Mapping[str, Mapping[str, str]],
) -> str | None:
    # Ties go to the earlier node; the position comes from enumerate, not nodes.index (a
    # scan per candidate made this quadratic in the node count, for every pod).
    best = min(
        (
            (load[n], i, n)
            for i, n in enumerate(nodes)
            if all(labels[n].get(k) == v for k, v in selector.items())
        ),
        default=None,
    )
    return best[2] if best is not None else None
