"""What `podnet trace` sends, from where to where: `--from` and `--to` read against the
live cluster (its stored objects and runtime.json) into one packet's addresses. Pure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from podnet.model.errors import InputError
from podnet.model.service import Service, ServicePort
from podnet.policy.engine import Engine
from podnet.policy.ports import PortProto
from podnet.render.runtime import Runtime

INTERNET = "internet"


@dataclass(frozen=True)
class Target:
    """One packet to send: from `source` (a pod key, or "internet") inside `netns`, to
    host:port/protocol; `service` when that address is a Service's (ClusterIP or a node's
    NodePort), `pod` when it is a pod's own."""

    source: str
    netns: str
    source_ip: str
    source_node: str | None
    host: str
    port: int
    protocol: str
    service: Service | None = None
    service_port: ServicePort | None = None
    node_port_of: str | None = None  # the node whose NodePort is addressed
    pod: str | None = None

    @property
    def addressed(self) -> str:
        if self.service is not None and self.service_port is not None:
            sp = self.service_port
            via = (
                f"NodePort {self.port} of node {self.node_port_of}"
                if self.node_port_of
                else (f"ClusterIP {self.host}:{self.port}")
            )
            return f"Service {self.service.key} port {sp.name or sp.port}/{sp.protocol} ({via})"
        return f"pod {self.pod} at {self.host}:{self.port}/{self.protocol}"


def _bad(flag: str, why: str) -> InputError:
    return InputError.line(f"{flag}: {why}")


Source = tuple[str, str, str, str | None]  # key, netns, ip, node


def source_of(text: str, engine: Engine, runtime: Runtime) -> Source:
    """(key, netns, ip, node) of `--from`: one pod `ns/pod`, or `internet`."""
    if text == INTERNET:
        return INTERNET, runtime.internet_netns, runtime.internet_ip, None
    pods = {f"{p.namespace}/{p.name}": p for p in runtime.pods}
    p = pods.get(text)
    if p is None:
        raise _bad("--from", f"{text!r} is not a running pod (ns/pod) nor 'internet'")
    return text, p.netns, p.ip, p.node


def _service_by(engine: Engine, key: str) -> Service:
    for s in engine.cluster.services:
        if s.key == key:
            return s
    raise _bad("--to", f"no Service {key}")


def _service_port(svc: Service, pp: PortProto | None, flag: str = "--port") -> ServicePort:
    ports = [
        p for p in svc.spec.ports if pp is None or (p.port, p.protocol) == (pp.port, pp.protocol)
    ]
    if not ports:
        have = ", ".join(f"{p.port}/{p.protocol}" for p in svc.spec.ports)
        raise _bad(flag, f"Service {svc.key} has no port {pp} (it has {have})")
    if len(ports) > 1:
        raise _bad(flag, f"Service {svc.key} has several ports: say which with --port")
    return ports[0]


def _by_name(engine: Engine, host: str) -> Service | None:
    """`name.ns[.svc[.cluster.local]]`, as a pod's resolver expands a Service's name."""
    parts = host.rstrip(".").split(".")
    if len(parts) >= 2 and (len(parts) == 2 or parts[2] == "svc"):
        key = f"{parts[1]}/{parts[0]}"
        return next((s for s in engine.cluster.services if s.key == key), None)
    return None


def target_of(
    text: str,
    pp: PortProto | None,
    via: str,
    engine: Engine,
    runtime: Runtime,
    source: Source,
) -> Target:
    """The packet for `--to`: `ns/pod`, `svc/NS/NAME`, or a URL (`http://HOST:PORT/`, HOST a
    pod's or a ClusterIP, a node's address with a NodePort, or a Service's name)."""
    base = source
    if "://" in text:
        url = urlsplit(text)
        host = url.hostname or ""
        port = url.port or (pp.port if pp else {"http": 80, "https": 443}.get(url.scheme, 0))
        if not host or not port:
            raise _bad("--to", f"{text!r}: expected scheme://HOST:PORT/")
        pp = PortProto(port, pp.protocol if pp else "TCP")
        named = _by_name(engine, host)
        if named is not None:
            return _via_service(named, pp, base)
        return _address(host, pp, engine, runtime, base)
    if pp is None:
        raise _bad("--port", "required unless --to is a URL with a port")
    if text.startswith("svc/"):
        parts = text.split("/")
        if len(parts) != 3:
            raise _bad("--to", f"{text!r}: expected svc/NS/NAME")
        return _via_service(_service_by(engine, f"{parts[1]}/{parts[2]}"), pp, base)
    pods = {f"{p.namespace}/{p.name}": p for p in runtime.pods}
    if text in pods:
        if via == "service":
            return _service_of_pod(text, pp, engine, base)
        return Target(*base, host=pods[text].ip, port=pp.port, protocol=pp.protocol, pod=text)
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        raise _bad(
            "--to", f"{text!r} is not a running pod, svc/NS/NAME, an address or a URL"
        ) from None
    return _address(text, pp, engine, runtime, base)


def _via_service(svc: Service, pp: PortProto, base: Source) -> Target:
    sp = _service_port(svc, pp)
    ip = svc.spec.cluster_ip
    if not ip or ip == "None":
        raise _bad("--to", f"Service {svc.key} has no ClusterIP (headless)")
    return Target(*base, host=ip, port=sp.port, protocol=sp.protocol, service=svc, service_port=sp)


def _service_of_pod(pod: str, pp: PortProto, engine: Engine, base: Source) -> Target:
    """`--via service --to ns/pod --port P`: the first Service (by name) whose port
    reaches the pod's port P."""
    from podnet.policy.via_service import hops

    for svc in sorted(engine.cluster.services, key=lambda s: s.key):
        for hop in hops(engine.cluster, engine.placement, engine.pods, svc, None):
            if hop.endpoint.key == pod and hop.target == pp:
                return _via_service(svc, PortProto(hop.port.port, hop.port.protocol), base)
    raise _bad("--to", f"no Service has pod {pod} as a ready endpoint on {pp}")


def _address(host: str, pp: PortProto, engine: Engine, runtime: Runtime, base: Source) -> Target:
    for svc in engine.cluster.services:
        if host in (svc.spec.cluster_ip, *svc.spec.cluster_ips):
            return _via_service(svc, pp, base)
    nodes = {n.ip: n.name for n in runtime.nodes}
    if host in nodes:
        for svc in engine.cluster.services:
            for sp in svc.spec.ports:
                if (sp.node_port, sp.protocol) == (pp.port, pp.protocol):
                    return Target(
                        *base,
                        host=host,
                        port=pp.port,
                        protocol=pp.protocol,
                        service=svc,
                        service_port=sp,
                        node_port_of=nodes[host],
                    )
        raise _bad("--to", f"no Service has NodePort {pp} on node {nodes[host]}")
    by_ip = {p.ip: f"{p.namespace}/{p.name}" for p in runtime.pods if not p.host_network}
    if host in by_ip:
        return Target(*base, host=host, port=pp.port, protocol=pp.protocol, pod=by_ip[host])
    raise _bad("--to", f"{host} is no pod's, Service's or node's address in this cluster")
