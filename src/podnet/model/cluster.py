"""The cluster snapshot: every object of the input after defaulting, expansion and checks.

Building it is where input-wide rules live: duplicate objects, namespaces used but not
declared, workloads whose pods are already present in a dump, nodes to synthesise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from podnet.model.cluster_objects import Namespace, Node, NodeAddress, NodeStatus
from podnet.model.errors import InputError, Origin, Problem
from podnet.model.expand import cronjob_as_job, expand
from podnet.model.kinds import WORKLOAD_KINDS, identity
from podnet.model.load import Loaded, LoadResult, load
from podnet.model.meta import ObjectMeta

if TYPE_CHECKING:  # the modules of the kinds the input holds are imported as it is read
    from podnet.model.ingress import Ingress, IngressClass
    from podnet.model.networkpolicy import NetworkPolicy
    from podnet.model.pod import Pod
    from podnet.model.secret import Secret
    from podnet.model.service import Endpoints, EndpointSlice, Service
    from podnet.model.workloads import CronJob, Workload

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class Cluster:
    """An immutable snapshot; every collection sorted by namespace and name."""

    namespaces: tuple[Namespace, ...]
    nodes: tuple[Node, ...]
    pods: tuple[Pod, ...]
    policies: tuple[NetworkPolicy, ...]
    services: tuple[Service, ...] = ()
    endpoints: tuple[Endpoints, ...] = ()
    endpoint_slices: tuple[EndpointSlice, ...] = ()
    ingresses: tuple[Ingress, ...] = ()
    ingress_classes: tuple[IngressClass, ...] = ()
    secrets: tuple[Secret, ...] = ()
    origins: dict[str, Origin] = field(default_factory=dict, compare=False)
    warnings: tuple[Problem, ...] = field(default=(), compare=False)

    def namespace(self, name: str) -> Namespace:
        return self._ns_index[name]

    @property
    def _ns_index(self) -> dict[str, Namespace]:
        cached: dict[str, Namespace] | None = self.__dict__.get("_ns_cache")
        if cached is None:
            cached = {n.metadata.name: n for n in self.namespaces}
            object.__setattr__(self, "_ns_cache", cached)
        return cached


def _key(o: Loaded) -> tuple[str, str | None, str]:
    return (o.kind, o.obj.metadata.namespace, o.obj.metadata.name)


def _sorted(objs: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(sorted(objs, key=lambda o: (o.metadata.namespace or "", o.metadata.name)))


def node_labels(name: str) -> dict[str, str]:
    """The well-known labels kubelet puts on every Linux node (nodeSelectors use them)."""
    return {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    }


def synthesize_nodes(count: int) -> list[Node]:
    """Nodes `node-1..N` when the input declares none (what `podnet up --nodes N` creates)."""
    return [
        Node(metadata=ObjectMeta(name=f"node-{i}", labels=node_labels(f"node-{i}")))
        for i in range(1, count + 1)
    ]


def _nodes(
    declared: list[Node], pods: list[Pod], count: int, warnings: list[Problem]
) -> list[Node]:
    """Declared nodes, plus those that pods of a dump name in spec.nodeName (a pod list
    carries no Node objects); with neither, `count` synthesised ones."""
    known = {n.metadata.name for n in declared}
    implied: dict[str, str | None] = {}
    for p in pods:
        name = p.spec.node_name
        if name and name not in known:
            implied.setdefault(name, None)
            if p.status.host_ip:
                implied[name] = p.status.host_ip
    if not declared and not implied:
        return synthesize_nodes(count)
    if implied:
        warnings.append(
            Problem(
                None,
                "",
                "",
                f"nodes named by pods but not declared, created: {', '.join(sorted(implied))}",
            )
        )
    return declared + [
        Node(
            metadata=ObjectMeta(name=name, labels=node_labels(name)),
            status=NodeStatus(
                addresses=(NodeAddress(type="InternalIP", address=ip),) if ip else ()
            ),
        )
        for name, ip in sorted(implied.items())
    ]


def _owned(pods: Iterable[Pod]) -> set[tuple[str | None, str, str]]:
    return {
        (p.metadata.namespace, r.kind, r.name) for p in pods for r in p.metadata.owner_references
    }


@dataclass(frozen=True)
class _Owners:
    """Who the dump says owns what, indexed once (a check per workload is then O(1) or a
    scan of its own namespace's ReplicaSets, not of the whole input)."""

    owned: set[tuple[str | None, str, str]]  # (namespace, owner kind, owner name)
    replicasets: dict[str | None, list[str]]  # namespace -> names of owning ReplicaSets
    deployments_with_rs: set[tuple[str | None, str]]  # declared ReplicaSets' Deployments

    @staticmethod
    def of(owned: set[tuple[str | None, str, str]], workloads: list[Workload]) -> _Owners:
        replicasets: dict[str | None, list[str]] = {}
        for ns, kind, name in owned:
            if kind == "ReplicaSet":
                replicasets.setdefault(ns, []).append(name)
        with_rs = {
            (ns, name)
            for w in workloads
            if w.kind == "ReplicaSet"
            for ns, kind, name in _owned_by(w)
            if kind == "Deployment"
        }
        return _Owners(owned, replicasets, with_rs)


def _already_present(w: Workload, owners: _Owners) -> bool:
    """True when the dump holds this workload's pods (or its ReplicaSets / Jobs) itself."""
    ns, name = w.metadata.namespace, w.metadata.name
    if (ns, w.kind, name) in owners.owned:
        return True
    if w.kind == "Deployment":
        if (ns, name) in owners.deployments_with_rs:
            return True
        rs = re.compile(rf"^{re.escape(name)}-[a-z0-9]+$")
        return any(rs.match(nm) for nm in owners.replicasets.get(ns, ()))
    return False


def _owned_by(w: Workload) -> set[tuple[str | None, str, str]]:
    return {(w.metadata.namespace, r.kind, r.name) for r in w.metadata.owner_references}


MAX_PODS_PER_NODE = 110  # kubelet's default --max-pods


def auto_node_count(pods: int) -> int:
    """Enough synthesised nodes for the pods at kubelet's default density; at least 3."""
    return max(3, -(-pods // MAX_PODS_PER_NODE))


def _replicas(w: Workload) -> int:
    if w.kind == "DaemonSet":
        return 0
    n = w.spec.parallelism if w.kind == "Job" else w.spec.replicas
    return 1 if n is None else n


def build(result: LoadResult, node_count: int | None = None) -> Cluster:
    """Check input-wide rules and derive the snapshot; raise InputError on any problem.

    Without Node objects, `node_count` nodes are synthesised (None: enough for the pods).
    """
    """Check input-wide rules and derive the snapshot; raise InputError on any problem."""
    problems: list[Problem] = []
    warnings = list(result.warnings)
    seen: dict[tuple[str, str | None, str], Origin] = {}
    origins: dict[str, Origin] = {}
    by_kind: dict[str, list[Any]] = {}
    for o in result.objects:
        key = _key(o)
        if key in seen:
            problems.append(
                Problem(
                    o.origin, identity(*key), "", f"duplicate object (first defined at {seen[key]})"
                )
            )
            continue
        seen[key] = o.origin
        origins[identity(*key)] = o.origin
        by_kind.setdefault("Workload" if o.kind in WORKLOAD_KINDS else o.kind, []).append(o.obj)
    if problems:
        raise InputError(problems)

    pods: list[Pod] = [p for p in by_kind.get("Pod", []) if p.status.phase not in TERMINAL_PHASES]
    workloads: list[Workload] = list(by_kind.get("Workload", []))
    if node_count is None:
        node_count = auto_node_count(len(pods) + sum(_replicas(w) for w in workloads))
    nodes = _nodes(by_kind.get("Node", []), pods, node_count, warnings)
    owned = _owned(pods) | {k for w in workloads for k in _owned_by(w)}
    workloads += [
        cronjob_as_job(c) for c in by_kind.get("CronJob", []) if not _cron_present(c, owned)
    ]
    pod_names = {(p.metadata.namespace, p.metadata.name) for p in pods}
    owners = _Owners.of(owned, workloads)
    for w in workloads:
        if _already_present(w, owners):
            continue
        for pod in expand(w, nodes):
            ident = (pod.metadata.namespace, pod.metadata.name)
            if ident in pod_names:
                problems.append(
                    Problem(
                        origins.get(identity(w.kind, *ident[:1], w.metadata.name)),
                        identity(w.kind, w.metadata.namespace, w.metadata.name),
                        "",
                        f"its pod {ident[1]} collides with a Pod of the same name",
                    )
                )
                continue
            pod_names.add(ident)
            pods.append(pod)
    if problems:
        raise InputError(problems)

    namespaces = {n.metadata.name: n for n in by_kind.get("Namespace", [])}
    used = {o.obj.metadata.namespace for o in result.objects if o.obj.metadata.namespace}
    used |= {p.metadata.namespace for p in pods if p.metadata.namespace}
    missing = sorted(used - namespaces.keys())
    for name in missing:
        namespaces[name] = Namespace(
            metadata=ObjectMeta(name=name, labels={"kubernetes.io/metadata.name": name})
        )
    if missing:
        warnings.append(
            Problem(
                None, "", "", f"namespaces used but not declared, created: {', '.join(missing)}"
            )
        )
    return Cluster(
        namespaces=_sorted(namespaces.values()),
        nodes=_sorted(nodes),
        pods=_sorted(pods),
        policies=_sorted(by_kind.get("NetworkPolicy", [])),
        services=_sorted(by_kind.get("Service", [])),
        endpoints=_sorted(by_kind.get("Endpoints", [])),
        endpoint_slices=_sorted(by_kind.get("EndpointSlice", [])),
        ingresses=_sorted(by_kind.get("Ingress", [])),
        ingress_classes=_sorted(by_kind.get("IngressClass", [])),
        secrets=_sorted(by_kind.get("Secret", [])),
        origins=origins,
        warnings=tuple(warnings),
    )


def _cron_present(c: CronJob, owned: set[tuple[str | None, str, str]]) -> bool:
    return any(
        k == "CronJob" and ns == c.metadata.namespace and n == c.metadata.name for ns, k, n in owned
    )


def load_cluster(
    paths: Iterable[str], node_count: int | None = None, stdin_text: str | None = None
) -> Cluster:
    return build(load(paths, stdin_text=stdin_text), node_count=node_count)
