"""Who an address is, which Service an address:port is, which policy a log tag names: the
flow log's questions, answered from one cluster snapshot (pure).

Addresses: a pod's IP (not a hostNetwork pod's: that is its node's), a node's address on
the fabric, the internet namespace's address, else "outside". Services: a ClusterIP,
external IP or load-balancer address with a Service port, or a node address with a
nodePort (kube-proxy matches node ports on every local address of the node). Policies: a
tag's hash is the hash of "ns/name" (render/flow_log), mapped back through the cluster's
own policies; a blocked attempt is attributed to the policies that isolate the rejecting
pod in the rejecting direction and only those (each of them would have had to admit it:
"the union of the rules of the policies that select the pod", the NetworkPolicy API).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from podnet.model.cluster import Cluster
from podnet.policy.endpoints import PodEndpoint
from podnet.policy.engine import Engine, policy_name
from podnet.policy.verdict import Direction
from podnet.render.kernel_names import nft_hash

Kind = Literal["pod", "node", "internet", "outside"]
PROTOCOLS = {6: "TCP", 17: "UDP", 132: "SCTP", 1: "ICMP"}


@dataclass(frozen=True, slots=True)
class Who:
    name: str  # "ns/pod", "node/<name>", "internet", or the address itself
    kind: Kind


@dataclass(frozen=True, slots=True)
class ServiceHit:
    name: str  # "ns/name"
    port: str  # the Service port's name, or its number


@dataclass
class Directory:
    """The lookups of one snapshot."""

    pods: dict[str, str] = field(default_factory=dict)  # ip -> ns/pod
    nodes: dict[str, str] = field(default_factory=dict)  # ip -> node name
    internet: str = ""
    # (ip, protocol, port) -> Service: ClusterIPs, external IPs, load-balancer addresses
    service_ips: dict[tuple[str, str, int], ServiceHit] = field(default_factory=dict)
    node_ports: dict[tuple[str, int], ServiceHit] = field(default_factory=dict)
    policies: dict[str, str] = field(default_factory=dict)  # hash of ns/name -> ns/name
    pod_hashes: dict[str, str] = field(default_factory=dict)  # hash of ns/pod -> ns/pod
    # (ns/pod, direction) -> the policies isolating the pod there (absent: not isolated)
    isolating: dict[tuple[str, Direction], tuple[str, ...]] = field(default_factory=dict)

    def who(self, ip: str) -> Who:
        if ip in self.pods:
            return Who(self.pods[ip], "pod")
        if ip in self.nodes:
            return Who(f"node/{self.nodes[ip]}", "node")
        if ip == self.internet:
            return Who("internet", "internet")
        return Who(ip, "outside")

    def service(self, ip: str, proto: int, port: int) -> ServiceHit | None:
        """The Service a client addressed at ip:port (None: an ordinary address)."""
        name = PROTOCOLS.get(proto, "")
        hit = self.service_ips.get((ip, name, port))
        if hit is None and ip in self.nodes:
            hit = self.node_ports.get((name, port))
        return hit

    def policy(self, digest: str) -> str | None:
        return self.policies.get(digest)

    def pod_of_hash(self, digest: str) -> str | None:
        return self.pod_hashes.get(digest)

    def isolated_by(self, pod: str, direction: Direction) -> tuple[str, ...]:
        """The policies isolating `pod` for `direction` (empty: not isolated)."""
        return self.isolating.get((pod, direction), ())


def directory(
    engine: Engine, nodes: dict[str, str], internet: str, pods: Iterable[PodEndpoint] = ()
) -> Directory:
    """The lookups of the engine's cluster; `nodes` {node name: its address}."""
    d = Directory(internet=internet, nodes={ip: n for n, ip in nodes.items()})
    for p in pods or engine.pods:
        if p.host_network:
            continue
        d.pods[p.ip] = p.key
        d.pod_hashes[nft_hash(p.key)] = p.key
        for direction in ("ingress", "egress"):
            pols = engine.selecting(p, direction)
            if pols:
                d.isolating[(p.key, direction)] = tuple(sorted(map(policy_name, pols)))
    for pol in engine.cluster.policies:
        d.policies[nft_hash(policy_name(pol))] = policy_name(pol)
    _services(d, engine.cluster)
    return d


def _services(d: Directory, cluster: Cluster) -> None:
    for svc in cluster.services:
        name = f"{svc.metadata.namespace or 'default'}/{svc.metadata.name}"
        spec = svc.spec
        addresses = [a for a in (spec.cluster_ip, *spec.external_ips) if a and a != "None"]
        addresses += [i.ip for i in svc.status.load_balancer.ingress if i.ip]
        for sp in spec.ports:
            hit = ServiceHit(name, sp.name or str(sp.port))
            for ip in addresses:
                d.service_ips[(ip, sp.protocol, sp.port)] = hit
            if sp.node_port is not None:
                d.node_ports[(sp.protocol, sp.node_port)] = hit
