"""The cluster's DNS records, from Services, EndpointSlices and pods: pure.

Implements the Kubernetes DNS-Based Service Discovery specification, schema 1.1.0
(kubernetes/dns docs/specification.md; section numbers below are its own), over the API
objects exactly as CoreDNS's kubernetes plugin reads them. The server (podnet.dns) answers
from these records only; which answer a name gets when it has no record of the asked type
(NODATA) or no record at all (NXDOMAIN) follows from the set of names, as RFC 8020 says.

Names are lowercase absolute names ("web.shop.svc.cluster.local."): "All comparisons between
query data and data in Kubernetes are case-insensitive" (2.1), so the server lowercases the
query and looks it up here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the DNS server loads records only, never the model (pydantic)
    from podnet.model.service import EndpointSlice, Service

SCHEMA_VERSION = "1.1.0"
TTL = 5  # seconds; CoreDNS's default. Short: answers follow changes (no client caching to speak of)
REVERSE_ZONES = ("in-addr.arpa.", "ip6.arpa.")
TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"


@dataclass(frozen=True, order=True)
class Record:
    """One resource record in master-file syntax: `name ttl IN type data`."""

    name: str
    type: str
    data: str
    ttl: int = TTL

    def line(self) -> str:
        return f"{self.name} {self.ttl} IN {self.type} {self.data}"


@dataclass(frozen=True)
class PodAddress:
    """What a pod contributes: its namespace and address (CoreDNS's `pods verified`)."""

    namespace: str
    ip: str


@dataclass(frozen=True)
class Zone:
    """Every record the cluster's DNS serves, sorted. `serial` is only the SOA's: two zones
    with equal `records` answer every query alike whatever their serials."""

    domain: str  # "cluster.local." (absolute, lowercase)
    dns_ip: str  # the kube-dns Service's address: the NS record's glue
    records: tuple[Record, ...]
    serial: int = 1

    @property
    def apexes(self) -> tuple[str, ...]:
        """The zones served authoritatively: the cluster domain and the reverse trees."""
        return (self.domain, *REVERSE_ZONES)

    def authority(self) -> tuple[Record, ...]:
        """SOA and NS of every apex. The SOA's last field (the negative-caching TTL, RFC
        2308) is the record TTL: a name that appears is seen as soon as a record would be."""
        ns = f"ns.dns.{self.domain}"
        out = [Record(ns, "A", self.dns_ip)]
        for apex in self.apexes:
            soa = f"{ns} hostmaster.{self.domain} {self.serial} 7200 1800 86400 {TTL}"
            out += [Record(apex, "SOA", soa), Record(apex, "NS", ns)]
        return tuple(out)

    def all_records(self) -> tuple[Record, ...]:
        return tuple(sorted({*self.authority(), *self.records}, key=order))

    def text(self) -> str:
        """The canonical master-file text (the golden form, and what the server loads)."""
        return "".join(r.line() + "\n" for r in self.all_records())


def fqdn(name: str) -> str:
    return name.lower().rstrip(".") + "."


def reverse_name(ip: str) -> str:
    """d.c.b.a.in-addr.arpa. (2.3.3), or the nibbles of an IPv6 address under ip6.arpa."""
    return ipaddress.ip_address(ip).reverse_pointer + "."


def _address_type(ip: str) -> str:
    return "AAAA" if ":" in ip else "A"


def dashed(ip: str) -> str:
    """The system-assigned _hostname_ of an endpoint without one (2.1): its address with
    dashes, as CoreDNS and kube-dns spell it (10-244-1-5, 2001-db8--1)."""
    return ip.replace(".", "-").replace(":", "-")


def version_record(zone: str) -> Record:
    """2.2: `dns-version.<zone>. IN TXT "1.1.0"`."""
    return Record(f"dns-version.{zone}", "TXT", f'"{SCHEMA_VERSION}"')


def service_records(svc: Service, zone: str, slices: Iterable[EndpointSlice]) -> Iterator[Record]:
    """One Service's records; `slices`: those labelled with its name (any address type)."""
    ns = svc.metadata.namespace or "default"
    base = f"{svc.metadata.name}.{ns}.svc.{zone}"
    own = [s for s in slices if s.address_type in ("IPv4", "IPv6")]
    return _service(svc, base, own)


def order(r: Record) -> tuple[str, str, str, int]:
    """The records' order (that of `Record`'s fields) as a key: sorting by it compares
    tuples in C, ~10 times faster than the dataclass's own `__lt__`."""
    return (r.name, r.type, r.data, r.ttl)


def render_zone(
    services: Iterable[Service],
    slices: Iterable[EndpointSlice],
    pods: Iterable[PodAddress],
    domain: str = "cluster.local",
    dns_ip: str = "10.96.0.10",
    serial: int = 1,
) -> Zone:
    zone = fqdn(domain)
    by_service: dict[tuple[str, str], list[EndpointSlice]] = {}
    for s in slices:
        name = s.service_name
        if name and s.address_type in ("IPv4", "IPv6"):
            by_service.setdefault((s.metadata.namespace or "default", name), []).append(s)
    records: set[Record] = {version_record(zone)}
    for svc in services:
        ns = svc.metadata.namespace or "default"
        records.update(service_records(svc, zone, by_service.get((ns, svc.metadata.name), [])))
    for p in pods:
        records.add(pod_record(p, zone))
    return Zone(zone, dns_ip, tuple(sorted(records, key=order)), serial)


def _service(svc: Service, base: str, slices: list[EndpointSlice]) -> Iterator[Record]:
    spec = svc.spec
    if spec.type == "ExternalName":
        # 2.5: "a CNAME record named <service>.<ns>.svc.<zone> pointing to <extname>".
        assert spec.external_name is not None  # validated: required for ExternalName
        yield Record(base, "CNAME", fqdn(spec.external_name))
    elif spec.headless:
        yield from _headless(svc, base, slices)
    else:
        yield from _cluster_ip(svc, base)


def _cluster_ip(svc: Service, base: str) -> Iterator[Record]:
    """2.3: A/AAAA, an SRV per named port, a PTR per address. A Service whose address is
    not allocated yet has none of them (its name does not exist until it has one)."""
    ips = sorted({ip for ip in (svc.spec.cluster_ip, *svc.spec.cluster_ips) if ip and ip != "None"})
    if not ips:
        return
    for ip in ips:
        yield Record(base, _address_type(ip), ip)  # 2.3.1
        yield Record(reverse_name(ip), "PTR", base)  # 2.3.3
    for port in svc.spec.ports:
        if port.name:  # 2.3.2: "Unnamed ports do not have an SRV record."
            name = f"_{port.name}._{port.protocol.lower()}.{base}"
            yield Record(name, "SRV", f"0 100 {port.port} {base}")


def _ready(svc: Service) -> bool:
    """Whether every endpoint counts as _ready_ (2.1) whatever its condition says: the
    Service publishes not-ready addresses (the field that replaced the annotation the
    spec names, which is honoured too)."""
    return (
        svc.spec.publish_not_ready_addresses
        or svc.metadata.annotations.get(TOLERATE_UNREADY) == "true"
    )


def _headless(svc: Service, base: str, slices: list[EndpointSlice]) -> Iterator[Record]:
    """2.4: an A/AAAA per _ready_ endpoint at the Service's name and at its _hostname_, an SRV
    per (ready endpoint, named port), a PTR per ready endpoint. No ready endpoint: no
    record at all, so the name answers NXDOMAIN (2.4.1: "If there are no _ready_ endpoints
    for the headless Service, the answer should be NXDOMAIN")."""
    all_ready = _ready(svc)
    for s in slices:
        ports = [p for p in s.ports if p.name and p.port is not None]
        for ep in s.endpoints:
            if not (all_ready or ep.ready):
                continue
            for ip in ep.addresses:
                host = f"{ep.hostname or dashed(ip)}.{base}"
                kind = _address_type(ip)
                yield Record(base, kind, ip)  # 2.4.1
                yield Record(host, kind, ip)
                yield Record(reverse_name(ip), "PTR", host)  # 2.4.3
                for p in ports:  # 2.4.2, with the ports the endpoints really serve
                    srv = f"_{p.name}._{p.protocol.lower()}.{base}"
                    yield Record(srv, "SRV", f"0 100 {p.port} {host}")


def pod_record(p: PodAddress, zone: str) -> Record:
    """`a-b-c-d.<ns>.pod.<zone>. IN A a.b.c.d`: the record 1.0 required and 1.1.0 dropped,
    kept as a schema extension (section 3) as CoreDNS's `pods verified` does: only for an
    address a pod of that namespace holds (never a name for any address that is asked)."""
    return Record(f"{dashed(p.ip)}.{p.namespace}.pod.{zone}", _address_type(p.ip), p.ip)
