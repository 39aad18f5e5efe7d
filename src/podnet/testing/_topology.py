"""Helpers for tests of the daemon and of `podnet exec`, shipped with the package (like
mitmproxy's test helpers): a tiny hand-built cluster of network namespaces, wired the way
podnet wires pods (veth created inside the node's namespace, /32 route per pod on the node,
link-local gateway in the pod), and a runtime.json that describes it.

Everything lives in namespaces named `<prefix>-...`; nothing touches the root namespace.
Topology.delete() tolerates what is already gone; use it from a fixture finalizer.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podnet.daemon import supervisor
from podnet.datapath.netns import entered
from podnet.render.topology import internet_ip
from podnet.state.files import STATE_DIR_ENV
from podnet.state.network import NetworkConfig

GATEWAY = "169.254.1.1"


def unique_prefix() -> str:
    """Short enough that `<prefix>-<name>` stays readable; unique per test run."""
    return "pnt" + uuid.uuid4().hex[:6]


def ip(*args: str, netns: str | None = None) -> None:
    cmd = ["ip", *(("-n", netns) if netns else ()), *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")


def ip_batch(netns: str, commands: list[str]) -> None:
    """Several `ip` commands in one process (`ip -batch`), all inside `netns`."""
    r = subprocess.run(
        ["ip", "-n", netns, "-batch", "-"],
        input="\n".join(commands) + "\n",
        capture_output=True,
        text=True,
    )
    if r.returncode:
        raise RuntimeError(f"ip -n {netns} -batch failed: {r.stderr.strip()}")


@dataclass
class Topology:
    prefix: str = field(default_factory=unique_prefix)
    namespaces: list[str] = field(default_factory=list)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    pods: list[dict[str, Any]] = field(default_factory=list)
    veths: int = 0  # host-side veth names v0, v1, ... never reused

    def netns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def _add_netns(self, name: str) -> str:
        ns = self.netns(name)
        ip("netns", "add", ns)
        self.namespaces.append(ns)
        ip("link", "set", "lo", "up", netns=ns)
        return ns

    def add_node(self, name: str, node_ip: str, pod_cidr: str = "10.244.0.0/24") -> str:
        ns = self._add_netns(name)
        ip("addr", "add", f"{node_ip}/32", "dev", "lo", netns=ns)
        with entered(ns), open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write("1\n")  # /proc/sys/net is per network namespace of the writing thread
        self.nodes[name] = {"name": name, "ip": node_ip, "netns": ns, "podCIDR": pod_cidr}
        return ns

    def add_internet(self) -> str:
        """The internet client's namespace (unwired: enough for `podnet exec internet`)."""
        return self._add_netns("internet")

    def add_pod(
        self,
        node: str,
        namespace: str,
        name: str,
        pod_ip: str,
        containers: dict[str, list[tuple[int, str]]] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> str:
        """A pod namespace with eth0 = pod_ip/32, routed through `node`."""
        ns = self._add_netns(f"{namespace}-{name}")
        node_ns = self.nodes[node]["netns"]
        index = self.veths
        self.veths += 1
        host_if = f"v{index}"
        host_mac, pod_mac = mac(index, 1), mac(index, 2)
        # Permanent neighbour entries instead of ARP: IPv4's neighbour table is one table for
        # all namespaces with a host-wide gc_thresh3 (1024 by default), and a thousand pods
        # resolving their gateway overflow it ("neighbor table overflow!"). Permanent entries
        # are exempt from that accounting (Linux >= 4.19).
        ip_batch(
            node_ns,
            [
                f"link add {host_if} address {host_mac} type veth "
                f"peer name eth0 address {pod_mac} netns {ns}",
                f"link set {host_if} up",
                f"addr add {GATEWAY}/32 dev {host_if}",
                # replace, not add: a deleted namespace's veth (and its route) goes away
                # asynchronously, and a re-created pod reuses the address at once
                f"route replace {pod_ip}/32 dev {host_if}",
                f"neigh replace {pod_ip} lladdr {pod_mac} dev {host_if} nud permanent",
            ],
        )
        ip_batch(
            ns,
            [
                f"addr add {pod_ip}/32 dev eth0",
                "link set eth0 up",
                f"route add {GATEWAY} dev eth0 scope link",
                f"route add default via {GATEWAY} dev eth0",
                f"neigh add {GATEWAY} lladdr {host_mac} dev eth0 nud permanent",
            ],
        )
        self.pods.append(
            pod_entry(namespace, name, node, pod_ip, ns, containers or {}, annotations)
        )
        return ns

    def add_host_network_pod(
        self,
        node: str,
        namespace: str,
        name: str,
        containers: dict[str, list[tuple[int, str]]] | None = None,
    ) -> None:
        n = self.nodes[node]
        self.pods.append(
            pod_entry(namespace, name, node, n["ip"], n["netns"], containers or {}, None, True)
        )

    def runtime(self, cluster: str) -> dict[str, Any]:
        return runtime_doc(
            cluster,
            self.nodes.values(),
            self.pods,
            fabric=self.netns("fabric"),
            internet=self.netns("internet"),
        )

    def write_runtime(self, state_dir: Path, cluster: str) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "runtime.json").write_text(json.dumps(self.runtime(cluster), indent=1))

    def delete(self) -> None:
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces.clear()


@dataclass(frozen=True)
class Live:
    """A hand-built cluster with its state directory (and daemon, when started)."""

    topology: Topology
    root: Path  # the cluster's state directory
    cluster: str

    @property
    def env(self) -> dict[str, str]:
        """Environment in which `podnet --cluster <cluster>` finds this cluster."""
        return {**os.environ, STATE_DIR_ENV: str(self.root.parent)}


@contextmanager
def live_cluster(build: Callable[[Topology], None], daemon: bool = True) -> Iterator[Live]:
    """Build namespaces with `build`, write runtime.json in a temporary state directory,
    start the daemon and wait until every pod answers; afterwards stop the daemon, delete the
    namespaces and the directory, whatever happened."""
    topology = Topology()
    tmp = tempfile.TemporaryDirectory(prefix="podnet-test-")
    root = Path(tmp.name) / topology.prefix
    try:
        build(topology)
        topology.write_runtime(root, topology.prefix)
        if daemon:
            supervisor.start(root, topology.prefix)
            supervisor.wait_ready(root, 10)
        yield Live(topology, root, topology.prefix)
    finally:
        try:
            supervisor.stop(root)
        finally:
            topology.delete()
            tmp.cleanup()


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


def mac(index: int, side: int) -> str:
    """A locally administered unicast MAC address for one end of pod `index`'s veth."""
    octets = (side, (index >> 16) & 255, (index >> 8) & 255, index & 255)
    return "02:70:" + ":".join(f"{o:02x}" for o in octets)


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
        "containers": [
            {
                "name": c,
                "ports": [
                    {"name": (rest or [None])[0], "port": p, "protocol": proto}
                    for p, proto, *rest in ports
                ],
            }
            for c, ports in containers.items()
        ],
    }


def connect(netns: str, host: str, port: int, timeout: float = 2.0) -> socket.socket:
    """A TCP connection made from inside `netns` (the socket keeps that namespace)."""
    with entered(netns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


def udp_socket(netns: str, timeout: float = 2.0) -> socket.socket:
    with entered(netns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    return s


def read_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data
