"""The desired datapath as immutable values, with a canonical text form for golden files.

A NetPlan lists network namespaces; each holds the links, addresses, routes, neighbours, FDB
entries and sysctls that must exist inside it. A veth pair belongs to the namespace that
creates it (`Link.peer` names the other end); the other namespace lists its end as
kind "peer" so that its addresses and routes can refer to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Peer:
    netns: str
    ifname: str
    mac: str | None = None
    mtu: int | None = None


@dataclass(frozen=True, slots=True)
class Vxlan:
    vni: int
    port: int
    local: str
    dev: str  # the underlay link


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    kind: str  # "veth" (this end creates the pair), "peer", "bridge", "vxlan"
    peer: Peer | None = None
    master: str | None = None
    mac: str | None = None
    mtu: int | None = None
    vxlan: Vxlan | None = None

    def text(self) -> str:
        out = f"link {self.name} {self.kind}"
        if self.peer:
            out += f" peer={self.peer.netns}/{self.peer.ifname}"
        if self.master:
            out += f" master={self.master}"
        if self.mac:
            out += f" mac={self.mac}"
        if self.mtu:
            out += f" mtu={self.mtu}"
        if self.vxlan:
            v = self.vxlan
            out += f" vni={v.vni} port={v.port} local={v.local} dev={v.dev}"
        return out


@dataclass(frozen=True, slots=True)
class Address:
    dev: str
    cidr: str  # "172.18.0.2/16"

    def text(self) -> str:
        return f"addr {self.cidr} dev {self.dev}"


@dataclass(frozen=True, slots=True)
class Route:
    dst: str  # "10.244.1.0/24", "10.244.0.5/32" or "0.0.0.0/0"
    dev: str
    via: str | None = None
    src: str | None = None
    onlink: bool = False
    # Several gateways on `dev`: one ECMP route (`via` is then None), e.g. a LoadBalancer
    # address that several nodes answer, as MetalLB's BGP mode announces it.
    nexthops: tuple[str, ...] = ()

    def text(self) -> str:
        out = f"route {self.dst}"
        if self.via:
            out += f" via {self.via}"
        if self.nexthops:
            return out + "".join(f" nexthop via {g} dev {self.dev}" for g in self.nexthops)
        out += f" dev {self.dev}"
        if self.src:
            out += f" src {self.src}"
        if self.onlink:
            out += " onlink"
        return out


@dataclass(frozen=True, slots=True)
class Neighbour:
    dev: str
    ip: str
    mac: str

    def text(self) -> str:
        return f"neigh {self.ip} lladdr {self.mac} dev {self.dev} permanent"


@dataclass(frozen=True, slots=True)
class Fdb:
    dev: str
    mac: str
    dst: str

    def text(self) -> str:
        return f"fdb {self.mac} dev {self.dev} dst {self.dst} self permanent"


@dataclass(frozen=True, slots=True)
class NetnsPlan:
    name: str
    role: str  # "fabric", "internet", "node", "pod"
    owner: str  # the identity it stands for: "", the node name, or "ns/pod"
    sysctls: tuple[tuple[str, str], ...] = ()
    links: tuple[Link, ...] = ()
    addresses: tuple[Address, ...] = ()
    routes: tuple[Route, ...] = ()
    neighbours: tuple[Neighbour, ...] = ()
    fdb: tuple[Fdb, ...] = field(default=())

    def text(self) -> str:
        head = f"netns {self.name} ({self.role}{' ' + self.owner if self.owner else ''})"
        body = [f"sysctl {k}={v}" for k, v in self.sysctls]
        for group in (self.links, self.addresses, self.routes, self.neighbours, self.fdb):
            body += [x.text() for x in group]
        return "\n".join([head, *("  " + line for line in body)])


@dataclass(frozen=True, slots=True)
class NetPlan:
    cluster: str
    mode: str
    namespaces: tuple[NetnsPlan, ...]  # in apply order: fabric, internet, nodes, pods

    def text(self) -> str:
        head = f"# podnet datapath plan: cluster {self.cluster}, mode {self.mode}"
        return "\n".join([head, *(ns.text() for ns in self.namespaces)]) + "\n"

    def by_role(self, role: str) -> tuple[NetnsPlan, ...]:
        return tuple(ns for ns in self.namespaces if ns.role == role)
