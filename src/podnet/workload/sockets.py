"""From runtime.json to the sockets the stand-in opens and the checks that prove them: pure.

Every declared containerPort of every pod becomes one listening socket in the pod's network
namespace (the node's for hostNetwork pods), bound to 0.0.0.0 like a typical container
process, or to 127.0.0.1 when the pod's `podnet.io/localhost-ports` annotation says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from podnet.model import localports
from podnet.render.runtime import Pod, Runtime
from podnet.state.ingress_identity import NGINX_PORTS, is_ingress_pod

ANY = "0.0.0.0"
LOCALHOST = "127.0.0.1"
# A pod without ports is checked by a connection to a port nobody serves: a reset proves the
# pod's address answers as surely as an accept does. 9 is "discard", never served here.
NO_PORT = 9


@dataclass(frozen=True)
class Identity:
    """Who answers on a socket: what the echo line and the HTTP JSON body report."""

    namespace: str
    pod: str
    container: str
    node: str
    pod_ip: str

    @property
    def line(self) -> bytes:
        return f"{self.namespace}/{self.pod} {self.container}\n".encode()


@dataclass(frozen=True, order=True)
class Endpoint:
    """One listening socket: where it lives and what it binds."""

    netns: str
    host: str
    port: int
    protocol: str

    def __str__(self) -> str:
        return f"{self.netns} {self.host}:{self.port}/{self.protocol}"


@dataclass(frozen=True)
class Check:
    """A readiness check: from `netns`, reach host:port and expect `expect` back (or, when
    `expect` is None, any answer at all: an accept or a reset)."""

    netns: str
    host: str
    port: int
    protocol: str
    expect: bytes | None


@dataclass(frozen=True)
class SocketPlan:
    listeners: Mapping[Endpoint, Identity]
    checks: Mapping[str, tuple[Check, ...]]  # "ns/pod" -> its checks
    unsupported: tuple[str, ...]  # "ns/pod container port/PROTO" not served (SCTP)
    problems: tuple[str, ...]


DNS_PORTS = frozenset({(53, "UDP"), (53, "TCP")})


def make_plan(runtime: Runtime, sctp: bool, dns_netns: frozenset[str] = frozenset()) -> SocketPlan:
    """`dns_netns`: the DNS pods' namespaces, whose port 53 (UDP and TCP) the DNS server
    serves; the stand-in neither opens nor checks it there."""
    listeners: dict[Endpoint, Identity] = {}
    checks: dict[str, tuple[Check, ...]] = {}
    unsupported: list[str] = []
    problems: list[str] = []
    nodes = {n.name: n for n in runtime.nodes}
    for pod in runtime.pods:
        local, bad = localhost_ports(pod)
        problems.extend(bad)
        node = nodes.get(pod.node)
        checker = node.netns if node else pod.netns
        pod_checks: list[Check] = []
        for container in pod.containers:
            ident = Identity(pod.namespace, pod.name, container.name, pod.node, pod.ip)
            for port in container.ports:
                where = f"{pod.key} {container.name} {port.port}/{port.protocol}"
                if pod.netns in dns_netns and (port.port, port.protocol) in DNS_PORTS:
                    continue
                if (port.port, port.protocol) in NGINX_PORTS and is_ingress_pod(
                    pod.namespace, pod.name
                ):
                    continue  # nginx's (daemon.nginx_child), in the controller pod
                if port.protocol == "SCTP" and not sctp:
                    unsupported.append(where)
                    continue
                is_local = (port.port, port.protocol) in local
                ep = Endpoint(pod.netns, LOCALHOST if is_local else ANY, port.port, port.protocol)
                if ep in listeners:
                    owner = listeners[ep]
                    problems.append(
                        f"pod {where}: {ep} is already served for "
                        f"{owner.namespace}/{owner.pod} {owner.container}; not served twice"
                    )
                    continue
                listeners[ep] = ident
                if is_local:
                    pod_checks.append(
                        Check(pod.netns, LOCALHOST, port.port, port.protocol, ident.line)
                    )
                else:
                    pod_checks.append(Check(checker, pod.ip, port.port, port.protocol, ident.line))
        if not pod_checks:  # no port to check (none declared, SCTP only, all conflicting)
            pod_checks.append(Check(checker, pod.ip, NO_PORT, "TCP", None))
        checks[pod.key] = tuple(pod_checks)
    return SocketPlan(listeners, checks, tuple(unsupported), tuple(problems))


def localhost_ports(pod: Pod) -> tuple[frozenset[tuple[int, str]], tuple[str, ...]]:
    """The `podnet.io/localhost-ports` annotation of a runtime pod (see
    podnet.model.localports): ((port, protocol) bound to localhost, problems naming the pod)."""
    declared = [(p.name, p.port, p.protocol) for c in pod.containers for p in c.ports]
    chosen, unknown = localports.localhost_ports(pod.annotations, declared)
    problems = tuple(
        f"pod {pod.key}: annotation {localports.ANNOTATION}: {ref!r} is not a declared "
        "containerPort (PORT[/PROTOCOL] or a port name); ignored"
        for ref in unknown
    )
    return chosen, problems
