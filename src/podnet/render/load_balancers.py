"""Which nodes answer each LoadBalancer address: what the fabric routes (MetalLB's BGP mode
announces the address from these nodes; the fabric spreads flows over them, ECMP).

externalTrafficPolicy Cluster: every node (any node forwards to any endpoint). Local:
only the nodes that hold a usable endpoint of the Service, as a cloud load balancer learns
from the healthCheckNodePort (a node answering 503 gets no traffic), so that no client is
sent to a node that would drop it. The address itself comes from
status.loadBalancer.ingress[].ip, which the allocator writes.
"""

from __future__ import annotations

from collections.abc import Mapping

from podnet.model.cluster import Cluster
from podnet.model.service import Service
from podnet.render.service_ports import service_ports, usable


def lb_routes(cluster: Cluster, node_ip: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """LB address -> the node IPs (sorted) that may answer it; none: no route."""
    out: dict[str, set[str]] = {}
    lbs = [s for s in cluster.services if s.spec.type == "LoadBalancer"]
    if not lbs:
        return {}
    ports = service_ports(lbs, cluster.endpoint_slices)
    for svc in lbs:
        ips = [i.ip for i in svc.status.load_balancer.ingress if i.ip]
        if not ips:
            continue
        if svc.spec.traffic_policy == "Local":
            own = [p for p in ports if (p.namespace, p.service) == _key(svc)]
            nodes = {e.node for p in own for e in usable(p.endpoints) if e.node in node_ip}
        else:
            nodes = set(node_ip)
        for ip in ips:
            out.setdefault(ip, set()).update(node_ip[n] for n in nodes if n)
    return {ip: tuple(sorted(gws)) for ip, gws in out.items() if gws}


def _key(svc: Service) -> tuple[str, str]:
    return (svc.metadata.namespace or "default", svc.metadata.name or "")
