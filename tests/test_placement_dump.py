"""A dump as `kubectl get pods -A -o yaml` gives it, without Node objects: the nodes and their
podCIDRs are derived from the pods (spec.nodeName, status.podIP), as a kind cluster has them."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from podnet.model.errors import InputError
from podnet.policy.engine import Engine
from podnet.policy.ports import PortProto
from podnet.state.network import NetworkConfig
from podnet.state.placement import place
from podnet.testing import cluster, namespace, policy

NODES = {
    "kind-control-plane": "172.18.0.2",
    "kind-worker": "172.18.0.3",
    "kind-worker2": "172.18.0.4",
}
# kind hands the ranges out in no particular order: kind-worker holds .2, kind-worker2 .1
RANGES = {"kind-control-plane": "10.244.0", "kind-worker": "10.244.2", "kind-worker2": "10.244.1"}


def dumped_pod(
    key: str,
    node: str,
    ip: str | None = None,
    labels: dict[str, str] | None = None,
    owner: tuple[str, str] | None = None,
    ports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A pod as the API server returns it; `ip` None means hostNetwork (podIP = hostIP)."""
    ns, name = key.split("/")
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels or {}, "uid": "u"}
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": owner[0],
                "name": owner[1],
                "uid": "o",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    spec: dict[str, Any] = {
        "nodeName": node,
        "containers": [{"name": "c", "image": "x", "ports": ports or []}],
    }
    if ip is None:
        spec["hostNetwork"] = True
    host = NODES[node]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": {
            "phase": "Running",
            "hostIP": host,
            "podIP": ip or host,
            "podIPs": [{"ip": ip or host}],
        },
    }


def kind_dump() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [namespace("kube-system"), namespace("app")]
    cp = "kind-control-plane"
    for static in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        docs.append(dumped_pod(f"kube-system/{static}-{cp}", cp, owner=("Node", cp)))
    for i, node in enumerate(NODES):
        docs.append(
            dumped_pod(f"kube-system/kube-proxy-{i}abcd", node, owner=("DaemonSet", "kube-proxy"))
        )
        docs.append(
            dumped_pod(f"kube-system/kindnet-{i}wxyz", node, owner=("DaemonSet", "kindnet"))
        )
    dns = {"k8s-app": "kube-dns"}
    for i in (2, 3):
        docs.append(
            dumped_pod(
                f"kube-system/coredns-5d78c9869d-{i}q",
                cp,
                f"10.244.0.{i}",
                dns,
                ("ReplicaSet", "coredns-5d78c9869d"),
                [{"name": "dns", "containerPort": 53, "protocol": "UDP"}],
            )
        )
    docs.append(
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
            "spec": {
                "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                "template": {
                    "metadata": {"labels": {"k8s-app": "kube-proxy"}},
                    "spec": {"hostNetwork": True, "containers": [{"name": "kube-proxy"}]},
                },
            },
        }
    )
    for node in ("kind-worker", "kind-worker2"):
        for i in (2, 3, 4):
            docs.append(
                dumped_pod(
                    f"app/web-{node}-{i}",
                    node,
                    f"{RANGES[node]}.{i}",
                    {"app": "web"},
                    ("ReplicaSet", "web-7f9c"),
                    [{"containerPort": 80}],
                )
            )
    return docs


def test_nodes_and_ranges_are_derived_from_the_pods() -> None:
    c = cluster(*kind_dump())
    assert [n.metadata.name for n in c.nodes] == sorted(NODES)
    assert {n.metadata.name: n.internal_ip for n in c.nodes} == NODES
    pl = place(c, strict=True)
    assert {n: str(r) for n, r in pl.node_cidr.items()} == {
        n: f"{r}.0/24" for n, r in RANGES.items()
    }
    for key, node in pl.pod_node.items():
        ip = ipaddress.ip_address(pl.pod_ip[key])
        assert ip in pl.node_cidr[node] or pl.pod_ip[key] == NODES[node], key
    assert pl.pod_ip[("kube-system", "coredns-5d78c9869d-2q")] == "10.244.0.2"
    # the DaemonSet's pods are in the dump: it is not expanded a second time
    assert sum(p.metadata.name.startswith("kube-proxy") for p in c.pods) == 3


def test_declared_node_ranges_are_honoured() -> None:
    nodes = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name},
            "spec": {"podCIDR": f"{RANGES[name]}.0/24", "podCIDRs": [f"{RANGES[name]}.0/24"]},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}]},
        }
        for name, ip in NODES.items()
    ]
    pl = place(cluster(*kind_dump(), *nodes), strict=True)
    assert {n: str(r) for n, r in pl.node_cidr.items()} == {
        n: f"{r}.0/24" for n, r in RANGES.items()
    }


def test_a_declared_range_wins_over_the_pods() -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "kind-worker"},
        "spec": {"podCIDRs": ["10.244.9.0/24"]},
    }
    pl = place(cluster(*kind_dump(), node))
    assert str(pl.node_cidr["kind-worker"]) == "10.244.9.0/24"
    assert str(pl.node_cidr["kind-worker2"]) == "10.244.1.0/24"


def test_pods_naming_no_node_lend_their_ranges_to_synthesised_nodes() -> None:
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"p{i}", "namespace": "default"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"podIP": f"10.244.{i}.5"},
        }
        for i in (7, 12)
    ]
    pl = place(cluster(*pods, nodes=3), strict=True)
    assert {n: str(r) for n, r in pl.node_cidr.items()} == {
        "node-1": "10.244.7.0/24",
        "node-2": "10.244.12.0/24",
        "node-3": "10.244.2.0/24",
    }
    with pytest.raises(InputError, match="lies in no node's podCIDR"):
        place(cluster(*pods, nodes=1), strict=True)


def test_the_analyzer_answers_on_the_dump() -> None:
    deny = policy(
        "app/deny",
        {
            "podSelector": {},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}],
        },
    )
    e = Engine(cluster(*kind_dump(), deny))
    web = e.by_key["app/web-kind-worker-2"]
    other = e.by_key["app/web-kind-worker2-3"]
    dns = e.by_key["kube-system/coredns-5d78c9869d-2q"]
    http = PortProto(80, "TCP")
    assert e.allowed(other, web, http)
    assert not e.allowed(dns, web, http)
    # the node's own traffic (a hostNetwork pod on the same node) is always allowed
    assert e.allowed(e.by_key["kube-system/kube-proxy-1abcd"], web, http)


def test_placement_is_deterministic_and_balanced() -> None:
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"p{i:03}", "namespace": "default"},
            "spec": {
                "containers": [{"name": "c"}],
                **({"nodeSelector": {"kubernetes.io/hostname": "node-2"}} if i % 10 == 0 else {}),
            },
        }
        for i in range(100)
    ]
    c = cluster(*pods, nodes=4)
    a, b = place(c), place(c, NetworkConfig())
    assert a.pod_node == b.pod_node and a.pod_ip == b.pod_ip
    counts = {n: sum(v == n for v in a.pod_node.values()) for n in a.node_cidr}
    assert counts == {"node-1": 25, "node-2": 25, "node-3": 25, "node-4": 25}
    assert all(a.pod_node[("default", f"p{i:03}")] == "node-2" for i in range(0, 100, 10))


def test_nodes_that_declare_their_ranges_do_not_count_against_the_cluster_cidr() -> None:
    nodes = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": f"n{i}"},
            "spec": {"podCIDR": f"10.{245 + i // 256}.{i % 256}.0/24"},
        }
        for i in range(300)
    ]
    pl = place(cluster(*nodes, nodes=None))
    assert len(pl.node_cidr) == 300 and str(pl.node_cidr["n299"]) == "10.246.43.0/24"
