"""runtime.json documents built by hand, for pure tests of its readers (the daemon's plan,
`exec` targets, probe expectations): no namespace exists behind them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from podnet.render.topology import internet_ip
from podnet.state.network import NetworkConfig


def runtime_doc(
    cluster: str,
    nodes: Iterable[dict[str, Any]] = (),
    pods: Iterable[dict[str, Any]] = (),
    fabric: str | None = None,
    internet: str | None = None,
) -> dict[str, Any]:
    """A whole runtime.json document (podnet.render.runtime's schema) around these nodes and
    pods (`pod_entry`); everything else as `up` would write it for the default network."""
    net = NetworkConfig()
    return {
        "cluster": cluster,
        "mode": "host-gw",
        "dns": {"ip": net.dns_ip, "domain": net.domain},
        "fabric": {"netns": fabric or f"{cluster}-fabric"},
        "internet": {"netns": internet or f"{cluster}-internet", "ip": internet_ip(net)},
        "nodes": [{"podCIDR": "10.244.0.0/24", **n} for n in nodes],
        "pods": list(pods),
    }


def pod_entry(
    namespace: str,
    name: str,
    node: str,
    pod_ip: str,
    netns: str,
    containers: dict[str, list[tuple[Any, ...]]],
    annotations: dict[str, str] | None = None,
    host_network: bool = False,
) -> dict[str, Any]:
    """One pod of runtime.json; containers maps a name to (port, protocol[, port name])."""
    return {
        "namespace": namespace,
        "name": name,
        "node": node,
        "ip": pod_ip,
        "netns": netns,
        "hostNetwork": host_network,
        "annotations": annotations or {},
        "declaredUnready": False,
        "containers": [
            {
                "name": c,
                "ports": [
                    {"name": (rest or [None])[0], "port": p, "protocol": proto}
                    for p, proto, *rest in ports
                ],
                "readiness": None,
            }
            for c, ports in containers.items()
        ],
    }
