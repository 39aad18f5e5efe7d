"""The dashboard's map as Cytoscape.js elements, from one stored cluster and its analysis.

Namespaces are compound nodes holding their pods, Services (edges to their EndpointSlices'
endpoints) and Ingresses (edges to their backend Services, and from the ingress controller's
pod when the cluster runs one); Kubernetes nodes sit in a
compound of their own. Policy edges are the analyzer's verdicts per declared port: pod to
pod while a picture of every pair stays readable (EDGE_PODS), namespace to namespace beyond
(allowed, denied or mixed, with the pair counts; one edge of all ports and one per
port). Pure: the same analysis as `analyze`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from podnet.model.cluster import Cluster
from podnet.model.ingress import IngressSpec
from podnet.policy.analysis import Analysis
from podnet.state.ingress_identity import is_ingress_pod

# Beyond this many pods, pod-to-pod edges (up to n² per port) hide the picture: edges are
# drawn between namespaces, and the matrix tab holds the pairs.
EDGE_PODS = 40
# Between namespaces, one edge per pair sums every port (what the map shows unfiltered);
# the edges of one port are sent apart ("portEdges") and drawn when the port filter picks
# it: 17 ports of 20 namespaces would otherwise add thousands of elements that Cytoscape
# styles and measures before the first paint.
ALL_PORTS = "*"


def _pod_nodes(a: Analysis, ready: Mapping[str, bool] | None) -> list[dict[str, Any]]:
    out = []
    ports: dict[str, list[str]] = {}
    for p in a.pods:
        ports[p.key] = sorted({f"{n.port}/{n.protocol}" for n in p.ports})
    for p in a.pods:
        out.append(
            {
                "group": "nodes",
                "data": {
                    "id": f"pod:{p.key}",
                    "parent": f"ns:{p.namespace}",
                    "kind": "pod",
                    "label": p.name,
                    "key": p.key,
                    "ns": p.namespace,
                    "node": p.node,
                    "ip": p.ip,
                    "labels": dict(p.labels),
                    "ports": ports[p.key],
                    "hostNetwork": p.host_network,
                    "ingressController": is_ingress_pod(p.namespace, p.name),
                    "readiness": "unknown"
                    if ready is None
                    else "ready"
                    if ready.get(p.key, False)
                    else "not ready",
                },
            }
        )
    return out


def _services(cluster: Cluster, pod_by_ip: Mapping[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for svc in cluster.services:
        ns, name = svc.metadata.namespace or "default", svc.metadata.name
        key = f"{ns}/{name}"
        ports = [f"{p.port}/{p.protocol}" for p in svc.spec.ports]
        out.append(
            {
                "group": "nodes",
                "data": {
                    "id": f"svc:{key}",
                    "parent": f"ns:{ns}",
                    "kind": "service",
                    "label": name,
                    "key": key,
                    "ns": ns,
                    "type": svc.spec.type,
                    "clusterIP": svc.spec.cluster_ip or "",
                    "ports": ports,
                },
            }
        )
    seen: set[str] = set()
    for s in cluster.endpoint_slices:
        ns = s.metadata.namespace or "default"
        if s.service_name is None:
            continue
        svc_id = f"svc:{ns}/{s.service_name}"
        for e in s.endpoints:
            ready = e.conditions.ready is not False
            for addr in e.addresses:
                pod = pod_by_ip.get(addr)
                if pod is None:
                    continue
                eid = f"ep|{svc_id}|{pod}"
                if eid in seen:
                    continue
                seen.add(eid)
                out.append(
                    {
                        "group": "edges",
                        "data": {
                            "id": eid,
                            "source": svc_id,
                            "target": f"pod:{pod}",
                            "ready": ready,
                        },
                        "classes": "endpoint" + ("" if ready else " notready"),
                    }
                )
    return out


def _backends(spec: IngressSpec) -> set[str]:
    """The Services an Ingress routes to (its default backend and every path's)."""
    backends = [spec.default_backend] if spec.default_backend else []
    for rule in spec.rules:
        backends += [p.backend for p in rule.http.paths] if rule.http else []
    return {b.service.name for b in backends if b.service is not None}


def _ingresses(
    cluster: Cluster, services: set[str], controllers: list[str]
) -> list[dict[str, Any]]:
    """Ingresses, edges to their backend Services, and from the controller pod (nginx) to
    each Ingress it serves."""
    out: list[dict[str, Any]] = []
    for ing in cluster.ingresses:
        ns, name = ing.metadata.namespace or "default", ing.metadata.name
        iid = f"ing:{ns}/{name}"
        out.append(
            {
                "group": "nodes",
                "data": {
                    "id": iid,
                    "parent": f"ns:{ns}",
                    "kind": "ingress",
                    "label": name,
                    "ns": ns,
                },
            }
        )
        out += [
            {
                "group": "edges",
                "data": {"id": f"ic|{pod}|{iid}", "source": f"pod:{pod}", "target": iid},
                "classes": "backend",
            }
            for pod in controllers
        ]
        for svc in sorted(_backends(ing.spec)):
            if f"{ns}/{svc}" in services:
                out.append(
                    {
                        "group": "edges",
                        "data": {
                            "id": f"ib|{iid}|{svc}",
                            "source": iid,
                            "target": f"svc:{ns}/{svc}",
                        },
                        "classes": "backend",
                    }
                )
    return out


def _pod_edges(a: Analysis) -> list[dict[str, Any]]:
    out = []
    for k, pp in enumerate(a.ports):
        srcs, cols, m = a.block(k)
        port = f"{pp.port}/{pp.protocol}"
        for si, s in enumerate(srcs):
            src = a.pods[s].key
            for ci, d in enumerate(cols):
                if s == d:
                    continue
                dst = a.pods[d].key
                verdict = "allowed" if m[si, ci] else "denied"
                out.append(
                    {
                        "group": "edges",
                        "data": {
                            "id": f"e|{src}|{dst}|{port}",
                            "source": f"pod:{src}",
                            "target": f"pod:{dst}",
                            "port": port,
                            "verdict": verdict,
                        },
                        "classes": f"policy {verdict}",
                    }
                )
    return out


def _namespace_edges(a: Analysis) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Per port and namespace pair: how many pod pairs are allowed of those asked (numpy:
    the allowed cells of each port's dense block counted per namespace pair with one
    bincount; asked is rows x columns per pair, less each pod with itself)."""
    names = sorted({p.namespace for p in a.pods})
    n_ns = len(names)
    index = {n: i for i, n in enumerate(names)}
    ns_of = np.array([index[p.namespace] for p in a.pods], dtype=np.int64)
    per_port: dict[str, list[dict[str, Any]]] = {}
    total_allowed: np.ndarray | None = None
    total_asked: np.ndarray | None = None
    for k, pp in enumerate(a.ports):
        srcs, cols, m = a.block(k)
        row_ns, col_ns = (
            ns_of[np.asarray(srcs, dtype=np.int64)],
            ns_of[np.asarray(cols, dtype=np.int64)],
        )
        r, c = np.nonzero(m)
        allowed = np.bincount(row_ns[r] * n_ns + col_ns[c], minlength=n_ns * n_ns)
        allowed = allowed.reshape(n_ns, n_ns)
        asked = np.outer(np.bincount(row_ns, minlength=n_ns), np.bincount(col_ns, minlength=n_ns))
        # a pod with itself is not a pair
        _, si, ci = np.intersect1d(srcs, cols, assume_unique=True, return_indices=True)
        own = row_ns[si]
        np.subtract.at(asked, (own, own), 1)
        np.subtract.at(allowed, (own, own), np.asarray(m[si, ci], dtype=np.int64))
        port = f"{pp.port}/{pp.protocol}"
        per_port[port] = _ns_edges(names, allowed, asked, port)
        total_allowed = allowed if total_allowed is None else total_allowed + allowed
        total_asked = asked if total_asked is None else total_asked + asked
    out = []
    if total_allowed is not None and total_asked is not None:
        out = _ns_edges(names, total_allowed, total_asked, ALL_PORTS)
    return out, per_port


def _ns_edges(
    names: list[str], allowed: np.ndarray, asked: np.ndarray, port: str
) -> list[dict[str, Any]]:
    out = []
    for i, j in zip(*np.nonzero(asked), strict=True):
        n_ok, n = int(allowed[i, j]), int(asked[i, j])
        verdict = "allowed" if n_ok == n else "denied" if n_ok == 0 else "mixed"
        out.append(
            {
                "group": "edges",
                "data": {
                    "id": f"e|ns:{names[i]}|ns:{names[j]}|{port}",
                    "source": f"ns:{names[i]}",
                    "target": f"ns:{names[j]}",
                    "port": port,
                    "verdict": verdict,
                    "allowed": n_ok,
                    "asked": n,
                },
                "classes": f"policy {verdict}",
            }
        )
    return out


def graph(
    cluster: Cluster,
    a: Analysis,
    nodes: Mapping[str, tuple[str, str]],
    ready: Mapping[str, bool] | None,
) -> dict[str, Any]:
    """{"elements": [...], "portEdges": {port: [edge, ...]}, "ports": [...], "namespaces":
    [...], "edgeLevel": "pod"|"namespace"}.
    `nodes` is the store's node table (name -> (ip, podCIDR)); `ready` the daemon's
    readiness (None when it does not run)."""
    namespaces = sorted(
        {p.namespace for p in a.pods} | {n.metadata.name for n in cluster.namespaces}
    )
    elements: list[dict[str, Any]] = [
        {"group": "nodes", "data": {"id": f"ns:{n}", "kind": "namespace", "label": n}}
        for n in namespaces
    ]
    elements.append({"group": "nodes", "data": {"id": "nodes", "kind": "nodes", "label": "nodes"}})
    for name, (ip, cidr) in sorted(nodes.items()):
        elements.append(
            {
                "group": "nodes",
                "data": {
                    "id": f"node:{name}",
                    "parent": "nodes",
                    "kind": "node",
                    "label": name,
                    "ip": ip,
                    "podCIDR": cidr,
                },
            }
        )
    elements += _pod_nodes(a, ready)
    pod_by_ip = {p.ip: p.key for p in a.pods if not p.host_network}
    elements += _services(cluster, pod_by_ip)
    services = {f"{s.metadata.namespace or 'default'}/{s.metadata.name}" for s in cluster.services}
    controllers = [p.key for p in a.pods if is_ingress_pod(p.namespace, p.name)]
    elements += _ingresses(cluster, services, controllers)
    level = "pod" if len(a.pods) <= EDGE_PODS else "namespace"
    port_edges: dict[str, list[dict[str, Any]]] = {}
    if level == "pod":
        elements += _pod_edges(a)
    else:
        shown, port_edges = _namespace_edges(a)
        elements += shown
    return {
        "elements": elements,
        "portEdges": port_edges,
        "ports": [f"{pp.port}/{pp.protocol}" for pp in a.ports],
        "namespaces": namespaces,
        "edgeLevel": level,
        "pods": len(a.pods),
    }
