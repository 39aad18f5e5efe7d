"""The EndpointSlices and Endpoints of each Service, as the upstream endpointslice and
endpoints controllers compute them from the Service's selector and its pods' readiness.

Pure: the caller says which pods are ready (the daemon from its readiness probes; the
analyzer takes every pod as ready unless its manifest says Ready=False). Upstream rules
kept here (pkg/controller/endpointslice, endpointslice reconciler and utils):

- only Services with a selector are managed; a selectorless Service keeps the slices and
  Endpoints its manifests give; an ExternalName Service has none;
- a pod is an endpoint when it is not terminal and has an address (hostNetwork pods with
  their node's); `ready` = pod ready (or publishNotReadyAddresses), `serving` = pod ready,
  `terminating` = false (podnet deletes pods at once); a quarantined pod (label
  podnet.io/quarantine, `podnet quarantine`) is neither ready nor serving;
- a Service port's targetPort is resolved per pod: a number as it is, a name through the
  pod's container ports of that name and protocol; a pod that cannot resolve a port is an
  endpoint only for the ports it resolves, and endpoints are grouped into slices by their
  resolved port set, at most 100 endpoints a slice;
- `hostname` when the pod's `subdomain` names the Service; labels
  `kubernetes.io/service-name`, `endpointslice.kubernetes.io/managed-by` and the Service's
  own; a Service that selects nothing gets one slice without endpoints or ports.

Names are `<service>-<5 characters>` as upstream's generateName gives, but derived from the
Service and the port set, so that a recomputation names the same slice the same way.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from podnet.model.cluster import Cluster
from podnet.model.meta import ObjectMeta, OwnerReference
from podnet.model.pod import Pod
from podnet.model.quarantine_label import is_quarantine
from podnet.model.service import (
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    Endpoint,
    EndpointAddress,
    EndpointConditions,
    EndpointPort,
    Endpoints,
    EndpointSlice,
    EndpointsPort,
    EndpointSubset,
    ObjectReference,
    Service,
    ServicePort,
)

CONTROLLER = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
MAX_PER_SLICE = 100  # the controller's --max-endpoints-per-slice default
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery's utilrand alphabet

PodKey = tuple[str, str]
ResolvedPorts = tuple[tuple[str, str, int], ...]  # (name, protocol, port) per Service port


@dataclass(frozen=True)
class PodView:
    """What the controllers need of a pod beyond its manifest: where it runs, its address,
    whether it is ready."""

    pod: Pod
    ip: str
    node: str
    ready: bool


def resolve_port(pod: Pod, port: ServicePort) -> int | None:
    """podutil.FindPort: a numeric targetPort is used as it is; a name must be a container
    port of the pod with that name and the Service port's protocol."""
    target = port.target
    if isinstance(target, int):
        return target
    for _, cp in pod.all_ports:
        if cp.name == target and cp.protocol == port.protocol:
            return cp.container_port
    return None


def _name(svc: Service, salt: str) -> str:
    digest = hashlib.sha256(f"{svc.key}|{salt}".encode()).digest()
    suffix = "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:5])
    base = svc.metadata.name[: 63 - 6]
    return f"{base}-{suffix}"


def _owner(svc: Service) -> OwnerReference:
    uid = hashlib.sha256(f"Service/{svc.key}".encode()).hexdigest()
    uid = f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:32]}"
    return OwnerReference(api_version="v1", kind="Service", name=svc.metadata.name, uid=uid)


def _labels(svc: Service, managed: bool) -> dict[str, str]:
    labels = dict(svc.metadata.labels)
    labels[SERVICE_NAME_LABEL] = svc.metadata.name
    if managed:
        labels[MANAGED_BY_LABEL] = CONTROLLER
    if svc.spec.headless:
        labels[HEADLESS_LABEL] = ""
    return labels


def _serving(v: PodView) -> bool:
    """The pod's Ready, except that a quarantined pod (`podnet quarantine`) is never: as a
    readiness gate whose condition is False, so it leaves every Service's ready endpoints
    and the traffic goes to the others."""
    return v.ready and not is_quarantine(v.pod.metadata.labels)


def _ready(svc: Service, v: PodView) -> bool:
    """`ready`: serving, or publishNotReadyAddresses, which does not publish a quarantined
    pod (quarantine must take it out of the Service whatever the Service says)."""
    if is_quarantine(v.pod.metadata.labels):
        return False
    return v.ready or svc.spec.publish_not_ready_addresses


def _endpoint(svc: Service, v: PodView) -> Endpoint:
    p = v.pod
    ready = _ready(svc, v)
    hostname = (
        p.spec.hostname if p.spec.hostname and p.spec.subdomain == svc.metadata.name else None
    )
    return Endpoint(
        addresses=(v.ip,),
        conditions=EndpointConditions(ready=ready, serving=_serving(v), terminating=False),
        hostname=hostname,
        target_ref=ObjectReference(
            kind="Pod", namespace=p.metadata.namespace, name=p.metadata.name
        ),
        node_name=v.node,
    )


def selected(svc: Service, pods: list[PodView]) -> list[PodView]:
    # A Service's selector is equality-based: every pair must be among the pod's labels.
    want = (svc.spec.selector or {}).items()
    return [v for v in pods if want <= v.pod.metadata.labels.items()]


def by_port_set(svc: Service, pods: list[PodView]) -> dict[ResolvedPorts, list[PodView]]:
    """The selected pods grouped by the ports the Service's ports resolve to on each."""
    groups: dict[ResolvedPorts, list[PodView]] = defaultdict(list)
    for v in selected(svc, pods):
        resolved = []
        for sp in svc.spec.ports:
            n = resolve_port(v.pod, sp)
            if n is not None:
                resolved.append((sp.name or "", sp.protocol, n))
        groups[tuple(resolved)].append(v)
    return groups


def service_slices(svc: Service, pods: list[PodView]) -> tuple[EndpointSlice, ...]:
    """The slices the controller keeps for one Service with a selector."""
    groups = by_port_set(svc, pods)
    meta_labels = _labels(svc, managed=True)
    out = []
    for ports, members in sorted(groups.items()):
        members.sort(key=lambda v: v.pod.metadata.name)
        eps = [_endpoint(svc, v) for v in members]
        for i in range(0, len(eps), MAX_PER_SLICE):
            salt = f"{ports}|{i // MAX_PER_SLICE}"
            out.append(
                _slice(svc, _name(svc, salt), meta_labels, tuple(eps[i : i + MAX_PER_SLICE]), ports)
            )
    if not out:  # upstream's placeholder: the Service exists, nothing is selected
        out.append(_slice(svc, _name(svc, "placeholder"), meta_labels, (), ()))
    return tuple(out)


def _slice(
    svc: Service,
    name: str,
    labels: dict[str, str],
    endpoints: tuple[Endpoint, ...],
    ports: ResolvedPorts,
) -> EndpointSlice:
    return EndpointSlice(
        metadata=ObjectMeta(
            name=name,
            namespace=svc.metadata.namespace,
            labels=labels,
            owner_references=(_owner(svc),),
        ),
        address_type="IPv4",
        endpoints=endpoints,
        ports=tuple(
            EndpointPort(name=n, protocol=proto, port=port, app_protocol=_app(svc, n))
            for n, proto, port in ports
        ),
    )


def _app(svc: Service, name: str) -> str | None:
    for p in svc.spec.ports:
        if (p.name or "") == name:
            return p.app_protocol
    return None


def service_endpoints(svc: Service, pods: list[PodView]) -> Endpoints:
    """The legacy Endpoints object: one subset per resolved port set, ready addresses apart
    from not-ready ones (publishNotReadyAddresses: all ready); a pod that resolves none of
    the Service's ports is in no subset."""
    groups = {
        ports: members
        for ports, members in by_port_set(svc, pods).items()
        if ports or not svc.spec.ports
    }
    subsets = []
    for ports, members in sorted(groups.items()):
        members.sort(key=lambda v: (v.ip, v.pod.metadata.name))
        ready: list[EndpointAddress] = []
        unready: list[EndpointAddress] = []
        for v in members:
            p = v.pod
            hostname = (
                p.spec.hostname
                if p.spec.hostname and p.spec.subdomain == svc.metadata.name
                else None
            )
            addr = EndpointAddress(
                ip=v.ip,
                hostname=hostname,
                node_name=v.node,
                target_ref=ObjectReference(
                    kind="Pod", namespace=p.metadata.namespace, name=p.metadata.name
                ),
            )
            (ready if _ready(svc, v) else unready).append(addr)
        subsets.append(
            EndpointSubset(
                addresses=tuple(ready),
                not_ready_addresses=tuple(unready),
                ports=tuple(
                    EndpointsPort(name=n or None, port=port, protocol=proto)
                    for n, proto, port in ports
                ),
            )
        )
    labels = dict(svc.metadata.labels)
    if svc.spec.headless:
        labels[HEADLESS_LABEL] = ""
    return Endpoints(
        metadata=ObjectMeta(
            name=svc.metadata.name, namespace=svc.metadata.namespace, labels=labels
        ),
        subsets=tuple(subsets),
    )


def pod_views(
    cluster: Cluster,
    pod_ip: Mapping[PodKey, str],
    pod_node: Mapping[PodKey, str],
    ready: Callable[[Pod], bool],
) -> dict[str, list[PodView]]:
    """Every pod that can be an endpoint, by namespace: placed, with an address, not
    terminal (the cluster holds no terminal pod)."""
    out: dict[str, list[PodView]] = defaultdict(list)
    for p in cluster.pods:
        key = (p.metadata.namespace or "default", p.metadata.name)
        ip = pod_ip.get(key)
        node = pod_node.get(key)
        if ip is None or node is None:
            continue
        out[key[0]].append(PodView(p, ip, node, ready(p)))
    return out


def managed(svc: Service) -> bool:
    """Whether the controllers keep this Service's slices and Endpoints."""
    # An empty selector is no selector: the API server stores `{}` as nil.
    return bool(svc.spec.selector) and svc.spec.type != "ExternalName"


def desired(
    cluster: Cluster, views: Mapping[str, list[PodView]]
) -> tuple[tuple[EndpointSlice, ...], tuple[Endpoints, ...]]:
    """Every EndpointSlice and Endpoints object of the cluster: the controllers' for Services
    with a selector, the input's own for the others (slices the controller manages that no
    Service owns any more are gone)."""
    slices: list[EndpointSlice] = []
    endpoints: list[Endpoints] = []
    owned = {s.key for s in cluster.services if managed(s)}
    for s in cluster.endpoint_slices:
        key = f"{s.metadata.namespace}/{s.service_name}"
        if s.metadata.labels.get(MANAGED_BY_LABEL) == CONTROLLER or key in owned:
            continue
        slices.append(s)
    for e in cluster.endpoints:
        if f"{e.metadata.namespace}/{e.metadata.name}" not in owned:
            endpoints.append(e)
    for svc in cluster.services:
        if not managed(svc):
            continue
        pods = views.get(svc.metadata.namespace or "default", [])
        slices.extend(service_slices(svc, pods))
        endpoints.append(service_endpoints(svc, pods))
    slices.sort(key=lambda s: (s.metadata.namespace or "", s.metadata.name))
    endpoints.sort(key=lambda e: (e.metadata.namespace or "", e.metadata.name))
    return tuple(slices), tuple(endpoints)


def statically_ready(pod: Pod) -> bool:
    """The analyzer's reading: a pod is ready unless its manifest says Ready=False."""
    return not pod.declared_unready
