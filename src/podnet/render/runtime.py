"""runtime.json: what a live cluster runs, for the processes that serve it (the workload
stand-in, `podnet exec`, `podnet probe`) — the one schema of that file, defined once.

`build` derives it from the snapshot, the placement and the kernel names (pure); `dumps`
writes it and `parse`/`load` read it back into the same immutable values. The reconciler
writes the file after a sync; nothing else spells its fields.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podnet.render import kernel_names
from podnet.state.files import StateFiles
from podnet.state.network import NetworkConfig

if TYPE_CHECKING:  # the readers of the file (the stand-in, exec) need no model at all
    from podnet.model.cluster import Cluster
    from podnet.model.pod import Pod as PodObject
    from podnet.state.placement import Placement


class RuntimeFileError(Exception):
    """runtime.json is missing or malformed (one line, for the user)."""


@dataclass(frozen=True)
class Port:
    name: str | None
    port: int
    protocol: str  # TCP | UDP | SCTP


@dataclass(frozen=True)
class Container:
    name: str
    ports: tuple[Port, ...] = ()


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    node: str
    ip: str
    netns: str  # the node's namespace for hostNetwork pods
    host_network: bool = False
    annotations: Mapping[str, str] = field(default_factory=dict)
    containers: tuple[Container, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Node:
    name: str
    ip: str
    netns: str
    pod_cidr: str


@dataclass(frozen=True)
class Runtime:
    cluster: str
    mode: str
    dns_ip: str
    dns_domain: str
    fabric_netns: str
    internet_netns: str
    internet_ip: str
    nodes: tuple[Node, ...]
    pods: tuple[Pod, ...]
    digest: str = (
        ""  # sha256 of the file it was read from: tells a reloaded daemon from a stale one
    )

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)

    def pod(self, key: str) -> Pod | None:
        return next((p for p in self.pods if p.key == key), None)


# --- derived from the cluster ------------------------------------------------------------
def build(
    cluster: Cluster,
    placement: Placement,
    cluster_name: str,
    mode: str,
    net: NetworkConfig | None = None,
) -> Runtime:
    from podnet.render.topology import internet_ip

    net = net or NetworkConfig()
    nodes = tuple(
        Node(
            name=n.metadata.name,
            ip=placement.node_ip[n.metadata.name],
            netns=kernel_names.node_netns(cluster_name, n.metadata.name),
            pod_cidr=str(placement.node_cidr[n.metadata.name]),
        )
        for n in cluster.nodes
    )
    return Runtime(
        cluster=cluster_name,
        mode=mode,
        dns_ip=net.dns_ip,
        dns_domain=net.domain,
        fabric_netns=kernel_names.fabric_netns(cluster_name),
        internet_netns=kernel_names.internet_netns(cluster_name),
        internet_ip=internet_ip(net),
        nodes=nodes,
        pods=tuple(_pod(p, placement, cluster_name) for p in cluster.pods),
    )


def _pod(p: PodObject, placement: Placement, cluster_name: str) -> Pod:
    from podnet.state.placement import pod_key

    key = pod_key(p)
    node = placement.pod_node[key]
    host = bool(p.spec.host_network)
    sidecars = [c for c in p.spec.init_containers if c.restart_policy == "Always"]
    return Pod(
        namespace=key[0],
        name=key[1],
        node=node,
        ip=placement.pod_ip[key],
        netns=kernel_names.node_netns(cluster_name, node)
        if host
        else kernel_names.pod_netns(cluster_name, *key),
        host_network=host,
        annotations=dict(sorted(p.metadata.annotations.items())),
        containers=tuple(
            Container(
                c.name,
                tuple(Port(q.name, q.container_port, q.protocol) for q in c.ports),
            )
            for c in (*p.spec.containers, *sidecars)
        ),
    )


# --- the file ----------------------------------------------------------------------------
def to_doc(r: Runtime) -> dict[str, Any]:
    return {
        "cluster": r.cluster,
        "mode": r.mode,
        "dns": {"ip": r.dns_ip, "domain": r.dns_domain},
        "fabric": {"netns": r.fabric_netns},
        "internet": {"netns": r.internet_netns, "ip": r.internet_ip},
        "nodes": [
            {"name": n.name, "ip": n.ip, "netns": n.netns, "podCIDR": n.pod_cidr} for n in r.nodes
        ],
        "pods": [
            {
                "namespace": p.namespace,
                "name": p.name,
                "node": p.node,
                "ip": p.ip,
                "netns": p.netns,
                "hostNetwork": p.host_network,
                "annotations": dict(p.annotations),
                "containers": [
                    {
                        "name": c.name,
                        "ports": [
                            {"name": q.name, "port": q.port, "protocol": q.protocol}
                            for q in c.ports
                        ],
                    }
                    for c in p.containers
                ],
            }
            for p in r.pods
        ],
    }


def dumps(r: Runtime) -> str:
    return json.dumps(to_doc(r), indent=2) + "\n"


def parse(doc: dict[str, Any], digest: str = "") -> Runtime:
    """The inverse of to_doc: every field it writes is required here."""
    return Runtime(
        cluster=doc["cluster"],
        mode=doc["mode"],
        dns_ip=doc["dns"]["ip"],
        dns_domain=doc["dns"]["domain"],
        fabric_netns=doc["fabric"]["netns"],
        internet_netns=doc["internet"]["netns"],
        internet_ip=doc["internet"]["ip"],
        nodes=tuple(Node(n["name"], n["ip"], n["netns"], n["podCIDR"]) for n in doc["nodes"]),
        pods=tuple(_parse_pod(p) for p in doc["pods"]),
        digest=digest,
    )


def _parse_pod(p: dict[str, Any]) -> Pod:
    return Pod(
        namespace=p["namespace"],
        name=p["name"],
        node=p["node"],
        ip=p["ip"],
        netns=p["netns"],
        host_network=bool(p["hostNetwork"]),
        annotations=dict(p["annotations"]),
        containers=tuple(
            Container(
                c["name"],
                tuple(Port(q["name"], int(q["port"]), str(q["protocol"])) for q in c["ports"]),
            )
            for c in p["containers"]
        ),
    )


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(root: Path) -> Runtime:
    path = StateFiles(root).runtime
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RuntimeFileError(f"{path} does not exist") from None
    try:
        return parse(json.loads(raw), hashlib.sha256(raw).hexdigest())
    except (ValueError, KeyError, TypeError) as e:
        raise RuntimeFileError(f"{path}: malformed: {e!r}") from None
