"""Questions about a Service: `--to svc/NS/NAME` (or its ClusterIP) means each of its ready
endpoints, on the targetPort each endpoint's slice gives the Service port asked about.

NetworkPolicy never sees a Service: kube-proxy's DNAT happens before the policy chains, so
the verdict is the one for the endpoint pod on the resolved port, with the translation said
in the reason. The Service's addresses and slices are computed as a live cluster would get
them (state.service_alloc, state.endpoint_slices; every pod ready unless its manifest says
Ready=False)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from podnet.model.cluster import Cluster
from podnet.model.errors import InputError, Problem
from podnet.model.service import EndpointSlice, Service, ServicePort
from podnet.policy.endpoints import PodEndpoint
from podnet.policy.ports import PortProto
from podnet.state.endpoint_slices import desired, pod_views, statically_ready
from podnet.state.network import NetworkConfig
from podnet.state.placement import Placement
from podnet.state.service_alloc import allocate_services


@dataclass(frozen=True)
class Hop:
    """One way through a Service: its port, the endpoint pod, the port DNAT gives."""

    service: Service
    port: ServicePort
    endpoint: PodEndpoint
    target: PortProto

    def reason(self) -> str:
        ip = self.service.spec.cluster_ip
        via = f"ClusterIP {ip}" if ip and ip != "None" else "headless"
        named = f" (targetPort {self.port.target!r})" if isinstance(self.port.target, str) else ""
        return (
            f"via Service {self.service.key} ({via}) port {self.port.port}/{self.port.protocol}"
            f" -> endpoint {self.endpoint.key} port {self.target}{named}"
        )


def is_service_selector(item: str) -> bool:
    return item.startswith("svc/")


def find_service(cluster: Cluster, net: NetworkConfig, item: str, flag: str) -> Service:
    """`svc/NS/NAME`, or a ClusterIP."""
    services = allocate_services(cluster, net)
    if is_service_selector(item):
        parts = item.split("/")
        if len(parts) != 3:
            raise InputError([Problem(None, "", flag, f"{item!r}: expected svc/NS/NAME")])
        key = f"{parts[1]}/{parts[2]}"
        for s in services:
            if s.key == key:
                return s
        raise InputError([Problem(None, "", flag, f"{item!r}: no Service {key}")])
    for s in services:
        if item in (s.spec.cluster_ip, *s.spec.cluster_ips):
            return s
    raise InputError([Problem(None, "", flag, f"{item!r} is no Service's ClusterIP")])


def hops(
    cluster: Cluster,
    placement: Placement,
    pods: list[PodEndpoint],
    svc: Service,
    asked: list[PortProto] | None,
) -> list[Hop]:
    """Every (Service port asked, ready endpoint) pair with its resolved target port.
    `asked` None: every port of the Service."""
    by_key = {p.key: p for p in pods}
    views = pod_views(cluster, placement.pod_ip, placement.pod_node, statically_ready)
    mini = Cluster(
        namespaces=cluster.namespaces,
        nodes=cluster.nodes,
        pods=cluster.pods,
        policies=(),
        services=(svc,),
        endpoint_slices=tuple(
            s
            for s in cluster.endpoint_slices
            if s.metadata.namespace == svc.metadata.namespace
            and s.service_name == svc.metadata.name
        ),
    )
    slices, _ = desired(mini, views)
    return through_slices(svc, slices, by_key, asked)


def through_slices(
    svc: Service,
    slices: Iterable[EndpointSlice],
    pods: Mapping[str, PodEndpoint],
    asked: list[PortProto] | None,
) -> list[Hop]:
    """The hops of `svc` over the given slices (`pods` by key): the slice port with the
    Service port's name and protocol gives the number, as kube-proxy reads it; endpoints
    that are not ready, or whose pod is not among `pods`, are left out. An endpoint
    without a targetRef (a selectorless Service's own slices) is the pod holding its address,
    as the packets find it. A live cluster's stored slices (its control plane's readiness)
    go through here as they are."""
    slices = list(slices)
    by_ip: dict[str, PodEndpoint] | None = None  # built for a slice without targetRefs only
    out = []
    for sp in svc.spec.ports:
        if asked is not None and PortProto(sp.port, sp.protocol) not in asked:
            continue
        for s in slices:
            number = next(
                (
                    p.port
                    for p in s.ports
                    if (p.name or "") == (sp.name or "") and p.protocol == sp.protocol
                ),
                None,
            )
            if number is None:
                continue
            for e in s.endpoints:
                ref = e.target_ref
                if ref is not None:
                    pod = pods.get(f"{ref.namespace}/{ref.name}")
                else:
                    if by_ip is None:
                        by_ip = {p.ip: p for p in pods.values() if not p.host_network}
                    pod = by_ip.get(e.addresses[0])
                if pod is None or not e.ready:
                    continue
                out.append(Hop(svc, sp, pod, PortProto(number, sp.protocol)))
    return out
