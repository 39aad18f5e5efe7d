"""The Ingress semantics, pure: the served Ingresses, Services, EndpointSlices and Secrets ->
the routing plan that `render.nginx_conf` writes out (docs/ingress.md).

Quoted from the Ingress documentation (concepts/services-networking/ingress):

- Hosts: "Hosts can be precise matches (for example `foo.bar.com`) or a wildcard (for
  example `*.foo.com`) ... the wildcard only covers a single DNS label". A rule without a
  host "applies to all inbound HTTP traffic": here, to requests whose host no rule names
  (ingress-nginx's catch-all server).
- Paths: "Exact: Matches the URL path exactly and with case sensitivity." "Prefix: Matches
  based on a URL path prefix split by /. Matching is case sensitive and done on a path
  element by element basis." A trailing slash is ignored. ImplementationSpecific is Prefix
  here (decided: docs/ingress.md).
- "If two or more paths still match a request, precedence will be given first to the
  longest matching path. If two paths are still equally matched, precedence will be given
  to paths with an exact path type over prefix path type."
- "If none of the hosts or paths match the HTTP request in the Ingress objects, the traffic
  is routed to your default backend": the `spec.defaultBackend` of the first Ingress (by
  namespace/name) that has one, else podnet's 404.

Each path becomes one or two *locations*: Exact p -> (=, p); Prefix p, with q = p without
its trailing slashes -> (=, q) and (^~, q + "/"), or (/, all) for q = "". A request
matches an element-wise prefix exactly when it equals q or starts with q + "/"; nginx's
`=` beats every prefix and the longest `^~` prefix wins, which is the precedence above
(an exact match of a Prefix path is as long as the request, so no longer one matches).
Where two paths give the same location, a real Exact beats a Prefix's (=, q) ("exact over
prefix"), and otherwise the first Ingress (namespace/name order) keeps it; the loser is a
reported problem.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from podnet.model.ingress import HTTPIngressPath, Ingress, IngressServiceBackend
from podnet.model.secret import TLS_CERT, TLS_KEY, TLS_TYPE, Secret
from podnet.model.service import SERVICE_NAME_LABEL, EndpointSlice, Service

Match = Literal["=", "^~", "/"]  # exact, element-wise prefix (q + "/"), everything
CATCH_ALL = ""  # the server of requests whose host no rule names
DEFAULT_CERT = "default"  # the cluster's own certificate (generated at up)


@dataclass(frozen=True)
class Backend:
    """Where a location sends requests: an upstream (its name), or a status nginx returns
    itself (503: the Service has no ready endpoint or is gone; 404: nothing matched)."""

    upstream: str | None = None
    status: int = 0
    what: str = ""  # "ns/svc:port", for comments and problems

    def __post_init__(self) -> None:
        assert (self.upstream is None) != (self.status == 0)


NOT_FOUND = Backend(status=404, what="default backend (404)")


@dataclass(frozen=True)
class Location:
    match: Match
    path: str
    backend: Backend
    source: str  # "ns/ingress" that defined it


@dataclass(frozen=True)
class Server:
    host: str  # exact, `*.x.y`, or CATCH_ALL
    locations: tuple[Location, ...]
    # The certificate it answers TLS with: its Secret's (a key of IngressPlan.certificates)
    # or DEFAULT_CERT; None: a host without a TLS section, served on port 80 only (its
    # HTTPS requests reach the catch-all server). Each TLS server costs nginx one SSL
    # context at every reload (~2 ms of CPU): 1,000 plain hosts must not pay that.
    tls: str | None = None


@dataclass(frozen=True)
class Upstream:
    name: str
    servers: tuple[str, ...]  # "ip:port", sorted


@dataclass(frozen=True)
class IngressPlan:
    servers: tuple[Server, ...]
    upstreams: tuple[Upstream, ...]
    certificates: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)  # name -> crt, key
    problems: tuple[str, ...] = ()
    tls_hosts: dict[str, str] = field(default_factory=dict)  # host -> ns/secret it asked for


def locations_of(path: HTTPIngressPath) -> list[tuple[Match, str, bool]]:
    """(match, path, from an Exact path) of one Ingress path."""
    p = path.effective_path
    if path.path_type == "Exact":
        return [("=", p, True)]
    q = p.rstrip("/")
    if not q:
        return [("/", "/", False)]
    return [("=", q, False), ("^~", q + "/", False)]


def host_matches(rule_host: str, host: str) -> bool:
    """The documentation's host rule (for tests and `explain`-like uses): exact, or a
    wildcard covering exactly one label."""
    host = host.lower().rstrip(".")
    if rule_host.startswith("*."):
        label, _, rest = host.partition(".")
        return bool(label) and rest == rule_host[2:]
    return host == rule_host


def path_matches(path: HTTPIngressPath, request: str) -> bool:
    """The documentation's path rule for one path (the examples table holds it)."""
    for match, p, _ in locations_of(path):
        if (
            match == "/"
            or (match == "=" and request == p)
            or (match == "^~" and request.startswith(p))
        ):
            return True
    return False


def upstream_name(namespace: str, service: str, port: int) -> str:
    """`ns-svc-port`, with a short hash against collisions (`a-b` + `c` vs `a` + `b-c`)."""
    h = hashlib.sha256(f"{namespace}/{service}/{port}".encode()).hexdigest()[:6]
    return f"{namespace}-{service}-{port}-{h}"


class _Builder:
    def __init__(
        self,
        services: Iterable[Service],
        slices: Iterable[EndpointSlice],
        secrets: Iterable[Secret],
    ) -> None:
        self.services = {s.key: s for s in services}
        self.slices: dict[str, list[EndpointSlice]] = {}
        for sl in slices:
            svc = sl.metadata.labels.get(SERVICE_NAME_LABEL)
            if svc and sl.address_type == "IPv4":
                self.slices.setdefault(f"{sl.metadata.namespace}/{svc}", []).append(sl)
        self.secrets = {s.key: s for s in secrets}
        self.upstreams: dict[str, Upstream] = {}
        self.problems: list[str] = []

    def backend(self, namespace: str, b: IngressServiceBackend, source: str) -> Backend:
        key = f"{namespace}/{b.name}"
        want = b.port.name or b.port.number
        what = f"{key}:{want}"
        svc = self.services.get(key)
        port = None
        if svc is not None:
            port = next(
                (
                    p
                    for p in svc.spec.ports
                    if p.protocol == "TCP"
                    and (p.name == b.port.name if b.port.name else p.port == b.port.number)
                ),
                None,
            )
        if svc is None or port is None:
            self.problems.append(
                f"Ingress {source}: backend Service {what} does not exist: answered with 503"
            )
            return Backend(status=503, what=what)
        name = upstream_name(svc.metadata.namespace or "", svc.metadata.name, port.port)
        if name not in self.upstreams:
            servers: set[str] = set()
            for sl in self.slices.get(key, ()):
                target = next(
                    (
                        ep.port
                        for ep in sl.ports
                        if (ep.name or None) == (port.name or None)
                        and ep.protocol == "TCP"
                        and ep.port is not None
                    ),
                    None,
                )
                if target is None:
                    continue
                for e in sl.endpoints:
                    if e.ready:
                        servers.update(f"{a}:{target}" for a in e.addresses)
            self.upstreams[name] = Upstream(
                name, tuple(sorted(servers, key=lambda s: _addr_key(s)))
            )
        what = f"{key}:{port.port}"  # one spelling for a port given by name or number
        if not self.upstreams[name].servers:
            return Backend(status=503, what=what)
        return Backend(upstream=name, what=what)

    def certificate(
        self, namespace: str, secret_name: str | None, host: str, source: str
    ) -> str | None:
        """The certificate's name, or None (the default certificate) with a problem."""
        if not secret_name:
            return None  # "If the TLS configuration section ... no secret": the default
        key = f"{namespace}/{secret_name}"
        secret = self.secrets.get(key)
        if secret is None:
            self.problems.append(
                f"Ingress {source}: TLS Secret {key} for host {host} not found: "
                "served with the default certificate"
            )
            return None
        if secret.type != TLS_TYPE:
            self.problems.append(
                f"Ingress {source}: Secret {key} for host {host} is of type {secret.type}, "
                f"not {TLS_TYPE}: served with the default certificate"
            )
            return None
        crt, k = secret.value(TLS_CERT), secret.value(TLS_KEY)
        if b"-----BEGIN CERTIFICATE-----" not in crt or b"PRIVATE KEY-----" not in k:
            self.problems.append(
                f"Ingress {source}: Secret {key} for host {host} holds no PEM certificate "
                "and key: served with the default certificate"
            )
            return None
        return "cert-" + hashlib.sha256(crt + b"\0" + k).hexdigest()[:16]


def _addr_key(server: str) -> tuple[int, int]:
    ip, _, port = server.rpartition(":")
    return (int(ipaddress.ip_address(ip)), int(port))


def build(
    ingresses: Iterable[Ingress],
    services: Iterable[Service],
    slices: Iterable[EndpointSlice],
    secrets: Iterable[Secret],
) -> IngressPlan:
    """The routing plan of the served Ingresses (already chosen by class and sorted)."""
    b = _Builder(services, slices, secrets)
    ingresses = sorted(ingresses, key=lambda i: (i.metadata.namespace or "", i.metadata.name))
    default = NOT_FOUND
    for ing in ingresses:
        if ing.spec.default_backend is not None:
            default = b.backend(ing.metadata.namespace or "", ing.spec.default_backend.svc, ing.key)
            break
    # host -> (match, path) -> (location, from an Exact path)
    hosts: dict[str, dict[tuple[Match, str], tuple[Location, bool]]] = {}
    certs: dict[str, tuple[bytes, bytes]] = {}
    tls: dict[str, str | None] = {}
    tls_hosts: dict[str, str] = {}
    for ing in ingresses:
        ns = ing.metadata.namespace or ""
        for rule in ing.spec.rules:
            host = (rule.host or CATCH_ALL).lower()
            table = hosts.setdefault(host, {})
            for p in rule.http.paths if rule.http else ():
                backend = b.backend(ns, p.backend.svc, ing.key)
                for match, path, exact in locations_of(p):
                    key = (match, path)
                    loc = Location(match, path, backend, ing.key)
                    held = table.get(key)
                    if held is None or (exact and not held[1]):
                        table[key] = (loc, exact)
                    elif held[0].backend != backend and exact == held[1]:
                        b.problems.append(
                            f"Ingress {ing.key}: {host or '*'} {match} {path} is already "
                            f"routed by Ingress {held[0].source}; that one is served"
                        )
        for t in ing.spec.tls:
            for h in t.hosts:
                h = h.lower()
                if h in tls:
                    continue  # the first Ingress's TLS section for a host is used
                name = b.certificate(ns, t.secret_name, h, ing.key)
                if t.secret_name:
                    tls_hosts[h] = f"{ns}/{t.secret_name}"
                tls[h] = name
                if name is not None and t.secret_name:
                    s = b.secrets[f"{ns}/{t.secret_name}"]
                    certs[name] = (s.value(TLS_CERT), s.value(TLS_KEY))
    hosts.setdefault(CATCH_ALL, {})
    servers = []
    for host in sorted(hosts):
        locs = [loc for loc, _ in hosts[host].values()]
        if not any(loc.match == "/" for loc in locs):
            locs.append(Location("/", "/", default, "default backend"))
        locs += _without_redirects(locs)
        locs.sort(key=lambda loc: ("=^~/".index(loc.match[0]), loc.path))
        cert = (tls.get(host) or DEFAULT_CERT) if host in tls or host == CATCH_ALL else None
        servers.append(Server(host, tuple(locs), cert))
    return IngressPlan(
        tuple(servers),
        tuple(sorted(b.upstreams.values(), key=lambda u: u.name)),
        certs,
        tuple(b.problems),
        tls_hosts,
    )


def _without_redirects(locs: list[Location]) -> list[Location]:
    """nginx answers a request for `/foo` with a 301 to `/foo/` when a location `/foo/`
    proxies and no location `= /foo` exists (its auto_redirect). Kubernetes has no such
    redirect: `/foo` must go where the other paths send it. So each such `/foo` gets its
    own exact location, with the backend the remaining locations choose for it."""
    exact = {loc.path for loc in locs if loc.match == "="}
    out = []
    for loc in locs:
        bare = loc.path.rstrip("/")
        if loc.match == "/" or not loc.path.endswith("/") or not bare or bare in exact:
            continue
        exact.add(bare)
        prefixes = [p for p in locs if p.match == "^~" and bare.startswith(p.path)]
        chosen = max(prefixes, key=lambda p: len(p.path), default=None) or next(
            p for p in locs if p.match == "/"
        )
        out.append(Location("=", bare, chosen.backend, chosen.source))
    return out
