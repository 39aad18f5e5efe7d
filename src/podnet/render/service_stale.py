"""Stale UDP conntrack entries of Services, found as kube-proxy's conntrack reconciler does
(pkg/proxy/conntrack/cleanup.go): compare each UDP entry with the rules now in force.

UDP has no connection to end: a client that keeps its source port keeps matching the
conntrack entry of its first datagram, DNATed to the endpoint chosen then, even after that
endpoint left (its datagrams vanish), and an entry made while the Service had no endpoint
was not DNATed at all. So, after a sync, an entry whose original destination is a Service's
virtual address and port (ClusterIP, external or LB address; a NodePort) is stale when its
reply comes from an address:port that is not a current endpoint of that port (the
endpoint left, or the entry was never DNATed). Reading the table instead of diffing the
last sync's Services makes a full sync (a restarted daemon) clean up as well. Pure: the
datapath lists and deletes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from podnet.render.service_ports import ServicePort


@dataclass(frozen=True, slots=True)
class Entry:
    """A UDP conntrack entry: its original tuple, and where replies come from."""

    src: str
    dst: str
    sport: int
    dport: int
    reply_src: str
    reply_sport: int

    def delete_argv(self) -> list[str]:
        """`conntrack -D` of exactly this entry (its original tuple)."""
        return [
            "-D", "-p", "udp", "--orig-src", self.src, "--orig-dst", self.dst,
            "--orig-port-src", str(self.sport), "--orig-port-dst", str(self.dport),
        ]  # fmt: skip


def parse(text: str) -> list[Entry]:
    """`conntrack -L -p udp` lines -> entries (the first src/dst/sport/dport are the
    original direction, the second the reply's)."""
    out = []
    for line in text.splitlines():
        fields: dict[str, list[str]] = {}
        for word in line.split():
            k, eq, v = word.partition("=")
            if eq:
                fields.setdefault(k, []).append(v)
        try:
            (src, rsrc), (dst, _), (sport, rsport), (dport, _) = (
                fields["src"][:2], fields["dst"][:2], fields["sport"][:2], fields["dport"][:2]
            )  # fmt: skip
        except (KeyError, ValueError):
            continue
        out.append(Entry(src, dst, int(sport), int(dport), rsrc, int(rsport)))
    return out


def stale(
    entries: Iterable[Entry], ports: Iterable[ServicePort], service_cidr: IPv4Network
) -> list[Entry]:
    """The entries toward a UDP Service port whose reply source is none of its endpoints,
    and those toward a ClusterIP and port that no Service has any more."""
    by_vip: dict[tuple[str, int], set[tuple[str, int]]] = {}
    by_node_port: dict[int, set[tuple[str, int]]] = {}
    vips: set[str] = set()
    for p in ports:
        if p.protocol != "udp":
            continue
        # any endpoint the rules may choose on some node (ready, or serving-terminating)
        usable = {
            (str(e.ip), e.port) for e in p.endpoints if e.ready or (e.serving and e.terminating)
        }
        for a in _addresses(p):
            vips.add(str(a))
            by_vip.setdefault((str(a), p.port), set()).update(usable)
        if p.node_port:
            by_node_port.setdefault(p.node_port, set()).update(usable)
    out = []
    for e in entries:
        eps = by_vip.get((e.dst, e.dport))
        if eps is None and e.dst not in vips:
            eps = by_node_port.get(e.dport)
        if eps is None and IPv4Address(e.dst) in service_cidr:
            eps = set()  # the Service (or this port of it) is gone
        if eps is not None and (e.reply_src, e.reply_sport) not in eps:
            out.append(e)
    return out


def _addresses(p: ServicePort) -> list[IPv4Address]:
    return [a for a in (p.cluster_ip, *p.external_ips) if a is not None]
