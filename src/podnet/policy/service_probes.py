"""What `podnet probe --via service` expects: every source pod to every Service's ClusterIP
on each Service port, judged on the endpoint kube-proxy picks. Pure.

The endpoints are the cluster's EndpointSlices as stored (the control plane's readiness,
what the live kube-proxy rules are rendered from), walked by the analyzer's own Service
resolution (`via_service.through_slices`): the slice port with the Service port's name and
protocol gives the target port, per endpoint. NetworkPolicy never sees the Service
(kube-proxy's DNAT comes first), so each endpoint's verdict is the engine's for (source,
endpoint pod, target port), from the same vectorised matrix as `--via pod`. kube-proxy's
pick is random; the reply names the pod that answered, so the probe is judged on that
endpoint (policy.expectations.Result).
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from podnet.model.cluster import Cluster
from podnet.model.errors import InputError, Problem
from podnet.model.service import EndpointSlice, Service, ServicePort
from podnet.policy.endpoints import PodEndpoint
from podnet.policy.engine import Engine
from podnet.policy.expectations import PROBED_PROTOCOLS, Choice, Probe, ProbePlan, identity
from podnet.policy.matrix import compute
from podnet.policy.ports import PortProto
from podnet.policy.via_service import Hop, through_slices

SERVICE_PREFIX = "svc/"


def probed_services(cluster: Cluster) -> list[Service]:
    """Services with a virtual IP kube-proxy serves: not headless, not ExternalName."""
    return sorted(
        (
            s
            for s in cluster.services
            if s.spec.type != "ExternalName" and s.spec.cluster_ip and not s.spec.headless
        ),
        key=lambda s: s.key,
    )


def service_plan(
    engine: Engine,
    cluster: Cluster,
    sources: list[PodEndpoint],
    services: list[Service],
    ports: list[PortProto] | None,
) -> ProbePlan:
    """Every (source, Service port) probe with the endpoints kube-proxy may pick for it.

    `ports`: Service ports to probe (None: each Service's own). The kube-dns Service's
    port 53 is probed like any other: its endpoints' identity is the DNS server's
    (expectations.identity), so the probe asks a DNS question there.

    The work is in proportion to what is probed (sources x endpoints): what does not
    depend on the source (an endpoint's port, identity, whether it listens, its column of
    verdicts) is worked out once per endpoint, not once per probe.
    """
    by_key = {p.key: p for p in engine.pods}
    index = {p.key: i for i, p in enumerate(engine.pods)}
    by_service = slices_by_service(cluster)
    skipped: list[str] = []
    ways: list[tuple[Service, ServicePort, list[Hop]]] = []
    for svc in services:
        slices = by_service.get((svc.metadata.namespace, svc.metadata.name), [])
        hops = through_slices(svc, slices, by_key, ports)
        for sp in svc.spec.ports:
            pp = PortProto(sp.port, sp.protocol)
            if ports is not None and pp not in ports:
                continue
            where = f"{SERVICE_PREFIX}{svc.key} {pp}"
            if sp.protocol not in PROBED_PROTOCOLS:
                skipped.append(f"{where}: {sp.protocol} is not probed")
                continue
            mine = [h for h in hops if h.port is sp]
            if len(mine) != _ready_count(slices, sp):
                skipped.append(f"{where}: ready endpoints that are not pods of the cluster")
                continue
            ways.append((svc, sp, mine))
    verdicts = _verdicts(engine, index, [h for _, _, hs in ways for h in hs])
    probes: list[Probe] = []
    ends: set[str] = {p.key for p in sources}
    asked: set[PortProto] = set()
    local_gaps = 0
    for svc, sp, hops in ways:
        address = svc.spec.cluster_ip or ""
        destination = f"{SERVICE_PREFIX}{svc.key}"
        ways_from: dict[str | None, _Way] = {}  # by the source's node for "Local", else None
        local = svc.spec.internal_traffic_policy == "Local"
        pp = PortProto(sp.port, sp.protocol)
        for src in sources:
            node = src.node if local else None
            way = ways_from.get(node)
            if way is None:
                # "Local" means only node-local endpoints: kube-proxy drops the rest (svl-).
                usable = [h for h in hops if h.endpoint.node == node] if local else hops
                way = ways_from[node] = _Way.of(usable, verdicts)
            if hops and not way.choices:
                local_gaps += 1
                continue
            asked.add(pp)
            if not way.used:
                way.used = True
                ends.update(c[0].endpoint for c in way.choices)
            i = index[src.key]
            picks = tuple(
                c[1 if col[i] else 0] for c, col in zip(way.choices, way.columns, strict=True)
            )
            probes.append(
                Probe(
                    src.key,
                    destination,
                    sp.port,
                    sp.protocol,
                    bool(picks) and all(c.expected for c in picks),
                    way.identity,
                    address=address,
                    choices=picks,
                )
            )
    if local_gaps:
        skipped.append(
            f"{local_gaps} source/Service port combinations not probed: internalTrafficPolicy "
            "Local and no endpoint on the source's node (kube-proxy drops them)"
        )
    probes.sort(key=lambda p: (p.source, p.destination, p.port, p.protocol))
    return ProbePlan(sorted(ends), sorted(asked, key=str), probes, skipped)


@dataclass
class _Way:
    """The endpoints one probe may reach, worked out once for every source that has them:
    each endpoint's two possible Choices (blocked, allowed) and its column of verdicts."""

    choices: list[tuple[Choice, Choice]]
    columns: list[np.ndarray]
    identity: str
    used: bool = False

    @staticmethod
    def of(hops: list[Hop], verdicts: dict[tuple[str, PortProto], np.ndarray]) -> _Way:
        choices = []
        for h in hops:
            key, port = h.endpoint.key, h.target.port
            line, listens = identity(h.endpoint, h.target), _listens(h.endpoint, h.target)
            blocked = Choice(key, port, False, line, listens=listens)
            allowed = Choice(key, port, True, line, listens=listens)
            choices.append((blocked, allowed))
        columns = [verdicts[(h.endpoint.key, h.target)] for h in hops]
        lines = " | ".join(sorted({c[0].identity for c in choices}))
        return _Way(choices, columns, lines)


def slices_by_service(cluster: Cluster) -> dict[tuple[str | None, str | None], list[EndpointSlice]]:
    """The cluster's EndpointSlices by (namespace, Service name), in the cluster's order."""
    out: dict[tuple[str | None, str | None], list[EndpointSlice]] = defaultdict(list)
    for s in cluster.endpoint_slices:
        out[(s.metadata.namespace, s.service_name)].append(s)
    return out


def _ends(p: Probe) -> Iterable[str]:
    return (c.endpoint for c in p.choices)


def _ready_count(slices: Iterable[EndpointSlice], sp: ServicePort) -> int:
    n = 0
    for s in slices:
        if any((p.name or "") == (sp.name or "") and p.protocol == sp.protocol for p in s.ports):
            n += sum(e.ready for e in s.endpoints)
    return n


def _listens(pod: PodEndpoint, pp: PortProto) -> bool:
    """The stand-in serves each declared port on the pod's address, except localhost-only
    ones: a target port the pod does not declare (or binds to 127.0.0.1) is refused."""
    declared = any(p.port == pp.port and p.protocol == pp.protocol for p in pod.ports)
    return declared and (pp.port, pp.protocol) not in pod.localhost


def _verdicts(
    engine: Engine, index: dict[str, int], hops: list[Hop]
) -> dict[tuple[str, PortProto], np.ndarray]:
    """(endpoint, target port) -> the engine's verdict for every source pod (a column of
    the matrix `--via pod` uses), all sources at once per target port."""
    targets: dict[PortProto, set[str]] = defaultdict(set)
    for h in hops:
        targets[h.target].add(h.endpoint.key)
    order = sorted(targets, key=str)
    if not order:
        return {}
    matrix = compute(engine, order, declared_only=False)
    out: dict[tuple[str, PortProto], np.ndarray] = {}
    for k, pp in enumerate(order):
        keys = sorted(targets[pp])
        m = matrix.dense(k, np.array([index[key] for key in keys], dtype=np.int64))
        for pos, key in enumerate(keys):
            out[(key, pp)] = m[:, pos]
    return out


def select_services(
    cluster: Cluster, text: str, pods: list[PodEndpoint], flag: str
) -> list[Service]:
    """`--to` through Services: `svc/NS/NAME` names one; `*` is every Service; `ns/*` the
    Services of that namespace and every Service with an endpoint there; `ns/pod` (a glob)
    every Service with that pod among its endpoints, ready or not (an endpoint without a
    targetRef is the pod holding its address)."""
    from podnet.policy.select import parse_selection

    services = probed_services(cluster)
    chosen: dict[str, Service] = {}
    keys: set[str] = set()
    for item in filter(None, (x.strip() for x in text.split(","))):
        if item.startswith(SERVICE_PREFIX):
            key = item[len(SERVICE_PREFIX) :]
            hit = next((s for s in services if s.key == key), None)
            if hit is None:
                raise InputError(
                    [Problem(None, "", flag, f"{item!r}: no Service {key} with a ClusterIP")]
                )
            chosen[key] = hit
            continue
        in_ns = []
        if item == "*" or item.endswith("/*"):
            ns = item[:-2] if item != "*" else "*"
            in_ns = [s for s in services if fnmatch.fnmatchcase(s.metadata.namespace or "", ns)]
            chosen.update((s.key, s) for s in in_ns)
        matched = [p for p in pods if item == "*" or fnmatch.fnmatchcase(p.key, item)]
        if not matched and not in_ns:
            _, outside = parse_selection(item, pods, flag)  # its error names the item
            if outside:
                raise InputError.line(f"{flag} through Services takes svc/NS/NAME, ns/pod, ns/*, *")
        keys.update(p.key for p in matched)
    ips = {p.ip for p in pods if p.key in keys and not p.host_network}
    by_service = slices_by_service(cluster)
    for svc in services:
        for s in by_service.get((svc.metadata.namespace, svc.metadata.name), ()):
            if any(
                f"{e.target_ref.namespace}/{e.target_ref.name}" in keys
                if e.target_ref
                else e.addresses[0] in ips
                for e in s.endpoints
            ):
                chosen[svc.key] = svc
    return sorted(chosen.values(), key=lambda s: s.key)
