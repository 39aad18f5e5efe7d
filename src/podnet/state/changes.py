"""Changes to a live cluster's store, as the API server makes them: compute the cluster's
next state whole (stored objects plus the change), validate it exactly as `up` does (model
build, placement, and the caller's `check`), and write the difference, all in one write
transaction (BEGIN IMMEDIATE): a concurrent change waits for it and then starts from its
result, so no change is lost. Any problem is an InputError naming the object and field, and
nothing is written. Each returns the store's revision after the change: what the caller
waits for the reconciler to reach."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from podnet.model.errors import InputError, Origin
from podnet.model.kinds import CLUSTER_SCOPED, WORKLOAD_KINDS
from podnet.model.load import Loaded, LoadResult
from podnet.state.labels import label_object  # noqa: F401 (`podnet label`'s change)
from podnet.state.local_change import local_writes
from podnet.state.network import NetworkConfig, from_meta, to_meta
from podnet.state.store import Store
from podnet.state.stored_kinds import KIND_NAMES, STORED_KINDS

# The whole-state path (the model's build, Service allocation, placement, the snapshot) is
# imported when a change needs it: a local change (state.local_change) does without, and
# `apply` is on the way of a change to enforcement.
if TYPE_CHECKING:
    from podnet.model.cluster import Cluster
    from podnet.model.service import Service
    from podnet.state.placement import Placement
    from podnet.state.snapshot import ParsedCache

API_GROUP = {
    "NetworkPolicy": "networking.k8s.io",
    "Ingress": "networking.k8s.io",
    "IngressClass": "networking.k8s.io",
    "EndpointSlice": "discovery.k8s.io",
    "Deployment": "apps",
    "ReplicaSet": "apps",
    "StatefulSet": "apps",
    "DaemonSet": "apps",
    "Job": "batch",
    "CronJob": "batch",
}
Key = tuple[str, str, str]  # kind, namespace ("" for cluster-scoped), name
# A check of the next state beyond the model's and placement's (the CLI passes one that
# renders the kernel names); it raises InputError.
Check = Callable[[Store, "Cluster", "Placement", NetworkConfig], None]


def no_check(store: Store, cluster: Cluster, placement: Placement, net: NetworkConfig) -> None:
    return None


def ref(kind: str, name: str) -> str:
    """kubectl's name of an object in its output lines: `networkpolicy.networking.k8s.io/x`."""
    group = API_GROUP.get(kind)
    return f"{kind.lower()}{'.' + group if group else ''}/{name}"


def apply_objects(
    store: Store, incoming: list[Loaded], check: Check = no_check
) -> tuple[list[str], int]:
    """Create or update `incoming` (a workload replaces the pods it expanded into before);
    returns kubectl's lines ("pod/a created") and the store's revision after the change.
    A change that no rule between objects can refuse (state.local_change) is checked
    against the stored copies of what it touches; any other against the whole next state."""
    with store.transaction():
        local = local_writes(store, incoming, body_of)
        if local is not None:
            for o, _, body in local:
                kind, ns, name = _key(o)
                store.put(kind, ns or None, name, body)
            return [f"{ref(o.kind, o.obj.metadata.name)} {verb}" for o, verb, _ in local], (
                store.revision()
            )
        current = _stored(store)
        replaced = {_key(o) for o in incoming}
        owners = {_owner(o) for o in incoming if o.kind in WORKLOAD_KINDS}
        kept = [o for o in current if _key(o) not in replaced and not _owned_by(o, owners)]
        lines = []
        before = {_key(o): o for o in current}
        for o in incoming:
            k = _key(o)
            verb = "created"
            if k in before:
                verb = "unchanged" if body_of(before[k].obj) == body_of(o.obj) else "configured"
            if o.kind in WORKLOAD_KINDS:
                verb = (
                    "configured" if any(_owned_by(c, {_owner(o)}) for c in current) else "created"
                )
            lines.append(f"{ref(o.kind, o.obj.metadata.name)} {verb}")
        return lines, _commit(store, [*kept, *incoming], check, {id(o.obj) for o in kept})


def delete_object(store: Store, kind: str, ns: str, name: str, check: Check = no_check) -> int:
    """Delete one object (a namespace with its objects); the store's revision after it."""
    where = f" in namespace {ns}" if ns else ""
    with store.transaction():
        if kind != "Namespace":
            # Removing one object (not a namespace) leaves every other object valid.
            if not store.delete(kind, ns or None, name):
                raise InputError.line(f'{kind} "{name}" not found{where}')
            return store.revision()
        current = _stored(store)
        target = (kind, ns, name)
        if target not in {_key(o) for o in current}:
            raise InputError.line(f'{kind} "{name}" not found{where}')
        # The namespace's objects go with it.
        kept = [
            o for o in current if _key(o) != target and (o.obj.metadata.namespace or "") != name
        ]
        return _commit(store, kept, check, {id(o.obj) for o in kept})


def _stored(store: Store) -> list[Loaded]:
    from podnet.state.snapshot import stored_objects

    return list(stored_objects(store).objects)


def build(result: LoadResult, node_count: int | None = None) -> Cluster:
    """model.cluster.build (the input-wide rules), imported when a change is validated whole."""
    from podnet.model.cluster import build as build_cluster

    return build_cluster(result, node_count=node_count)


def _commit(store: Store, objects: list[Loaded], check: Check, stored: Collection[int] = ()) -> int:
    """Validate the whole next state as `up` would, then write the difference, in one
    transaction (the caller's, which read the store, when there is one); returns the store's
    revision after it. `stored`: ids of objects read back from the store as they are: one
    that the next state holds unchanged (the very same object) is not written again (at
    5,000 pods, dumping every object to compare it cost ~1-4 s of each `apply`)."""
    from podnet.state import ingress_addon, ingress_checks
    from podnet.state.placement import place
    from podnet.state.service_alloc import with_services

    cluster = build(LoadResult(objects=list(objects)), node_count=None)
    net = from_meta(store.get_meta("config"))
    if store.get_meta("ingress_addon") != "off" and ingress_addon.wanted(cluster):
        cluster = ingress_addon.with_ingress_controller(cluster)
    cluster = with_services(cluster, net, _stored_services(store))
    ingress_checks.check(cluster, unchanged=stored)
    cluster = ingress_checks.with_ingress_status(cluster)
    placement = place(cluster, net, held=store.held(), strict=True, nodes=store.nodes())
    check(store, cluster, placement, net)  # e.g. kernel names that cannot be built
    desired = _desired(cluster, stored)
    with store.transaction():
        existing = {(kind, ns, name) for kind in KIND_NAMES for ns, name, _ in store.versions(kind)}
        for (kind, ns, name), body in desired.items():
            if body is not None:
                store.put(kind, ns, name, body)
        for kind, ns, name in sorted(existing - desired.keys()):
            store.delete(kind, ns, name)
        return store.revision()


def _stored_services(store: Store) -> dict[str, Service]:
    """The Services as stored: what they were allocated, which an update keeps."""
    from podnet.model.service import Service

    out = {}
    for o in store.list("Service"):
        try:
            svc = Service.model_validate(o.body)
        except ValueError:
            continue  # a body the model refuses keeps nothing; the build reports it
        out[svc.key] = svc
    return out


def _desired(cluster: Cluster, stored: Collection[int] = ()) -> dict[Key, dict[str, Any] | None]:
    """Every object of the next state, by key: its body, or None for one in `stored` (ids
    of objects read from the store and kept as they are: nothing to write)."""
    out: dict[Key, dict[str, Any] | None] = {}
    for kind, attr in STORED_KINDS:
        for obj in getattr(cluster, attr):
            key = (kind, obj.metadata.namespace or "", obj.metadata.name)
            out[key] = None if id(obj) in stored else body_of(obj)
    return out


def body_of(obj: Any) -> dict[str, Any]:
    """An object as the store keeps it: the API's JSON, empty fields omitted."""
    return _pruned(obj.model_dump(mode="json", by_alias=True, exclude_none=True))


def _key(o: Loaded) -> Key:
    ns = "" if o.kind in CLUSTER_SCOPED else (o.obj.metadata.namespace or "default")
    return (o.kind, ns, o.obj.metadata.name)


def _owner(o: Loaded) -> tuple[str, str, str]:
    return (o.obj.metadata.namespace or "default", o.kind, o.obj.metadata.name)


def _owned_by(o: Loaded, owners: set[tuple[str, str, str]]) -> bool:
    """A stored pod that a workload of this apply expanded into (it is expanded anew)."""
    if o.kind != "Pod" or not owners:
        return False
    ns = o.obj.metadata.namespace or "default"
    for ref in o.obj.metadata.owner_references:
        if (ns, ref.kind, ref.name) in owners:
            return True
        if ref.kind == "ReplicaSet":
            for ons, okind, oname in owners:
                if (
                    okind == "Deployment"
                    and ons == ns
                    and re.fullmatch(rf"{re.escape(oname)}-[a-z0-9]+", ref.name)
                ):
                    return True
    return False


# An empty selector is not an absent one: `podSelector: {}` in a peer selects every pod,
# `namespaceSelector: {}` every namespace; without them the peer means something else.
KEEP_EMPTY = frozenset({"podSelector", "namespaceSelector"})


def _pruned(value: Any) -> Any:
    """Drop empty fields ({}, [], ""), as the API server's JSON omits them; empty selectors
    stay (KEEP_EMPTY)."""
    if isinstance(value, dict):
        return _pruned_dict(value)
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _pruned_dict(value: dict[Any, Any]) -> dict[Any, Any]:
    # One pass, recursing only into containers: a body of 1,000 Ingresses is ~60,000 values
    # (the update of all of them dumps each three times on `apply`'s way).
    out = {}
    for k, v in value.items():
        if isinstance(v, dict):
            v = _pruned_dict(v)
            if not v and k not in KEEP_EMPTY:
                continue
        elif isinstance(v, list):
            if not v:
                continue
            v = [_pruned(x) for x in v]
        elif v is None or v == "":
            continue
        out[k] = v
    return out


def store_cluster(
    store: Store,
    cluster: Cluster,
    placement: Placement,
    name: str,
    mode: str,
    net: NetworkConfig,
    daemon: bool = True,
) -> ParsedCache:
    """A new cluster's store (`up`): its objects as the API would return them, its nodes,
    and its meta, in one transaction. Pod addresses are not recorded here: the first sync
    records them once the kernel holds them, as every later sync does.

    Returns the objects as a parse cache for that first sync (state.snapshot reads an
    object whose resource version it holds from the cache instead of validating its body
    again): `up` validated them a moment ago, and they are what the bodies read back as
    (tests/test_probe_expect.py holds that round trip). Nodes are left out: their stored
    body gains the range placement gave them."""
    cache: ParsedCache = {}
    with store.transaction():
        for kind, attr in STORED_KINDS:
            for obj in getattr(cluster, attr):
                body = body_of(obj)
                if kind == "Node":
                    _record_node_range(body, placement)
                ns = obj.metadata.namespace if kind not in CLUSTER_SCOPED else None
                rv = store.put(kind, ns, obj.metadata.name, body)
                if kind != "Node":
                    cache[(kind, ns or "", obj.metadata.name)] = (
                        rv,
                        Loaded(kind, obj, Origin("<store>", 0)),
                    )
        for node, cidr in placement.node_cidr.items():
            store.set_node(node, placement.node_ip[node], str(cidr))
        store.set_meta("cluster", name)
        store.set_meta("mode", mode)
        store.set_meta("nodes", len(cluster.nodes))
        store.set_meta("created", time.time())
        store.set_meta("phase", "Building")
        store.set_meta("daemon", daemon)
        store.set_meta("config", to_meta(net))
    return cache


def _record_node_range(body: dict[str, Any], placement: Placement) -> None:
    """The range a node got (declared, derived from a dump's pods, or allocated) is written
    into its stored object, as Kubernetes' node IPAM controller records `spec.podCIDR`: a
    later sync reads it back and keeps it, whatever pods come and go."""
    cidr = str(placement.node_cidr[body["metadata"]["name"]])
    spec = body.setdefault("spec", {})
    spec.setdefault("podCIDR", cidr)
    spec.setdefault("podCIDRs", [cidr])
