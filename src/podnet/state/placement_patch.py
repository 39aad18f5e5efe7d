"""The next placement as a patch of the previous one, for the pods that changed.

`placement.place` is a function of the whole cluster, but on a live cluster after a
successful sync every pod that does not use the host's network holds its address in the
store (the sync records it), and `place(held=...)` keeps held pods where they are. So only
the changed pods (added, updated, deleted) can move; they are placed here with `place`'s
own rules in `place`'s order: held ones keep their allocation, a named node is taken as it
is, then the rest, in the cluster's order, go to the least-loaded node their nodeSelector
admits (ties to the first declared node) and get the lowest free address of its range.

Declined (None: the caller places the whole cluster, which also reports any problem with
the same words as at `up`): nodes that changed, a pod whose address is pinned by its
manifest and not yet held, a node that does not exist, no node for a nodeSelector, a full
range, and any hostNetwork pod without a node in the cluster (`place` schedules those anew
on every call: they hold no address, so their node follows the loads).
tests/test_follow.py holds the patch equal to `place(held=store.held())`.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_left
from collections import Counter
from collections.abc import Collection, Mapping

from podnet.model.cluster import Cluster
from podnet.model.pod import Pod
from podnet.state.cluster_patch import sort_key
from podnet.state.placement import Placement, PodKey, pod_key


def floating(cluster: Cluster) -> frozenset[PodKey]:
    """Pods that `place` schedules anew on every call: hostNetwork without a node."""
    return frozenset(
        pod_key(p) for p in cluster.pods if p.spec.host_network and not p.spec.node_name
    )


def patch_placement(
    before: Placement,
    cluster: Cluster,
    changed: Collection[PodKey],
    held: Mapping[PodKey, tuple[str, str]],
) -> Placement | None:
    """`before` with the `changed` pods placed again (`held`: the store's allocations of
    those pods); None when only a whole `place` can say (module docstring)."""
    pods: list[Pod] = sorted(present(cluster, changed), key=sort_key)  # `place`'s order
    pod_node = dict(before.pod_node)
    pod_ip = dict(before.pod_ip)
    for key in changed:
        pod_node.pop(key, None)
        pod_ip.pop(key, None)
    load = Counter(pod_node.values())
    pending: list[Pod] = []
    for p in pods:  # first pass: held, then named nodes
        key = pod_key(p)
        if key in held:
            pod_node[key], pod_ip[key] = held[key]
            load[held[key][0]] += 1
            continue
        if p.ip is not None and not p.spec.host_network:
            return None  # a pinned address: `place` checks it against every other
        node = p.spec.node_name
        if node is not None:
            if node not in before.node_cidr:
                return None
            pod_node[key] = node
            load[node] += 1
        pending.append(p)
    order = [n.metadata.name for n in cluster.nodes]  # ties go to the first declared
    labels = {n.metadata.name: n.metadata.labels for n in cluster.nodes}
    used: set[str] | None = None
    for p in pending:  # second pass: spread, then the lowest free address of the range
        key = pod_key(p)
        target = pod_node.get(key)
        if target is None:
            want = p.spec.node_selector.items()
            eligible = [n for n in order if want <= labels[n].items()]
            if not eligible:
                return None
            target = min(eligible, key=lambda n: load[n])  # min keeps the first of ties
            pod_node[key] = target
            load[target] += 1
        if p.spec.host_network:
            pod_ip[key] = before.node_ip[target]
            continue
        if used is None:  # every address a pod holds (host-network ones are nodes')
            used = set(pod_ip.values())
        free = _lowest_free(before.node_cidr[target], used)
        if free is None:
            return None
        used.add(free)
        pod_ip[key] = free
    return Placement(before.node_cidr, before.node_ip, pod_node, pod_ip)


def present(cluster: Cluster, keys: Collection[PodKey]) -> list[Pod]:
    """The pods of `keys` that the cluster holds (binary search in its sorted pods)."""
    out = []
    for key in keys:
        i = bisect_left(cluster.pods, key, key=sort_key)
        if i < len(cluster.pods) and sort_key(cluster.pods[i]) == key:
            out.append(cluster.pods[i])
    return out


def _lowest_free(cidr: ipaddress.IPv4Network, used: set[str]) -> str | None:
    hosts = cidr.hosts()
    next(hosts, None)  # the range's first address is reserved for the node side
    for h in hosts:
        s = str(h)
        if s not in used:
            return s
    return None
