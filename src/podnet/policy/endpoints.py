"""Endpoints: what the engine knows of each pod (identity, labels, address, node, ports)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from podnet.model.cluster import Cluster
from podnet.model.ip import ipv4_int
from podnet.model.localports import localhost_ports
from podnet.model.pod import Pod
from podnet.state.placement import Placement, pod_key


@dataclass(frozen=True, slots=True)
class NamedPort:
    name: str | None
    port: int
    protocol: str
    container: str


def _address(ip: str) -> int:
    value = ipv4_int(ip)
    if value is None:
        raise ValueError(f"{ip} is not an IPv4 address")
    return value


@dataclass(frozen=True, slots=True)
class PodEndpoint:
    namespace: str
    name: str
    labels: Mapping[str, str]
    ip: str
    node: str
    host_network: bool
    ports: tuple[NamedPort, ...]
    # (port, protocol) bound to 127.0.0.1 (podnet.io/localhost-ports): no other pod reaches them
    localhost: frozenset[tuple[int, str]] = frozenset()
    address: int = 0  # self.ip as an integer, for address-set arithmetic

    def __post_init__(self) -> None:
        if not self.address:
            object.__setattr__(self, "address", _address(self.ip))

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def resolve(self, name: str, protocol: str) -> frozenset[int]:
        """The numbers of the container ports called `name` with `protocol`.

        "If this is a string, it must be an IANA_SVC_NAME ... and can be referred to by
        services" — a named port resolves against the destination pod's containerPorts. Two
        containers may declare one name (the API allows it); either number then matches, as
        in kube-network-policies' evaluatePorts.
        """
        return frozenset(p.port for p in self.ports if p.name == name and p.protocol == protocol)


def pod_endpoints(
    cluster: Cluster,
    placement: Placement,
    like: Mapping[int, tuple[object, PodEndpoint]] | None = None,
) -> list[PodEndpoint]:
    """The endpoint of every pod. `like` (id(pod) -> (that pod, its endpoint), from an
    earlier snapshot whose unchanged pods are the very same objects) spares rebuilding
    the endpoint of a pod that is the same object at the same place (a daemon's sync
    after a change of one pod rebuilds one endpoint, not 1,000)."""
    out = []
    for p in cluster.pods:
        key = pod_key(p)
        known = like.get(id(p)) if like else None
        if (
            known is not None
            and known[0] is p
            and known[1].ip == placement.pod_ip[key]
            and known[1].node == placement.pod_node[key]
        ):
            out.append(known[1])
            continue
        out.append(pod_endpoint(p, placement))
    return out


def pod_endpoint(p: Pod, placement: Placement) -> PodEndpoint:
    """One pod's endpoint, where the placement put it."""
    key = pod_key(p)
    ports = tuple(NamedPort(cp.name, cp.container_port, cp.protocol, c) for c, cp in p.all_ports)
    local, _ = localhost_ports(
        p.metadata.annotations, [(n.name, n.port, n.protocol) for n in ports]
    )
    return PodEndpoint(
        namespace=key[0],
        name=key[1],
        labels=p.metadata.labels,
        ip=placement.pod_ip[key],
        node=placement.pod_node[key],
        host_network=p.spec.host_network,
        ports=ports,
        localhost=local,
    )


def patched_endpoints(
    before: list[PodEndpoint],
    cluster: Cluster,
    placement: Placement,
    changed: Collection[tuple[str, str]],
) -> list[PodEndpoint]:
    """`pod_endpoints` when only the `changed` pods (added, updated, moved, deleted) differ
    from the snapshot `before` was computed for: their endpoints replace theirs, in the
    cluster's order (by namespace and name), and the rest is not looked at."""
    out = list(before)
    for key in changed:
        i = bisect_left(out, key, key=_order)
        if i < len(out) and _order(out[i]) == key:
            del out[i]
    for key in changed:
        j = bisect_left(cluster.pods, key, key=pod_key)
        if j < len(cluster.pods) and pod_key(cluster.pods[j]) == key:
            e = pod_endpoint(cluster.pods[j], placement)
            out.insert(bisect_left(out, key, key=_order), e)
    return out


def _order(e: PodEndpoint) -> tuple[str, str]:
    return (e.namespace, e.name)
