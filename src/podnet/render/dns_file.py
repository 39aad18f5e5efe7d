"""dns.json: what the cluster DNS server serves, and where — the one schema of that file.

The reconciler writes it after a sync that changed it (atomically); the DNS server
(`python -m podnet.dns`) reloads it on SIGHUP; the workload stand-in reads `servers` to leave
port 53 of those pods to the DNS server.

    {"serial": 12, "domain": "cluster.local.",
     "servers": [{"pod": "kube-system/coredns-0", "netns": "...", "ip": "10.244.1.2"}],
     "zone": "<master-file text of every record>"}

The DNS pods are the kube-dns Service's: kube-system pods labelled `k8s-app: kube-dns`
(the label kubeadm's CoreDNS Deployment carries and the Service selects).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podnet.render import kernel_names
from podnet.render.dns_zone import PodAddress, Zone, render_zone
from podnet.state.dns_identity import DNS_PORT as DNS_PORT  # re-exported: the server binds it
from podnet.state.dns_identity import is_dns_pod
from podnet.state.files import StateFiles

if TYPE_CHECKING:
    from podnet.model.cluster import Cluster
    from podnet.state.network import NetworkConfig
    from podnet.state.placement import Placement


class DnsFileError(Exception):
    """dns.json is missing or malformed (one line)."""


@dataclass(frozen=True)
class Server:
    """A pod the DNS server answers in: port 53, UDP and TCP, inside its namespace."""

    pod: str  # ns/name
    netns: str
    ip: str


@dataclass(frozen=True)
class DnsFile:
    zone: Zone
    servers: tuple[Server, ...]
    text: str = ""  # the zone's master-file text, as read or made (dns_records); "": zone.text()

    def dumps(self) -> str:
        doc = {
            "serial": self.zone.serial,
            "domain": self.zone.domain,
            "servers": [{"pod": s.pod, "netns": s.netns, "ip": s.ip} for s in self.servers],
            "zone": self.text or self.zone.text(),
        }
        return json.dumps(doc, indent=1) + "\n"


def build(
    cluster: Cluster,
    placement: Placement,
    cluster_name: str,
    net: NetworkConfig | None,
    serial: int,
) -> DnsFile:
    """The records of the cluster and the pods that serve them, from scratch (the
    reference; the reconciler updates them per Service: render.dns_records)."""
    from podnet.state.network import NetworkConfig

    net = net or NetworkConfig()
    zone = render_zone(
        cluster.services,
        cluster.endpoint_slices,
        pod_addresses(cluster, placement),
        net.domain,
        net.dns_ip,
        serial,
    )
    return DnsFile(zone, servers(cluster, placement, cluster_name))


def pod_addresses(cluster: Cluster, placement: Placement) -> list[PodAddress]:
    """What the pods give the zone (their A records)."""
    from podnet.state.placement import pod_key

    return [
        PodAddress(key[0], placement.pod_ip[key])
        for p in cluster.pods
        if (key := pod_key(p)) in placement.pod_ip
    ]


def servers(cluster: Cluster, placement: Placement, cluster_name: str) -> tuple[Server, ...]:
    """The DNS pods (kube-system's, state.dns_identity), in the cluster's order."""
    from podnet.state.placement import pod_key

    return tuple(
        Server(
            f"{key[0]}/{key[1]}", kernel_names.pod_netns(cluster_name, *key), placement.pod_ip[key]
        )
        for p in cluster.pods
        if is_dns_pod(p.metadata.namespace, p.metadata.labels, p.spec.host_network)
        and (key := pod_key(p)) in placement.pod_ip
    )


def path(root: Path) -> Path:
    return StateFiles(root).dns


def load(root: Path) -> DnsFile:
    try:
        doc: dict[str, Any] = json.loads(path(root).read_text())
        servers = tuple(Server(s["pod"], s["netns"], s["ip"]) for s in doc["servers"])
        zone = Zone(doc["domain"], "", (), int(doc["serial"]))
        return DnsFile(zone, servers, str(doc["zone"]))
    except FileNotFoundError:
        raise DnsFileError(f"{path(root)}: no such file (no sync wrote it yet)") from None
    except (ValueError, KeyError, TypeError) as e:
        raise DnsFileError(f"{path(root)}: malformed: {type(e).__name__}: {e}") from None


def server_netns(root: Path) -> frozenset[str]:
    """The namespaces whose port 53 belongs to the DNS server (empty without the file)."""
    try:
        return frozenset(s.netns for s in load(root).servers)
    except DnsFileError:
        return frozenset()
