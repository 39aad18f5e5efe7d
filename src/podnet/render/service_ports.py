"""What kube-proxy reads: each Service port with its virtual addresses and its endpoints,
from the Service objects and their EndpointSlices only (never from pods or selectors: a
selectorless Service with its own slices is served the same way).

"A Service port's numeric target is the slice port with the same name and protocol":
the endpointslice controller resolves a named targetPort per pod and writes the number in
the slice's ports, so a slice of pods that name the port differently is a slice of its own.
Endpoint conditions as the API defines them: an unset `ready` is ready; unset `serving`
follows `ready` (podnet.model.service.Endpoint).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from itertools import chain, compress, count
from operator import itemgetter, ne
from socket import AF_INET, inet_pton

from podnet.model.service import EndpointSlice, Service
from podnet.nftables.expr import L4Proto

PROTO: dict[str, L4Proto] = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint of one Service port: where a connection is DNATed to."""

    ip: IPv4Address
    port: int
    node: str | None
    ready: bool
    serving: bool
    terminating: bool


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One port of one Service, as the rules need it (a hashable value: the renderer
    caches what it builds per value, so an unchanged Service costs a dict lookup)."""

    namespace: str
    service: str
    port_name: str  # "" when the Service has one unnamed port
    protocol: L4Proto
    port: int
    cluster_ip: IPv4Address | None  # None: headless, or not allocated yet
    external_ips: tuple[IPv4Address, ...]  # spec.externalIPs, then LB ingress IPs
    node_port: int | None
    affinity: int | None  # ClientIP affinity timeout, seconds
    external_local: bool  # externalTrafficPolicy: Local
    internal_local: bool  # internalTrafficPolicy: Local
    endpoints: tuple[Endpoint, ...]
    # The renderer looks each port up in its cache at every sync: hashed once, not at each
    # lookup (a dataclass hashes every field, each endpoint's address included, each time).
    _hash: int = field(init=False, repr=False, compare=False)
    # `ns/name/tcp/port` (`ns/name/tcp` for an unnamed port): names its chains.
    identity: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = (self.namespace, self.service, self.port_name, self.protocol, self.port)
        rest = (self.cluster_ip, self.external_ips, self.node_port, self.affinity)
        flags = (self.external_local, self.internal_local, self.endpoints)
        object.__setattr__(self, "_hash", hash((*fields, *rest, *flags)))
        tail = f"/{self.port_name}" if self.port_name else ""
        object.__setattr__(
            self, "identity", f"{self.namespace}/{self.service}/{self.protocol}{tail}"
        )

    def __hash__(self) -> int:
        return self._hash

    @property
    def per_node(self) -> bool:
        """A Local traffic policy: its rules differ from node to node."""
        return self.internal_local or self.external_local

    @property
    def key(self) -> str:
        """`ns/name`: the Service."""
        return f"{self.namespace}/{self.service}"


class PortCache:
    """Each Service's ports, kept while the Service and its slices are the same objects:
    the store's parse cache hands back the same object for an unchanged resource version,
    so the next sync builds the ports of the Services that changed only (building them
    all cost ~0.4 s for 10,000 Services, mostly parsing addresses). Holding the objects
    keeps their ids from being reused.

    `service_ports` with a cache also remembers its last inputs and answer: when the
    Services and slices are the same objects (ids compared at C speed), it answers the
    same tuple; when a few differ, it recomputes the Services they touch only and splices
    them into the order it keeps. Walking 10,000 Services and 10,000 slices in Python
    (grouping, sorting, a lookup each) cost ~70 ms of CPU per sync on this machine; a
    change of one Service now costs a few C-level passes over the ids (~2-5 ms)."""

    def __init__(self) -> None:
        # What the last `service_ports` call changed, for the renderer's partial update
        # (None: it walked everything, so the renderer must too).
        self.delta: PortDelta | None = None
        self._by_service: dict[
            tuple[str, str], tuple[Service, tuple[EndpointSlice, ...], tuple[ServicePort, ...]]
        ] = {}
        self._last: _Last | None = None

    def ports(
        self, svc: Service, own: tuple[EndpointSlice, ...], key: tuple[str, str] | None = None
    ) -> tuple[ServicePort, ...]:
        key = key or _key(svc)
        hit = self._by_service.get(key)
        # Tuples compare their items by identity first: equal at C speed when unchanged.
        if hit is not None and hit[0] is svc and hit[1] == own:
            return hit[2]
        ports = _service_ports(svc, own)
        self._by_service[key] = (svc, own, ports)
        return ports

    def keep(self, keys: AbstractSet[tuple[str, str]]) -> None:
        """Forget the Services not in `keys` (deleted ones)."""
        for key in self._by_service.keys() - keys:
            del self._by_service[key]


@dataclass(frozen=True, slots=True)
class PortDelta:
    """What one `service_ports` call changed: `base` is the previous answer (the very
    tuple), `went` the ports of the Services it touched as they were there, `came` as they
    are now (a port in both went and came was re-built: equal or not). Everything else is
    the same objects as in `base`: kube-proxy's change tracker, which lets the renderer
    and the applier touch the changed Services only (service_nft.render_all)."""

    base: tuple[ServicePort, ...]
    went: tuple[ServicePort, ...] = ()
    came: tuple[ServicePort, ...] = ()


@dataclass
class _Last:
    """The inputs and answer of the last `service_ports` call with a cache."""

    services: list[Service]  # the objects (held: their ids stay unique)
    slices: list[EndpointSlice]
    service_ids: list[int]
    slice_ids: list[int]
    order: list[tuple[str, str]]  # sort keys (namespace or "", name) of the Services
    keys: list[tuple[str, str]]  # their cache keys, in the same order
    by_key: dict[tuple[str, str], Service]
    key_slices: dict[tuple[str, str], list[EndpointSlice]]  # IPv4 slices per Service
    out: tuple[ServicePort, ...]


_PORTS = itemgetter(2)
# Beyond this many changed objects, the whole walk is as cheap as the bookkeeping.
MAX_SPLICE = 256


def _incremental(
    cache: PortCache, services: list[Service], slices: list[EndpointSlice]
) -> tuple[ServicePort, ...] | None:
    """The answer from the last call and what changed since; None: walk everything.
    What changed is the stretch between the longest common prefix and suffix of the
    inputs' ids (the store lists objects in a stable order, so one change is one short
    stretch); an object in it that was there before is taken out and put back."""
    last = cache._last
    if last is None:
        return None
    service_ids = list(map(id, services))
    slice_ids = list(map(id, slices))
    p, q = _stretch(service_ids, last.service_ids)
    p2, q2 = _stretch(slice_ids, last.slice_ids)
    came_s, went_s = services[p : len(services) - q], last.services[p : len(last.services) - q]
    came_e, went_e = slices[p2 : len(slices) - q2], last.slices[p2 : len(last.slices) - q2]
    if not (came_s or went_s or came_e or went_e):
        cache.delta = PortDelta(last.out)
        return last.out
    if len(came_s) + len(went_s) + len(came_e) + len(went_e) > MAX_SPLICE:
        return None
    touched: set[tuple[str, str]] = set()
    for gone in went_s:
        if last.by_key.get(k := _key(gone)) is gone:
            del last.by_key[k]
        touched.add(k)
    for svc in came_s:
        last.by_key[k := _key(svc)] = svc
        touched.add(k)
    for sl in went_e:
        if (sk := _slice_key(sl)) is not None:
            last.key_slices[sk] = [x for x in last.key_slices.get(sk, ()) if x is not sl]
            touched.add(sk)
    came_by_key: dict[tuple[str, str], list[EndpointSlice]] = {}
    for sl in came_e:
        if (sk := _slice_key(sl)) is not None:
            came_by_key.setdefault(sk, []).append(sl)
            touched.add(sk)
    for k, more in came_by_key.items():
        own = last.key_slices.get(k, []) + more
        at = {id(x): slice_ids.index(id(x)) for x in own}  # input order, as the full walk
        last.key_slices[k] = sorted(own, key=lambda x: at[id(x)])
    went_p: list[ServicePort] = []
    came_p: list[ServicePort] = []
    for k in touched:
        if (before := cache._by_service.get(k)) is not None:
            went_p += before[2]
        now = last.by_key.get(k)
        sort_key = (k[0] if now is None else now.metadata.namespace or "", k[1])
        pos = bisect.bisect_left(last.order, sort_key)
        listed = pos < len(last.order) and last.order[pos] == sort_key
        if now is None:
            if listed:
                del last.order[pos], last.keys[pos]
            cache._by_service.pop(k, None)
            continue
        if not listed:
            last.order.insert(pos, sort_key)
            last.keys.insert(pos, k)
        came_p += cache.ports(now, tuple(last.key_slices.get(k, ())))
    if len(last.order) != len(service_ids):
        return None  # the same Service twice: the full walk says what that means
    base = last.out
    last.services, last.slices = services, slices
    last.service_ids, last.slice_ids = service_ids, slice_ids
    entries = map(cache._by_service.__getitem__, last.keys)
    last.out = tuple(chain.from_iterable(map(_PORTS, entries)))
    cache.delta = PortDelta(base, tuple(went_p), tuple(came_p))
    return last.out


def _stretch(new: list[int], old: list[int]) -> tuple[int, int]:
    """The lengths of the longest common prefix and suffix of `new` and `old` (not
    overlapping): the first difference from each end, found by C-level iterators."""
    if new == old:
        return len(new), 0
    n = min(len(new), len(old))
    prefix = next(compress(count(), map(ne, new, old)), n)
    tail = map(ne, reversed(new[prefix:]), reversed(old[prefix:]))
    return prefix, next(compress(count(), tail), n - prefix)


def _key(svc: Service) -> tuple[str, str]:
    return (svc.metadata.namespace or "default", svc.metadata.name or "")


def _slice_key(s: EndpointSlice) -> tuple[str, str] | None:
    name = s.service_name
    if name and s.address_type == "IPv4":
        return (s.metadata.namespace or "default", name)
    return None


def service_ports(
    services: Iterable[Service], slices: Iterable[EndpointSlice], cache: PortCache | None = None
) -> tuple[ServicePort, ...]:
    """Every port of every Service that has a virtual address, in (ns, name, port) order.
    Headless and ExternalName Services get no rules (DNS only), as in kube-proxy. With a
    cache (the daemon's), an unchanged Service's ports are those of the last call, and
    only the Services that changed are looked at (PortCache)."""
    services, slices = list(services), list(slices)
    if cache is not None:
        cache.delta = None
        spliced = _incremental(cache, services, slices)
        if spliced is not None:
            return spliced
    by_service: dict[tuple[str, str], list[EndpointSlice]] = {}
    for s in slices:
        if (k := _slice_key(s)) is not None:
            by_service.setdefault(k, []).append(s)
    cache = cache or PortCache()
    out: list[ServicePort] = []
    # (sort key, position: a tie never compares the objects, cache key, Service)
    decorated = sorted(
        ((s.metadata.namespace or "", s.metadata.name or ""), i, _key(s), s)
        for i, s in enumerate(services)
    )
    order = [d[0] for d in decorated]
    keys = [d[2] for d in decorated]
    for _, _, key, svc in decorated:
        out += cache.ports(svc, tuple(by_service.get(key, ())), key)
    by_key = dict(zip(keys, (d[3] for d in decorated), strict=True))
    cache.keep(by_key.keys())
    result = tuple(out)
    cache._last = (
        _Last(
            services=services,
            slices=slices,
            service_ids=list(map(id, services)),
            slice_ids=list(map(id, slices)),
            order=order,
            keys=keys,
            by_key=by_key,
            key_slices=by_service,
            out=result,
        )
        if len(by_key) == len(services)
        else None  # the same Service twice: walk each time
    )
    return result


def _service_ports(svc: Service, own: tuple[EndpointSlice, ...]) -> tuple[ServicePort, ...]:
    spec = svc.spec
    if spec.type == "ExternalName" or spec.headless or not spec.cluster_ip:
        return ()
    ns, name = svc.metadata.namespace or "default", svc.metadata.name or ""
    external = [_address(ip) for ip in spec.external_ips]
    if spec.type == "LoadBalancer":
        external += [_address(i.ip) for i in svc.status.load_balancer.ingress if i.ip]
    return tuple(
        ServicePort(
            namespace=ns,
            service=name,
            port_name=p.name or "",
            protocol=PROTO[p.protocol],
            port=p.port,
            cluster_ip=_address(spec.cluster_ip),
            external_ips=tuple(dict.fromkeys(external)),
            node_port=p.node_port if spec.external else None,
            affinity=spec.affinity_timeout,
            external_local=spec.external and spec.traffic_policy == "Local",
            internal_local=spec.internal_traffic_policy == "Local",
            endpoints=_endpoints(own, p.name or "", p.protocol),
        )
        for p in spec.ports
    )


def _address(text: str) -> IPv4Address:
    """An address the model validated, parsed in C (IPv4Address(str) parses each octet in
    Python: 40 % of building 10,000 Services' ports)."""
    try:
        return IPv4Address(inet_pton(AF_INET, text))
    except OSError:
        return IPv4Address(text)  # not an IPv4 address: ipaddress's own error


def _endpoints(
    slices: tuple[EndpointSlice, ...], port_name: str, protocol: str
) -> tuple[Endpoint, ...]:
    """The endpoints of one Service port across its slices, each address:port once (an
    endpoint listed by two slices, e.g. during a controller's move, is one endpoint)."""
    seen: dict[tuple[IPv4Address, int], Endpoint] = {}
    for s in sorted(slices, key=lambda s: s.metadata.name or ""):
        number = next(
            (
                sp.port
                for sp in s.ports
                if (sp.name or "") == port_name and sp.protocol == protocol and sp.port
            ),
            None,
        )
        if number is None:
            continue
        for e in s.endpoints:
            # kube-proxy uses an endpoint's first address (the API allows only one today).
            ep = Endpoint(
                _address(e.addresses[0]), number, e.node_name, e.ready, e.serving, e.terminating
            )
            seen.setdefault((ep.ip, ep.port), ep)
    return tuple(sorted(seen.values(), key=lambda e: (e.ip, e.port)))


def usable(endpoints: Iterable[Endpoint]) -> tuple[Endpoint, ...]:
    """kube-proxy's choice (pkg/proxy/topology.go): the ready endpoints; when none is ready,
    those that are serving and terminating ("graceful termination": a rolling update
    whose new pods are not ready yet keeps serving from the old ones)."""
    eps = tuple(endpoints)
    ready = tuple(e for e in eps if e.ready)
    return ready or tuple(e for e in eps if e.serving and e.terminating)


def local_endpoints(sp: ServicePort, node: str) -> tuple[Endpoint, ...]:
    """The usable endpoints on `node` (a Local traffic policy), with the same fallback."""
    return usable(e for e in sp.endpoints if e.node == node)
