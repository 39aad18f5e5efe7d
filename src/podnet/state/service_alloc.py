"""What the API server and a load-balancer controller write into a Service: its ClusterIP,
its node ports, its health-check node port and its load-balancer address.

They are written into the stored object (as the API server mutates a Service on create),
so `get services -o yaml` shows them and every later sync, the kube-proxy rules and the DNS
zone read them back unchanged. An update that leaves a field out keeps what the Service
had (kubectl apply's merge keeps server-set fields), a pinned value is honoured, and an
invalid or taken one is refused with the API server's message, naming file and object.

Free addresses are chosen by a hash of the Service's identity with linear probing, so that
the same input gives the same addresses in `analyze` and in a live cluster. As KEP-3070
does, dynamic ClusterIPs come from the upper part of the range, leaving the lower band
(1/16 of the range, 16 to 256 addresses) to pinned ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
from collections.abc import Mapping, Sequence

from podnet.model.cluster import Cluster
from podnet.model.errors import InputError, Problem
from podnet.model.kinds import identity
from podnet.model.service import (
    NODE_PORT_RANGE,
    LoadBalancerIngress,
    LoadBalancerStatus,
    Service,
    ServicePort,
    ServiceStatus,
)
from podnet.state.network import NetworkConfig

DNS_SERVICE = ("kube-system", "kube-dns")


def _slot(text: str, size: int) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % size


class _Pool:
    """Integers [lo, hi] handed out by hash with linear probing."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.taken: dict[int, str] = {}

    def take(self, value: int, owner: str) -> str | None:
        """Claim `value`; the owner already holding it, if any."""
        holder = self.taken.get(value)
        if holder is not None and holder != owner:
            return holder
        self.taken[value] = owner
        return None

    def pick(self, owner: str, lo: int | None = None) -> int | None:
        lo = self.lo if lo is None else lo
        size = self.hi - lo + 1
        start = _slot(owner, size)
        for i in range(size):
            value = lo + (start + i) % size
            if value not in self.taken:
                self.taken[value] = owner
                return value
        return None


class _Allocator:
    def __init__(self, cluster: Cluster, net: NetworkConfig) -> None:
        self.cluster = cluster
        self.net = net
        cidr = net.service_cidr
        base = int(cidr.network_address)
        self.ip_base = base
        self.ips = _Pool(base + 1, int(cidr.broadcast_address) - 1)
        band = min(max(16, cidr.num_addresses // 16), 256)
        self.dynamic_from = min(base + band, self.ips.hi)
        self.node_ports = _Pool(*NODE_PORT_RANGE)
        pool = net.lb_pool
        self.lb = _Pool(int(pool.network_address) + 1, int(pool.broadcast_address) - 1)
        self.problems: list[Problem] = []

    def problem(self, svc: Service, path: str, message: str) -> None:
        ident = identity("Service", svc.metadata.namespace, svc.metadata.name)
        self.problems.append(Problem(self.cluster.origins.get(ident), ident, path, message))

    # -- ClusterIP ---------------------------------------------------------------------------

    def claim_ip(self, svc: Service, ip: str, path: str) -> bool:
        addr = ipaddress.IPv4Address(ip)
        cidr = self.net.service_cidr
        if addr not in cidr or addr in (cidr.network_address, cidr.broadcast_address):
            self.problem(
                svc,
                path,
                f'Invalid value: "{ip}": provided IP is not in the valid range. '
                f"The range of valid IPs is {cidr}",
            )
            return False
        holder = self.ips.take(int(addr), svc.key)
        if holder is not None:
            self.problem(
                svc,
                path,
                f'Invalid value: "{ip}": provided IP is already allocated (to Service {holder})',
            )
            return False
        return True

    def cluster_ip(self, svc: Service, prev: Service | None) -> str | None:
        spec = svc.spec
        if spec.type == "ExternalName" or spec.headless:
            return spec.cluster_ip
        if spec.cluster_ip:
            self.claim_ip(svc, spec.cluster_ip, "spec.clusterIP")
            return spec.cluster_ip
        wanted = prev.spec.cluster_ip if prev is not None and not prev.spec.headless else None
        if wanted is None and (svc.metadata.namespace, svc.metadata.name) == DNS_SERVICE:
            wanted = self.net.dns_ip
        if (
            wanted is not None
            and ipaddress.IPv4Address(wanted) in self.net.service_cidr
            and self.ips.take(int(ipaddress.IPv4Address(wanted)), svc.key) is None
        ):
            return wanted
        value = self.ips.pick(svc.key, self.dynamic_from) or self.ips.pick(svc.key)
        if value is None:
            self.problem(
                svc, "spec.clusterIP", f"Internal error: range {self.net.service_cidr} is full"
            )
            return None
        return str(ipaddress.IPv4Address(value))

    # -- node ports ------------------------------------------------------------------------

    def ports(self, svc: Service, prev: Service | None) -> tuple[ServicePort, ...]:
        spec = svc.spec
        wants = spec.type == "NodePort" or (
            spec.type == "LoadBalancer" and spec.allocate_load_balancer_node_ports
        )
        if not wants:
            return spec.ports
        before = {(p.protocol, p.port): p.node_port for p in prev.spec.ports} if prev else {}
        out = []
        for i, p in enumerate(spec.ports):
            port = p.node_port or before.get((p.protocol, p.port))
            path = f"spec.ports[{i}].nodePort"
            if p.node_port is not None:
                if not NODE_PORT_RANGE[0] <= p.node_port <= NODE_PORT_RANGE[1]:
                    self.problem(
                        svc,
                        path,
                        f"Invalid value: {p.node_port}: provided port is not in the valid range. "
                        f"The range of valid ports is {NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}",
                    )
                    continue
                holder = self.node_ports.take(p.node_port, svc.key)
                if holder is not None:
                    self.problem(
                        svc,
                        path,
                        f"Invalid value: {p.node_port}: provided port is already allocated "
                        f"(to Service {holder})",
                    )
                    continue
            elif port is None or self.node_ports.take(port, svc.key) is not None:
                port = self.node_ports.pick(f"{svc.key}:{p.protocol}/{p.port}")
                if port is None:
                    self.problem(svc, path, "Internal error: the node port range is full")
                    continue
            out.append(p.model_copy(update={"node_port": port}))
        return tuple(out)

    def health_port(self, svc: Service, prev: Service | None) -> int | None:
        spec = svc.spec
        if not (spec.type == "LoadBalancer" and spec.external_traffic_policy == "Local"):
            return None
        if spec.health_check_node_port is not None:
            holder = self.node_ports.take(spec.health_check_node_port, svc.key)
            if holder is not None:
                self.problem(
                    svc,
                    "spec.healthCheckNodePort",
                    f"Invalid value: {spec.health_check_node_port}: provided port is already "
                    f"allocated (to Service {holder})",
                )
            return spec.health_check_node_port
        old = prev.spec.health_check_node_port if prev else None
        if old is not None and self.node_ports.take(old, svc.key) is None:
            return old
        return self.node_ports.pick(f"{svc.key}:health")

    # -- load-balancer address -------------------------------------------------------------

    def lb_ip(self, svc: Service, prev: Service | None) -> str | None:
        spec = svc.spec
        if spec.type != "LoadBalancer" or spec.load_balancer_class is not None:
            return None  # another class's load balancer is not podnet's to give
        pool = self.net.lb_pool
        if spec.load_balancer_ip:
            addr = ipaddress.IPv4Address(spec.load_balancer_ip)
            if addr not in pool or addr in (pool.network_address, pool.broadcast_address):
                self.problem(
                    svc,
                    "spec.loadBalancerIP",
                    f'Invalid value: "{addr}": not in the load-balancer pool {pool}',
                )
                return None
            holder = self.lb.take(int(addr), svc.key)
            if holder is not None:
                self.problem(
                    svc,
                    "spec.loadBalancerIP",
                    f'Invalid value: "{addr}": already allocated (to Service {holder})',
                )
            return str(addr)
        old = [i.ip for i in prev.status.load_balancer.ingress if i.ip] if prev else []
        if (
            old
            and ipaddress.IPv4Address(old[0]) in pool
            and self.lb.take(int(ipaddress.IPv4Address(old[0])), svc.key) is None
        ):
            return old[0]
        value = self.lb.pick(svc.key)
        if value is None:
            self.problem(svc, "status.loadBalancer", f"the load-balancer pool {pool} is exhausted")
            return None
        return str(ipaddress.IPv4Address(value))


def allocate_services(
    cluster: Cluster, net: NetworkConfig, previous: Mapping[str, Service] | None = None
) -> tuple[Service, ...]:
    """The cluster's Services with every allocated field filled. `previous` maps `ns/name`
    to the Service as stored before (a live cluster): what it had, it keeps. Raises
    InputError with every problem; nothing is allocated then."""
    previous = previous or {}
    alloc = _Allocator(cluster, net)
    services: Sequence[Service] = cluster.services
    # Pinned values first, so that a dynamic pick never takes an address a later Service
    # of the same input pins (the API server would refuse that Service instead).
    order = sorted(
        services,
        key=lambda s: (
            not s.spec.cluster_ip,
            (s.metadata.namespace, s.metadata.name) != DNS_SERVICE,
        ),
    )
    done: dict[str, Service] = {}
    for svc in order:
        prev = previous.get(svc.key)
        ip = alloc.cluster_ip(svc, prev)
        ports = alloc.ports(svc, prev)
        health = alloc.health_port(svc, prev)
        lb = alloc.lb_ip(svc, prev)
        spec_update: dict[str, object] = {"ports": ports, "health_check_node_port": health}
        if ip is not None:
            spec_update["cluster_ip"] = ip
            spec_update["cluster_ips"] = (ip,)
        status = svc.status
        if lb is not None:
            status = ServiceStatus(
                load_balancer=LoadBalancerStatus(ingress=(LoadBalancerIngress(ip=lb),))
            )
        elif svc.spec.type != "LoadBalancer":
            status = ServiceStatus()
        done[svc.key] = svc.model_copy(
            update={"spec": svc.spec.model_copy(update=spec_update), "status": status}
        )
    if alloc.problems:
        raise InputError(alloc.problems)
    return tuple(done[s.key] for s in services)


def with_services(
    cluster: Cluster, net: NetworkConfig, previous: Mapping[str, Service] | None = None
) -> Cluster:
    """The cluster with its Services allocated (see allocate_services)."""
    if not cluster.services:
        return cluster
    return dataclasses.replace(cluster, services=allocate_services(cluster, net, previous))
