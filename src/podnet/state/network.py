"""The address plan of a cluster (DESIGN.md, "Network layout"); every range configurable."""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Any

IPv4Net = ipaddress.IPv4Network

MODES = ("host-gw", "vxlan")  # between nodes: routes via node IPs, or a VXLAN overlay

CLUSTER_CIDR = ipaddress.IPv4Network("10.244.0.0/16")
SERVICE_CIDR = ipaddress.IPv4Network("10.96.0.0/12")
NODE_NETWORK = ipaddress.IPv4Network("172.18.0.0/16")
INTERNET_NETWORK = ipaddress.IPv4Network("203.0.113.0/24")
LB_POOL = ipaddress.IPv4Network("172.18.255.0/24")


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    cluster_cidr: IPv4Net = CLUSTER_CIDR
    node_prefix: int = 24
    service_cidr: IPv4Net = SERVICE_CIDR
    dns_ip: str = "10.96.0.10"
    domain: str = "cluster.local"
    node_network: IPv4Net = NODE_NETWORK
    internet_network: IPv4Net = INTERNET_NETWORK
    lb_pool: IPv4Net = LB_POOL

    @property
    def max_nodes(self) -> int:
        return 2 ** (self.node_prefix - self.cluster_cidr.prefixlen)


def to_meta(net: NetworkConfig) -> dict[str, str]:
    """The store's meta `config`: every value as a string."""
    return {k: str(v) for k, v in dataclasses.asdict(net).items()}


def from_meta(meta: dict[str, str] | None) -> NetworkConfig:
    """The inverse of to_meta; fields it lacks keep their defaults."""
    if not meta:
        return NetworkConfig()
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(NetworkConfig):
        if f.name not in meta:
            continue
        default = f.default
        if isinstance(default, ipaddress.IPv4Network):
            kw[f.name] = ipaddress.IPv4Network(meta[f.name])
        elif isinstance(default, int):
            kw[f.name] = int(meta[f.name])
        else:
            kw[f.name] = meta[f.name]
    return NetworkConfig(**kw)
