"""The endpoints controllers with a change tracker (kube-proxy's idea): each Service's
EndpointSlices and Endpoints are kept from the last sync and computed again only for the
Services a change can touch: the Service itself changed, a pod of its namespace was added,
changed, moved or deleted, or a pod of its namespace changed readiness. Every other
Service keeps its objects, the very same values, so that the comparison with the store
costs nothing for them.

The whole computation (`state.endpoint_slices.desired`) stays the reference:
tests/test_follow.py holds the tracker's answer equal to it over random sequences of
changes; `track(..., pods=None)` computes everything (a full sync)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from podnet.model.cluster import Cluster
from podnet.model.service import MANAGED_BY_LABEL, Endpoints, EndpointSlice, Service
from podnet.state import endpoint_slices as es
from podnet.state.changes import body_of
from podnet.state.cluster_patch import namespace_pods, sort_key
from podnet.state.placement import Placement, PodKey
from podnet.state.store import Store

Readiness = Callable[[str, str], bool]  # (namespace, pod) -> the kubelet's Ready


@dataclass(frozen=True)
class Derived:
    """What the endpoints controllers change in the store: EndpointSlices and Endpoints to
    write (kind, namespace, name, body) and to delete (kind, namespace, name)."""

    put: tuple[tuple[str, str, str, dict[str, Any]], ...] = ()
    delete: tuple[tuple[str, str, str], ...] = ()

    def record(self, store: Store) -> None:
        for kind, ns, name, body in self.put:
            store.put(kind, ns, name, body)
        for kind, ns, name in self.delete:
            store.delete(kind, ns, name)

    def __bool__(self) -> bool:
        return bool(self.put or self.delete)


@dataclass
class _Kept:
    service: Service
    slices: tuple[EndpointSlice, ...]
    endpoints: Endpoints


@dataclass
class EndpointTracker:
    """What the last sync computed, per managed Service, and the readiness it read."""

    kept: dict[str, _Kept] = field(default_factory=dict)  # Service key -> its objects
    ready: dict[PodKey, bool] = field(default_factory=dict)  # of pods in those namespaces

    def track(
        self,
        cluster: Cluster,
        placement: Placement,
        ready: Readiness,
        pods: Collection[PodKey] | None,
    ) -> tuple[Cluster, Derived]:
        """The cluster with the slices and Endpoints the controllers keep, and what that
        changes in the store. `pods`: the pods that changed since the last call (None:
        unknown, compute every Service). Call `forget` when that sync failed."""
        managed = {s.key: s for s in cluster.services if es.managed(s)}
        namespaces = {s.metadata.namespace or "default" for s in managed.values()}
        now = {
            key: ready(*key)
            for ns in namespaces
            for key in (_key(p) for p in namespace_pods(cluster, ns))
        }
        if pods is None:
            touched = set(managed)
        else:
            moved = {ns for ns, _ in pods} | {
                key[0] for key, r in now.items() if self.ready.get(key) != r
            }
            touched = {
                k
                for k, s in managed.items()
                if k not in self.kept
                or self.kept[k].service is not s
                or (s.metadata.namespace or "default") in moved
            }
        for k in list(self.kept):
            if k not in managed:
                del self.kept[k]
        for k in touched:
            svc = managed[k]
            ns = svc.metadata.namespace or "default"
            views = [
                es.PodView(p, placement.pod_ip[_key(p)], placement.pod_node[_key(p)], now[_key(p)])
                for p in namespace_pods(cluster, ns)
                if _key(p) in placement.pod_ip and _key(p) in placement.pod_node
            ]
            self.kept[k] = _Kept(
                svc, es.service_slices(svc, views), es.service_endpoints(svc, views)
            )
        self.ready = now
        slices = [s for s in cluster.endpoint_slices if not _owned_slice(s, managed)]
        endpoints = [e for e in cluster.endpoints if _ident(e) not in managed]
        for kept in self.kept.values():
            slices.extend(kept.slices)
            endpoints.append(kept.endpoints)
        slices.sort(key=sort_key)
        endpoints.sort(key=sort_key)
        out, derived = _diff(cluster, tuple(slices), tuple(endpoints))
        if derived or touched:  # keep the objects the cluster holds (equal ones: the old)
            held_slices = {sort_key(o): o for o in out.endpoint_slices}
            held_endpoints = {sort_key(o): o for o in out.endpoints}
            for k in touched:
                kept = self.kept[k]
                kept.slices = tuple(held_slices[sort_key(o)] for o in kept.slices)
                kept.endpoints = held_endpoints[sort_key(kept.endpoints)]
        return out, derived

    def forget(self) -> None:
        self.kept.clear()
        self.ready.clear()


def _key(p: Any) -> PodKey:
    return (p.metadata.namespace or "default", p.metadata.name)


def _ident(o: Any) -> str:
    return f"{o.metadata.namespace}/{o.metadata.name}"


def _owned_slice(s: EndpointSlice, managed: dict[str, Service]) -> bool:
    """A slice the controller manages, or one of a Service it manages (replaced)."""
    return (
        s.metadata.labels.get(MANAGED_BY_LABEL) == es.CONTROLLER
        or f"{s.metadata.namespace}/{s.service_name}" in managed
    )


def _diff(
    cluster: Cluster, slices: tuple[EndpointSlice, ...], endpoints: tuple[Endpoints, ...]
) -> tuple[Cluster, Derived]:
    put: list[tuple[str, str, str, dict[str, Any]]] = []
    delete: list[tuple[str, str, str]] = []
    kept: dict[str, tuple[Any, ...]] = {}
    for kind, before, after in (
        ("EndpointSlice", cluster.endpoint_slices, slices),
        ("Endpoints", cluster.endpoints, endpoints),
    ):
        old = {(o.metadata.namespace or "", o.metadata.name): o for o in before}
        new = {(o.metadata.namespace or "", o.metadata.name): o for o in after}
        for key, obj in new.items():
            was = old.get(key)
            if was is obj:
                continue
            if was is None or body_of(was) != body_of(obj):
                put.append((kind, *key, body_of(obj)))
            else:
                new[key] = was  # the object the cluster (the parse cache) holds: same identity
        delete += [(kind, *key) for key in old.keys() - new.keys()]
        kept[kind] = tuple(new.values())
    # Equal values when nothing is put; an object unchanged keeps its identity from sync to
    # sync (render.service_ports.PortCache and the next comparison: one `is`).
    out = dataclasses.replace(
        cluster, endpoint_slices=kept["EndpointSlice"], endpoints=kept["Endpoints"]
    )
    return out, Derived(tuple(put), tuple(sorted(delete)))


def stored_readiness(store: Store) -> Readiness:
    """Each pod's readiness as the stored EndpointSlices of the controller record it (an
    endpoint's `serving` condition; a pod in none: not ready): the readiness of the state
    the kernel holds after `up` or a previous daemon's last sync. A new daemon adopts that
    state with it (Reconciler.assume_synced), then follows its stand-in's readiness by an
    incremental sync, instead of a full sync of the whole cluster because the stand-in had
    proven pods ready meanwhile."""
    serving: set[tuple[str, str]] = set()
    for o in store.list("EndpointSlice"):
        if o.body.get("metadata", {}).get("labels", {}).get(MANAGED_BY_LABEL) != es.CONTROLLER:
            continue
        for e in o.body.get("endpoints") or ():
            ref = e.get("targetRef") or {}
            if ref.get("kind", "Pod") == "Pod" and (e.get("conditions") or {}).get("serving"):
                serving.add((ref.get("namespace") or o.namespace, ref.get("name", "")))
    return lambda namespace, pod: (namespace, pod) in serving
