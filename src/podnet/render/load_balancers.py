"""Which nodes answer each external address of a Service (LoadBalancer ingress IPs and
spec.externalIPs): what the fabric routes (MetalLB's BGP mode announces a LoadBalancer
address from these nodes; the fabric spreads flows over them, ECMP). An externalIP is
"routed to one or more cluster nodes" by the cluster administrator (the Service API
reference); here the fabric does it, the same way.

externalTrafficPolicy Cluster (and a ClusterIP Service's externalIPs, which have no
policy): every node (any node forwards to any endpoint). Local: only the nodes that hold a
usable endpoint of the Service, as a cloud load balancer learns from the
healthCheckNodePort (a node answering 503 gets no traffic), so that no client is sent to a
node that would drop it. A Local Service without any usable endpoint is routed to every
node, whose rules reject the connection at once (kube-proxy's verdict for a Service
without endpoints, `no-endpoint-services`); without a route the client waited for ARP on
the fabric until it timed out. The LoadBalancer address itself comes from
status.loadBalancer.ingress[].ip, which the allocator writes.
"""

from __future__ import annotations

from collections.abc import Mapping

from podnet.model.cluster import Cluster
from podnet.model.service import Service
from podnet.render.service_ports import service_ports, usable


def external_routes(cluster: Cluster, node_ip: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """External address -> the node IPs (sorted) that may answer it."""
    out: dict[str, set[str]] = {}
    services = [s for s in cluster.services if external_addresses(s)]
    if not services or not node_ip:
        return {}
    local = [s for s in services if s.spec.external and s.spec.traffic_policy == "Local"]
    ports = service_ports(local, cluster.endpoint_slices) if local else ()
    every = set(node_ip)
    is_local = {id(s) for s in local}
    for svc in services:
        nodes = every
        if id(svc) in is_local:
            own = [p for p in ports if (p.namespace, p.service) == _key(svc)]
            held = {e.node for p in own for e in usable(p.endpoints) if e.node in node_ip}
            nodes = {n for n in held if n} or every  # no endpoint anywhere: every node rejects
        for ip in external_addresses(svc):
            out.setdefault(ip, set()).update(node_ip[n] for n in nodes)
    return {ip: tuple(sorted(gws)) for ip, gws in out.items() if gws}


def external_addresses(svc: Service) -> list[str]:
    """spec.externalIPs (not for headless or ExternalName Services: no rules), then the
    LoadBalancer ingress IPs."""
    if svc.spec.type == "ExternalName" or svc.spec.headless:
        return []
    ips = [str(ip) for ip in svc.spec.external_ips]
    if svc.spec.type == "LoadBalancer":
        ips += [i.ip for i in svc.status.load_balancer.ingress if i.ip]
    return ips


def shapes_topology(svc: Service) -> bool:
    """Whether the topology plan or runtime.json read this Service (and its slices): its
    external addresses are routed on the fabric (`external_routes`), its
    healthCheckNodePort is answered on every node (render.runtime). A change of any other
    Service, or of its slices, leaves both as they were (the reconciler keeps them)."""
    return bool(external_addresses(svc)) or bool(svc.spec.health_check_node_port)


def _key(svc: Service) -> tuple[str, str]:
    return (svc.metadata.namespace or "default", svc.metadata.name or "")
