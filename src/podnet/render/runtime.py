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
class Probe:
    """A container's readiness probe as the kubelet runs it; a named port is resolved here
    (None: the container declares no such port, and the probe fails as the kubelet's does)."""

    action: str  # tcpSocket | httpGet | exec
    port: int | None = None
    host: str | None = None
    path: str = "/"
    scheme: str = "HTTP"
    command: tuple[str, ...] = ()
    initial_delay: int = 0
    period: int = 10
    timeout: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class Container:
    name: str
    ports: tuple[Port, ...] = ()
    readiness: Probe | None = None


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
    declared_unready: bool = False  # the manifest's status says Ready=False

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
class HealthCheck:
    """kube-proxy's healthCheckNodePort of one LoadBalancer Service with
    externalTrafficPolicy Local, on one node: served on the node's address, it tells a load
    balancer whether this node has endpoints of the Service (200) or not (503)."""

    namespace: str
    name: str
    node: str
    netns: str
    ip: str  # the node's address
    port: int
    local_endpoints: int


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
    health_checks: tuple[HealthCheck, ...] = ()
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
        health_checks=_health_checks(cluster, nodes),
    )


def _health_checks(cluster: Cluster, nodes: tuple[Node, ...]) -> tuple[HealthCheck, ...]:
    """Per node and Service with a healthCheckNodePort, its local ready endpoints (distinct
    addresses over the Service's ports, as kube-proxy counts them)."""
    from podnet.render.service_ports import service_ports

    hc = [s for s in cluster.services if s.spec.health_check_node_port]
    if not hc:
        return ()
    ports = service_ports(hc, cluster.endpoint_slices)
    out = []
    for svc in hc:
        ns, name = svc.metadata.namespace or "default", svc.metadata.name or ""
        own = [p for p in ports if (p.namespace, p.service) == (ns, name)]
        for n in nodes:
            local = {e.ip for p in own for e in p.endpoints if e.node == n.name and e.ready}
            port = svc.spec.health_check_node_port or 0
            out.append(HealthCheck(ns, name, n.name, n.netns, n.ip, port, len(local)))
    return tuple(out)


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
                _probe(p, c.readiness_probe) if c.readiness_probe else None,
            )
            for c in (*p.spec.containers, *sidecars)
        ),
        declared_unready=p.declared_unready,
    )


def _probe(p: PodObject, probe: Any) -> Probe:
    """The model's probe with its named port resolved over the pod's containers, as the
    kubelet resolves it (any container of the pod: they share the network namespace)."""
    action = probe.tcp_socket or probe.http_get
    port: int | None = None
    if action is not None:
        if isinstance(action.port, int):
            port = action.port
        else:
            port = next((q.container_port for _, q in p.all_ports if q.name == action.port), None)
    common = {
        "initial_delay": probe.initial_delay_seconds,
        "period": probe.period_seconds,
        "timeout": probe.timeout_seconds,
        "success_threshold": probe.success_threshold,
        "failure_threshold": probe.failure_threshold,
    }
    if probe.tcp_socket is not None:
        return Probe("tcpSocket", port, probe.tcp_socket.host, **common)
    if probe.http_get is not None:
        h = probe.http_get
        return Probe("httpGet", port, h.host, h.path, h.scheme, **common)
    return Probe("exec", command=tuple(probe.exec.command), **common)


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
                "declaredUnready": p.declared_unready,
                "containers": [
                    {
                        "name": c.name,
                        "ports": [
                            {"name": q.name, "port": q.port, "protocol": q.protocol}
                            for q in c.ports
                        ],
                        "readiness": _probe_doc(c.readiness),
                    }
                    for c in p.containers
                ],
            }
            for p in r.pods
        ],
        "healthChecks": [
            {
                "namespace": h.namespace,
                "name": h.name,
                "node": h.node,
                "netns": h.netns,
                "ip": h.ip,
                "port": h.port,
                "localEndpoints": h.local_endpoints,
            }
            for h in r.health_checks
        ],
    }


def _probe_doc(probe: Probe | None) -> dict[str, Any] | None:
    if probe is None:
        return None
    return {
        "action": probe.action,
        "port": probe.port,
        "host": probe.host,
        "path": probe.path,
        "scheme": probe.scheme,
        "command": list(probe.command),
        "initialDelaySeconds": probe.initial_delay,
        "periodSeconds": probe.period,
        "timeoutSeconds": probe.timeout,
        "successThreshold": probe.success_threshold,
        "failureThreshold": probe.failure_threshold,
    }


def _parse_probe(d: dict[str, Any] | None) -> Probe | None:
    if d is None:
        return None
    return Probe(
        action=str(d["action"]),
        port=None if d["port"] is None else int(d["port"]),
        host=d["host"],
        path=str(d["path"]),
        scheme=str(d["scheme"]),
        command=tuple(str(x) for x in d["command"]),
        initial_delay=int(d["initialDelaySeconds"]),
        period=int(d["periodSeconds"]),
        timeout=int(d["timeoutSeconds"]),
        success_threshold=int(d["successThreshold"]),
        failure_threshold=int(d["failureThreshold"]),
    )


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
        health_checks=tuple(
            HealthCheck(
                h["namespace"],
                h["name"],
                h["node"],
                h["netns"],
                h["ip"],
                int(h["port"]),
                int(h["localEndpoints"]),
            )
            for h in doc.get("healthChecks", ())  # absent in files written before them
        ),
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
                _parse_probe(c["readiness"]),
            )
            for c in p["containers"]
        ),
        declared_unready=bool(p["declaredUnready"]),
    )


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
