"""What a sync changes in IPAM, between the allocations the store holds and a placement;
recorded only once the kernel holds it (CNI host-local: add undoes nothing it did not do)."""

from __future__ import annotations

from dataclasses import dataclass, field

from podnet.model.cluster import Cluster
from podnet.state.placement import Placement, pod_key
from podnet.state.store import PodKey, Store


@dataclass(frozen=True)
class Allocations:
    """What a sync changes in IPAM: recorded only once the kernel holds it."""

    allocate: dict[PodKey, tuple[str, str]]  # (ns, pod) -> (node, ip), new or moved
    release: tuple[PodKey, ...]  # pods gone
    # The node table (store.nodes): nodes new or changed -> (ip, podCIDR), nodes gone. `up`
    # writes it; a Node applied later (or a node a pod names) is recorded by its first sync.
    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)
    nodes_gone: tuple[str, ...] = ()

    @classmethod
    def between(
        cls,
        held: dict[PodKey, tuple[str, str]],
        placement: Placement,
        cluster: Cluster,
        nodes: dict[str, tuple[str, str]] | None = None,
    ) -> Allocations:
        """A hostNetwork pod uses its node's address and holds none (as `up` records it):
        two of them on one node would otherwise claim the same address."""
        host = {pod_key(p) for p in cluster.pods if p.spec.host_network}
        own = {key: ip for key, ip in placement.pod_ip.items() if key not in host}
        allocate = {
            key: (placement.pod_node[key], ip)
            for key, ip in own.items()
            if held.get(key) != (placement.pod_node[key], ip)
        }
        release = tuple(sorted(held.keys() - own.keys()))
        if nodes is None:
            return cls(allocate, release)
        now = {n: (placement.node_ip[n], str(c)) for n, c in placement.node_cidr.items()}
        changed = {n: v for n, v in now.items() if nodes.get(n) != v}
        return cls(allocate, release, changed, tuple(sorted(nodes.keys() - now.keys())))

    def __bool__(self) -> bool:
        return bool(self.allocate or self.release or self.nodes or self.nodes_gone)

    def record(self, store: Store) -> None:
        """Into the store (inside the caller's transaction). A pod deleted since the sync
        read the store holds nothing: `delete` released it, and it stays released."""
        for (ns, pod), (node, ip) in self.allocate.items():
            if store.get("Pod", ns, pod) is not None:
                store.allocate(ns, pod, node, ip)
        for key in self.release:
            store.release(*key)
        for name, (ip, cidr) in self.nodes.items():
            store.set_node(name, ip, cidr)
        for name in self.nodes_gone:
            store.delete_node(name)
