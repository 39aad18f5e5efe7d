"""The next snapshot as a patch of the previous one: the objects the store says changed
replace theirs, those it says were deleted go, and every other object stays the very same
value (so that later steps can tell "unchanged" by identity, at no cost).

`model.cluster.build` applies input-wide rules (workloads expanded, namespaces and nodes
derived, terminal pods dropped); on a live store most of them cannot fire (the store holds
no workloads, and `apply` stored every namespace and node it derived). The patch handles
the changes for which the rules give the same answer as before and declines (None) the
others: any Node changed, any Namespace deleted, an object in a namespace that does not
exist, a pod on a node that does not exist. The caller then builds the snapshot whole,
which reports or derives what it must. tests/test_follow.py holds the patch equal to a
whole build over random sequences of changes.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_left
from typing import Any

from podnet.model.cluster import TERMINAL_PHASES, Cluster
from podnet.model.kinds import identity
from podnet.model.load import Loaded
from podnet.model.pod import Pod
from podnet.state.store import ObjectKey
from podnet.state.stored_kinds import STORED_KINDS

ATTR = dict(STORED_KINDS)
SortKey = tuple[str, str]


def sort_key(obj: Any) -> SortKey:
    """The order of every collection of a Cluster (model.cluster._sorted)."""
    return (obj.metadata.namespace or "", obj.metadata.name)


def patch_cluster(
    cluster: Cluster, changed: dict[ObjectKey, Loaded], deleted: set[ObjectKey]
) -> Cluster | None:
    """`cluster` with `changed` objects put and `deleted` ones removed; None when a whole
    build is needed (see the module's docstring)."""
    kinds = {k[0] for k in changed} | {k[0] for k in deleted}
    if "Node" in kinds or any(k[0] == "Namespace" for k in deleted):
        return None
    put: dict[str, dict[SortKey, Any]] = {}
    gone: dict[str, set[SortKey]] = {}
    for key, loaded in changed.items():
        obj = loaded.obj
        if key[0] == "Pod" and obj.status.phase in TERMINAL_PHASES:
            gone.setdefault("Pod", set()).add(sort_key(obj))  # the build drops it
            continue
        put.setdefault(key[0], {})[sort_key(obj)] = obj
    for kind, ns, name in deleted:
        gone.setdefault(kind, set()).add((ns, name))
    updates: dict[str, Any] = {}
    for kind in kinds:
        if kind not in ATTR:
            return None
        attr = ATTR[kind]
        updates[attr] = patch_sorted(
            getattr(cluster, attr), put.get(kind, {}), gone.get(kind, set())
        )
    out = dataclasses.replace(cluster, **updates)
    namespaces = {n.metadata.name for n in out.namespaces}
    nodes = {n.metadata.name for n in out.nodes}
    for objs in put.values():
        for obj in objs.values():
            ns = obj.metadata.namespace
            if ns is not None and ns not in namespaces:
                return None  # the build would create it (with a warning)
            if isinstance(obj, Pod) and obj.spec.node_name and obj.spec.node_name not in nodes:
                return None  # the build would derive the node
    origins = dict(cluster.origins)
    for key, loaded in changed.items():
        origins[identity(key[0], key[1] or None, key[2])] = loaded.origin
    object.__setattr__(out, "origins", origins)
    return out


def patch_sorted(
    objs: tuple[Any, ...], put: dict[SortKey, Any], gone: set[SortKey]
) -> tuple[Any, ...]:
    """A sorted tuple with `put` inserted or replaced and `gone` removed (binary search:
    the rest of the tuple is not looked at)."""
    out = list(objs)
    for key in gone - put.keys():
        i = bisect_left(out, key, key=sort_key)
        if i < len(out) and sort_key(out[i]) == key:
            del out[i]
    for key, obj in put.items():
        i = bisect_left(out, key, key=sort_key)
        if i < len(out) and sort_key(out[i]) == key:
            out[i] = obj
        else:
            out.insert(i, obj)
    return tuple(out)


def find(objs: tuple[Any, ...], key: SortKey) -> Any:
    """The object of a sorted collection with that key, or None (binary search)."""
    i = bisect_left(objs, key, key=sort_key)
    return objs[i] if i < len(objs) and sort_key(objs[i]) == key else None


def namespace_pods(cluster: Cluster, ns: str) -> tuple[Pod, ...]:
    """The pods of one namespace: a range of the cluster's sorted pods (binary search)."""
    lo = bisect_left(cluster.pods, (ns, ""), key=sort_key)
    hi = bisect_left(cluster.pods, (ns + "\0", ""), key=sort_key)
    return cluster.pods[lo:hi]
