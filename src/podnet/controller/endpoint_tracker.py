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
from podnet.state.cluster_patch import SortKey, find, namespace_pods, patch_sorted, sort_key
from podnet.state.placement import Placement, PodKey
from podnet.state.store import ObjectKey, Store

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
    """What the last sync computed, per managed Service, and the readiness it read; and,
    to follow the next change without a walk of every object, which Services are managed
    and which slices of the last answer name each Service (its `kubernetes.io/service-name`
    label)."""

    kept: dict[str, _Kept] = field(default_factory=dict)  # Service key -> its objects
    ready: dict[PodKey, bool] = field(default_factory=dict)  # of pods in those namespaces
    managed: dict[str, Service] = field(default_factory=dict)  # of the last answer
    in_namespace: dict[str, set[str]] = field(default_factory=dict)  # ns -> managed keys
    slices_of: dict[str, set[SortKey]] = field(default_factory=dict)  # Service key -> slices
    slice_service: dict[SortKey, str] = field(default_factory=dict)  # slice -> Service key
    valid: bool = False  # the indexes describe the last answer

    def track(
        self,
        cluster: Cluster,
        placement: Placement,
        ready: Readiness,
        pods: Collection[PodKey] | None,
        keys: Collection[ObjectKey] | None = None,
    ) -> tuple[Cluster, Derived]:
        """The cluster with the slices and Endpoints the controllers keep, and what that
        changes in the store. `pods`: the pods that changed since the last call (None:
        unknown, compute every Service); `keys`: every object that changed since (None:
        unknown, walk every slice). `cluster` is the last answer with those changes (the
        daemon's: state.follow patches the snapshot its last sync recorded)."""
        if pods is None or keys is None or not self.valid:
            self.valid = False
            out = self._whole(cluster, placement, ready, pods)
            self._index(out[0])
            return out
        return self._changes(cluster, placement, ready, pods, keys)

    # --- a walk of every Service and slice (the reference) -----------------------------
    def _whole(
        self,
        cluster: Cluster,
        placement: Placement,
        ready: Readiness,
        pods: Collection[PodKey] | None,
    ) -> tuple[Cluster, Derived]:
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
            self.kept[k] = _compute(managed[k], cluster, placement, now)
        self.ready = now
        slices = [s for s in cluster.endpoint_slices if not _owned_slice(s, managed)]
        endpoints = [e for e in cluster.endpoints if _ident(e) not in managed]
        for kept in self.kept.values():
            slices.extend(kept.slices)
            endpoints.append(kept.endpoints)
        slices.sort(key=sort_key)
        endpoints.sort(key=sort_key)
        out, derived = _diff(cluster, tuple(slices), tuple(endpoints))
        self._adopt(out, touched)
        self.managed = managed
        return out, derived

    def _index(self, cluster: Cluster) -> None:
        self.in_namespace = {}
        for k, svc in self.managed.items():
            self.in_namespace.setdefault(svc.metadata.namespace or "default", set()).add(k)
        self.slices_of = {}
        self.slice_service = {}
        for s in cluster.endpoint_slices:
            if s.service_name:
                self._link(sort_key(s), f"{s.metadata.namespace}/{s.service_name}")
        self.valid = True

    def _link(self, slice_key: SortKey, service: str) -> None:
        self.slice_service[slice_key] = service
        self.slices_of.setdefault(service, set()).add(slice_key)

    def _unlink(self, slice_key: SortKey) -> str | None:
        service = self.slice_service.pop(slice_key, None)
        if service is not None:
            self.slices_of[service].discard(slice_key)
        return service

    def _adopt(self, out: Cluster, touched: Collection[str]) -> None:
        """Keep the objects the cluster holds (equal ones: the old) as the kept ones."""
        if not touched:
            return
        for k in touched:
            kept = self.kept.get(k)
            if kept is None:
                continue
            kept.slices = tuple(find(out.endpoint_slices, sort_key(o)) for o in kept.slices)
            kept.endpoints = find(out.endpoints, sort_key(kept.endpoints))

    # --- from the changed objects only (kube-proxy's and the controller's change tracking)
    def _changes(
        self,
        cluster: Cluster,
        placement: Placement,
        ready: Readiness,
        pods: Collection[PodKey],
        keys: Collection[ObjectKey],
    ) -> tuple[Cluster, Derived]:
        """The same answer as `_whole`, looking only at the Services a change can touch:
        a Service changed; one named by a slice or Endpoints object that changed (before
        or after); every managed one of a namespace where a pod changed or changed
        readiness. Every other Service's objects are the last answer's, which the store
        holds since that sync recorded them."""
        touched: set[str] = set()
        loose: set[SortKey] = set()  # changed slices that name no Service
        for kind, ns, name in keys:
            if kind == "Service":
                k = f"{ns}/{name}"
                touched.add(k)
                was = self.managed.pop(k, None)
                if was is not None:
                    self.in_namespace[was.metadata.namespace or "default"].discard(k)
                svc = find(cluster.services, (ns, name))
                if svc is not None and es.managed(svc):
                    self.managed[k] = svc
                    self.in_namespace.setdefault(ns or "default", set()).add(k)
            elif kind == "EndpointSlice":
                before = self._unlink((ns, name))
                if before is not None:
                    touched.add(before)
                now_ = find(cluster.endpoint_slices, (ns, name))
                if now_ is not None and now_.service_name:
                    after = f"{now_.metadata.namespace}/{now_.service_name}"
                    self._link((ns, name), after)
                    touched.add(after)
                elif now_ is not None:
                    loose.add((ns, name))
            elif kind == "Endpoints":
                touched.add(f"{ns}/{name}")
        now = {
            key: ready(*key)
            for ns, ks in self.in_namespace.items()
            if ks
            for key in (_key(p) for p in namespace_pods(cluster, ns))
        }
        moved = {ns for ns, _ in pods} | {
            key[0] for key, r in now.items() if self.ready.get(key) != r
        }
        for ns in moved:
            touched |= self.in_namespace.get(ns, set())
        self.ready = now
        before_s: dict[SortKey, EndpointSlice] = {}
        after_s: dict[SortKey, EndpointSlice] = {}
        before_e: dict[SortKey, Endpoints] = {}
        after_e: dict[SortKey, Endpoints] = {}
        for key in loose:
            s = find(cluster.endpoint_slices, key)
            before_s[key] = s
            if s.metadata.labels.get(MANAGED_BY_LABEL) != es.CONTROLLER:
                after_s[key] = s
        for k in touched:
            ns, _, name = k.partition("/")
            held = [find(cluster.endpoint_slices, key) for key in self.slices_of.get(k, ())]
            before_s.update((sort_key(s), s) for s in held)
            e = find(cluster.endpoints, (ns, name))
            if e is not None:
                before_e[(ns, name)] = e
            svc = self.managed.get(k)
            if svc is None:  # not the controllers': the input's own, but theirs go
                self.kept.pop(k, None)
                after_s.update(
                    (sort_key(s), s)
                    for s in held
                    if s.metadata.labels.get(MANAGED_BY_LABEL) != es.CONTROLLER
                )
                if e is not None:
                    after_e[(ns, name)] = e
                continue
            kept = self.kept[k] = _compute(svc, cluster, placement, now)
            after_s.update((sort_key(s), s) for s in kept.slices)
            after_e[sort_key(kept.endpoints)] = kept.endpoints
        put: list[tuple[str, str, str, dict[str, Any]]] = []
        delete: list[tuple[str, str, str]] = []
        patched = {
            kind: _patch_region(kind, objs, before, after, put, delete)
            for kind, objs, before, after in (
                ("EndpointSlice", cluster.endpoint_slices, before_s, after_s),
                ("Endpoints", cluster.endpoints, before_e, after_e),
            )
        }
        out = dataclasses.replace(
            cluster, endpoint_slices=patched["EndpointSlice"], endpoints=patched["Endpoints"]
        )
        for key, s in after_s.items():  # the controllers' new slices name their Service
            if s.service_name and key not in self.slice_service:
                self._link(key, f"{s.metadata.namespace}/{s.service_name}")
        for key in before_s.keys() - after_s.keys():
            self._unlink(key)
        self._adopt(out, touched)
        return out, Derived(tuple(put), tuple(sorted(delete)))

    def forget(self) -> None:
        self.kept.clear()
        self.ready.clear()
        self.valid = False


def _patch_region(
    kind: str,
    objs: tuple[Any, ...],
    before: dict[SortKey, Any],
    after: dict[SortKey, Any],
    put: list[tuple[str, str, str, dict[str, Any]]],
    delete: list[tuple[str, str, str]],
) -> tuple[Any, ...]:
    """`objs` with the region `before` replaced by `after`, noting what the store must
    write (`put`, in key order as `_diff` does) and delete. An object equal to the one
    held keeps the held one's identity (see `_diff`), in `after` too."""
    for key in sorted(after):
        was, obj = before.get(key), after[key]
        if was is obj:
            continue
        if was is None or body_of(was) != body_of(obj):
            put.append((kind, *key, body_of(obj)))
        else:
            after[key] = was
    gone = before.keys() - after.keys()
    delete += [(kind, *key) for key in gone]
    return patch_sorted(objs, after, set(gone))


def _compute(
    svc: Service, cluster: Cluster, placement: Placement, now: dict[PodKey, bool]
) -> _Kept:
    """One Service's slices and Endpoints, from the pods of its namespace."""
    views = [
        es.PodView(p, placement.pod_ip[_key(p)], placement.pod_node[_key(p)], now[_key(p)])
        for p in namespace_pods(cluster, svc.metadata.namespace or "default")
        if _key(p) in placement.pod_ip and _key(p) in placement.pod_node
    ]
    return _Kept(svc, es.service_slices(svc, views), es.service_endpoints(svc, views))


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
