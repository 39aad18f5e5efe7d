"""runtime.json: what the daemon (workload stand-in, DNS, exec) needs to know of a live cluster.

A pure function of the snapshot, the placement and the plan's naming; `up` writes its result
to `<statedir>/runtime.json` once the datapath is applied.
"""

from __future__ import annotations

from typing import Any

from podnet.model.cluster import Cluster
from podnet.model.pod import Pod
from podnet.render import names
from podnet.render.topology import internet_ip
from podnet.state.network import NetworkConfig
from podnet.state.placement import Placement, pod_key


def runtime_doc(
    cluster: Cluster,
    placement: Placement,
    cluster_name: str,
    mode: str,
    net: NetworkConfig | None = None,
) -> dict[str, Any]:
    net = net or NetworkConfig()
    nodes = [
        {
            "name": n.metadata.name,
            "ip": placement.node_ip[n.metadata.name],
            "netns": names.node_netns(cluster_name, n.metadata.name),
            "podCIDR": str(placement.node_cidr[n.metadata.name]),
        }
        for n in cluster.nodes
    ]
    return {
        "cluster": cluster_name,
        "mode": mode,
        "dns": {"ip": net.dns_ip, "domain": net.domain},
        "fabric": {"netns": names.fabric_netns(cluster_name)},
        "internet": {"netns": names.internet_netns(cluster_name), "ip": internet_ip(net)},
        "nodes": nodes,
        "pods": [_pod(p, placement, cluster_name) for p in cluster.pods],
    }


def _pod(p: Pod, placement: Placement, cluster_name: str) -> dict[str, Any]:
    key = pod_key(p)
    node = placement.pod_node[key]
    host = bool(p.spec.host_network)
    sidecars = [c for c in p.spec.init_containers if c.restart_policy == "Always"]
    return {
        "namespace": key[0],
        "name": key[1],
        "node": node,
        "ip": placement.pod_ip[key],
        "netns": names.node_netns(cluster_name, node)
        if host
        else names.pod_netns(cluster_name, *key),
        "hostNetwork": host,
        "annotations": dict(sorted(p.metadata.annotations.items())),
        "containers": [
            {
                "name": c.name,
                "ports": [
                    {"name": port.name, "port": port.container_port, "protocol": port.protocol}
                    for port in c.ports
                ],
            }
            for c in (*p.spec.containers, *sidecars)
        ],
    }
