"""The vectorised matrix (podnet.policy.matrix) equals the per-pair evaluator (Engine.allowed)
on random clusters and policies, in both --ipblock-pods and both --hostnetwork-pods modes.

The clusters are small but dense in the features that the matrix handles differently from
the evaluator: equivalence classes of pods, ipBlock atoms with excepts, named ports resolved
per destination, endPort ranges, rules without ports folded once for all ports, and the
loopback and same-node exceptions applied after expansion.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from podnet.policy.engine import Engine
from podnet.policy.matrix import compute
from podnet.policy.ports import PortProto
from podnet.testing import cluster, engine, namespace, pod, policy

NAMESPACES = ("n0", "n1")
NODES = ("node-1", "node-2")
POD_KEYS = ("app", "tier")
NS_KEYS = ("team", "env")
VALUES = ("a", "b")
# Container ports: a name may mean different numbers (and protocols) on different pods.
NAMED = (
    ("http", 80, "TCP"),
    ("http", 8080, "TCP"),
    ("web", 8080, "TCP"),
    ("dns", 53, "UDP"),
    ("dns", 53, "TCP"),
    ("db", 5432, "TCP"),
    ("sig", 9000, "SCTP"),
)
PORTS = (
    PortProto(80, "TCP"),
    PortProto(81, "TCP"),
    PortProto(8080, "TCP"),
    PortProto(5432, "TCP"),
    PortProto(53, "UDP"),
    PortProto(53, "TCP"),
    PortProto(9000, "SCTP"),
)
# ipBlocks and the excepts valid inside each: pod /24s of the nodes, pinned ranges, the node
# network (host-network pods), and everything.
BLOCKS = {
    "10.244.0.0/16": ((), ("10.244.0.0/24",), ("10.244.1.0/25", "10.244.7.0/24")),
    "10.244.0.0/24": ((), ("10.244.0.0/30",), ("10.244.0.4/32", "10.244.0.128/25")),
    "10.244.1.0/24": ((), ("10.244.1.2/31",)),
    "10.244.7.0/24": ((), ("10.244.7.64/26",)),
    "172.18.0.0/16": ((), ("172.18.0.2/32",)),
    "0.0.0.0/0": ((), ("10.244.0.0/16",), ("10.244.7.0/24", "172.18.0.0/16")),
}


def labels(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(st.sampled_from(keys), st.sampled_from(VALUES), max_size=len(keys))


def selector(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """Empty, or one or two terms: small enough that selectors often select something."""
    requirement = st.one_of(
        st.fixed_dictionaries(
            {
                "key": st.sampled_from(keys),
                "operator": st.sampled_from(["In", "NotIn"]),
                "values": st.lists(st.sampled_from(VALUES), min_size=1, max_size=2, unique=True),
            }
        ),
        st.fixed_dictionaries(
            {"key": st.sampled_from(keys), "operator": st.sampled_from(["Exists", "DoesNotExist"])}
        ),
    )
    one_label = st.dictionaries(
        st.sampled_from(keys), st.sampled_from(VALUES), min_size=1, max_size=1
    )
    return st.one_of(
        st.just({}),
        st.builds(lambda ml: {"matchLabels": ml}, one_label),
        st.builds(lambda r: {"matchExpressions": [r]}, requirement),
        st.builds(
            lambda ml, r: {"matchLabels": ml, "matchExpressions": [r]}, one_label, requirement
        ),
    )


@st.composite
def peer(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["pod", "ns", "both", "ipblock", "ipblock"]))
    if kind == "ipblock":
        cidr = draw(st.sampled_from(sorted(BLOCKS)))
        excepts = draw(st.sampled_from(BLOCKS[cidr]))
        return {"ipBlock": {"cidr": cidr, **({"except": list(excepts)} if excepts else {})}}
    out: dict[str, Any] = {}
    if kind in ("pod", "both"):
        out["podSelector"] = draw(selector(POD_KEYS))
    if kind in ("ns", "both"):
        out["namespaceSelector"] = draw(selector(NS_KEYS))
    return out


# Ranges whose edges fall on, just beside, or around the ports asked about.
RANGES = ((53, 80), (80, 81), (81, 5432), (5433, 8079), (8080, 9000), (80, 80), (1, 52))


@st.composite
def policy_port(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["protocol-only", "number", "range", "name", "name"]))
    out: dict[str, Any] = {}
    if kind == "name":
        # Usually a name some pod declares, with that port's protocol (or the TCP default).
        name, _, proto = draw(st.sampled_from([*NAMED, ("absent", 0, "TCP")]))
        out["port"] = name
        if proto != "TCP" or draw(st.booleans()):
            out["protocol"] = draw(st.sampled_from([proto, proto, "TCP", "UDP", "SCTP"]))
        return out
    if draw(st.booleans()):
        out["protocol"] = draw(st.sampled_from(["TCP", "UDP", "SCTP"]))
    if kind == "number":
        out["port"] = draw(st.sampled_from([53, 80, 81, 5432, 8080, 9000]))
    elif kind == "range":
        out["port"], out["endPort"] = draw(st.sampled_from(RANGES))
    return out


def optional_list(
    element: st.SearchStrategy[Any], max_size: int
) -> st.SearchStrategy[list[Any] | None]:
    """Absent (None), empty, or a short list: the API gives the three different meanings."""
    return st.one_of(st.none(), st.just([]), st.lists(element, min_size=1, max_size=max_size))


@st.composite
def rule(draw: st.DrawFn, peers_key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    peers = draw(optional_list(peer(), 2))
    ports = draw(st.lists(policy_port(), min_size=1, max_size=2) | optional_list(policy_port(), 1))
    if peers is not None:
        out[peers_key] = peers
    if ports is not None:
        out["ports"] = ports
    return out


@st.composite
def policy_doc(draw: st.DrawFn, index: int) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if draw(st.booleans()):  # absent means {}
        spec["podSelector"] = draw(selector(POD_KEYS))
    types = draw(st.sampled_from([None, ["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
    if types is not None:
        spec["policyTypes"] = types
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        # Mostly some rules: a policy without any is a deny-all, which hides everything else.
        rules = draw(
            st.lists(rule(peers_key), min_size=1, max_size=3) | optional_list(rule(peers_key), 1)
        )
        if rules is not None:
            spec[direction] = rules
    return policy(f"{draw(st.sampled_from(NAMESPACES))}/p{index}", spec)


@st.composite
def pod_doc(draw: st.DrawFn, index: int, ip: str | None) -> dict[str, Any]:
    host = draw(st.integers(0, 5)) == 0  # about one pod in six uses the host network
    names = draw(st.lists(st.sampled_from(NAMED), max_size=3, unique_by=lambda p: p[0]))
    return pod(
        f"{draw(st.sampled_from(NAMESPACES))}/pod{index}",
        labels=draw(labels(POD_KEYS)),
        ports=[
            {"name": n, "containerPort": number, "protocol": proto} for n, number, proto in names
        ],
        ip=None if host else ip,
        node=draw(st.sampled_from(NODES)),
        host_network=host,
    )


@st.composite
def cluster_docs(draw: st.DrawFn) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}} for n in NODES
    ]
    docs += [namespace(n, **draw(labels(NS_KEYS))) for n in NAMESPACES]
    count = draw(st.integers(3, 9))
    # Unique pinned addresses, some inside the nodes' pod ranges and some in a /24 no node owns.
    pinned = draw(
        st.lists(
            st.one_of(
                st.builds("10.244.0.{}".format, st.integers(100, 250)),
                st.builds("10.244.1.{}".format, st.integers(100, 250)),
                st.builds("10.244.7.{}".format, st.integers(1, 254)),
            ),
            max_size=count,
            unique=True,
        )
    )
    ips: list[str | None] = [*pinned, *([None] * (count - len(pinned)))]
    docs += [draw(pod_doc(i, ips[i])) for i in range(count)]
    docs += [draw(policy_doc(i)) for i in range(draw(st.integers(1, 5)))]
    return docs


def _edge_cases() -> list[dict[str, Any]]:
    """A fixed cluster on the edges the random search reaches only rarely."""
    return [
        *({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}} for n in NODES),
        namespace("n0", team="a"),
        namespace("n1"),
        pod(
            "n0/dst",
            labels={"app": "a"},
            ports=[{"name": "dns", "containerPort": 53, "protocol": "UDP"}],
            ip="10.244.7.5",
            node="node-1",
        ),
        pod(
            "n0/dst2",
            labels={"app": "a"},
            ports=[{"name": "dns", "containerPort": 53, "protocol": "TCP"}],
            node="node-2",
        ),
        pod("n1/src", labels={"app": "b"}, ip="10.244.7.70", node="node-2"),
        pod("n1/src2", labels={"tier": "a"}, ip="10.244.0.100", node="node-1"),
        pod("n1/host", node="node-1", host_network=True),
        pod("n0/host", labels={"app": "a"}, node="node-2", host_network=True),
        policy(
            "n0/edges",
            {
                "podSelector": {"matchLabels": {"app": "a"}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {"from": [{"namespaceSelector": {}}], "ports": [{"port": 80, "endPort": 81}]},
                    {
                        "from": [
                            {"ipBlock": {"cidr": "10.244.0.0/16", "except": ["10.244.7.64/26"]}}
                        ]
                    },
                    {"ports": [{"port": "dns", "protocol": "UDP"}, {"protocol": "SCTP"}]},
                ],
                "egress": [
                    {
                        "to": [
                            {
                                "podSelector": {
                                    "matchExpressions": [
                                        {"key": "app", "operator": "NotIn", "values": ["b"]}
                                    ]
                                },
                                "namespaceSelector": {},
                            }
                        ]
                    }
                ],
            },
        ),
    ]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@example(docs=_edge_cases(), ports=list(PORTS))
@given(
    docs=cluster_docs(),
    ports=st.lists(st.sampled_from(PORTS), min_size=3, max_size=len(PORTS), unique=True),
)
def test_matrix_equals_per_pair_evaluator(
    docs: list[dict[str, Any]], ports: list[PortProto]
) -> None:
    for mode, hostnet in itertools.product(("match", "ignore"), ("node", "pod")):
        e = Engine(cluster(*docs), ipblock_pods=mode, hostnetwork_pods=hostnet)
        m = compute(e, ports, declared_only=False)
        for direction in ("ingress", "egress"):  # what the summary counts as isolated
            assert m.isolated(direction).tolist() == [
                bool(e.selecting(p, direction)) for p in e.pods
            ]
        wrong = []
        for k, pp in enumerate(ports):
            dense = m.dense(k)
            # counting without the dense matrix: every pod, and a subset of rows and columns
            n = len(e.pods)
            assert m.allowed_count(k, np.arange(n), np.arange(n)) == np.count_nonzero(dense)
            rows, cols = np.arange(0, n, 2), np.arange(n - 1, -1, -3)
            assert m.allowed_count(k, rows, cols) == np.count_nonzero(m.dense(k, cols)[rows])
            for i, src in enumerate(e.pods):
                for j, dst in enumerate(e.pods):
                    expected = e.allowed(src, dst, pp)
                    if k == 0:  # explain() walks every rule; it must reach the same verdict
                        assert e.explain(src, dst, pp).allowed == expected, (
                            mode,
                            hostnet,
                            src.key,
                            dst.key,
                        )
                    if bool(dense[i, j]) != expected:
                        wrong.append(
                            f"[{mode} {hostnet}] {src.key} -> {dst.key} {pp}: matrix {bool(dense[i, j])}, evaluator {expected}"
                        )
        assert not wrong, "\n".join(wrong)


def test_matrix_with_ipv6_ipblock_equals_evaluator() -> None:
    """ipBlock.cidr may be IPv6 ("2001:db8::/64"); an IPv4 cluster's matrix must not choke."""
    docs = [
        namespace("n0"),
        pod("n0/a", labels={"app": "a"}),
        pod("n0/b"),
        policy(
            "n0/v6",
            {
                "podSelector": {"matchLabels": {"app": "a"}},
                "ingress": [
                    {"from": [{"ipBlock": {"cidr": "2001:db8::/32"}}, {"podSelector": {}}]}
                ],
            },
        ),
    ]
    e = engine(*docs, ipblock_pods="match")
    m = compute(e, [PortProto(80, "TCP")], declared_only=False)
    for i, src in enumerate(e.pods):
        for j, dst in enumerate(e.pods):
            assert bool(m.dense(0)[i, j]) == e.allowed(src, dst, PortProto(80, "TCP"))
