"""The cluster the probe suites bring up (the upstream netpol e2e layout: namespaces x, y, z
with pods a, b, c, each serving 80 and 81 over TCP and UDP, with labels and named ports that
differ per namespace; `podnet.testing.live_cluster` brings it up and always tears it down),
and pure checks of the probe plan on it (no root)."""

from __future__ import annotations

from typing import Any

import pytest

from podnet.policy.expectations import plan
from podnet.policy.ports import PortProto
from podnet.testing import engine, namespace, pod

NAMESPACES = ("x", "y", "z")
POD_LABELS = {
    "x/a": {"app": "web", "tier": "front"},
    "x/b": {"app": "db"},
    "x/c": {},
    "y/a": {"app": "web"},
    "y/b": {"app": "db", "tier": "back"},
    "y/c": {"tier": "front"},
    "z/a": {"app": "db"},
    "z/b": {},
    "z/c": {"app": "web", "tier": "back"},
}
# Port names differ per namespace, so that a named port resolves to different numbers.
PORT_NAMES = {
    "x": {(80, "TCP"): "http", (81, "TCP"): "metrics", (80, "UDP"): "dns"},
    "y": {(81, "TCP"): "http", (80, "TCP"): "metrics", (81, "UDP"): "dns"},
    "z": {(80, "TCP"): "http", (81, "UDP"): "dns"},
}
PORTS = ((80, "TCP"), (81, "TCP"), (80, "UDP"), (81, "UDP"))


def container_ports(ns: str) -> list[dict[str, Any]]:
    out = []
    for number, proto in PORTS:
        p: dict[str, Any] = {"containerPort": number, "protocol": proto}
        name = PORT_NAMES[ns].get((number, proto))
        if name:
            p["name"] = name
        out.append(p)
    return out


# x/d: a pod with localhost-only ports (podnet.io/localhost-ports), on node-2. Not on node-1,
# the hostNetwork pod's node: there the engine wrongly lets the node reach a localhost-only
# port (see the xfail in test_probe_expect).
LOCAL_POD = "x/d"
LOCAL_PORTS = ((9000, "TCP"), (5353, "UDP"))
HOST_POD = "h/host"


def local_pod() -> dict[str, Any]:
    doc = pod(
        LOCAL_POD,
        labels={"pod": "d", "app": "db"},
        ports=[
            {"name": "http", "containerPort": 80},
            {"name": "admin", "containerPort": 9000},
            {"containerPort": 5353, "protocol": "UDP"},
        ],
        node="node-2",
    )
    doc["metadata"]["annotations"] = {"podnet.io/localhost-ports": "admin, 5353/UDP"}
    return doc


def e2e_docs(host_pod: bool = False, local: bool = False) -> list[dict[str, Any]]:
    """9 pods in 3 namespaces; optionally a hostNetwork pod `h/host` on node-1 (labelled
    app=web, which no selector may match: its traffic is its node's) and `x/d` with
    localhost-only ports on node-2."""
    docs = [namespace(ns, ns=ns) for ns in NAMESPACES]
    for key, labels in POD_LABELS.items():
        ns, name = key.split("/")
        docs.append(pod(key, labels={"pod": name, **labels}, ports=container_ports(ns)))
    if host_pod:
        docs.append(namespace("h"))
        docs.append(
            pod(
                HOST_POD,
                labels={"pod": "host", "app": "web"},
                ports=[{"name": "http", "containerPort": 8080}],
                node="node-1",
                host_network=True,
            )
        )
    if local:
        docs.append(local_pod())
    return docs


# --- pure checks of the plan on this cluster ---------------------------------------------


def test_nine_pods_on_two_ports_are_162_probes_self_included():
    e = engine(*e2e_docs(), nodes=2)
    q = plan(e, e.pods, e.pods, [PortProto(80, "TCP"), PortProto(81, "TCP")])
    assert len(q.probes) == 162
    assert sum(p.source == p.destination for p in q.probes) == 18
    assert all(p.expected for p in q.probes)  # no policy: everything passes
    assert q.skipped == []


def test_declared_ports_by_default_and_identity_names_the_container():
    e = engine(*e2e_docs(host_pod=True), nodes=2)
    q = plan(e, e.pods, e.pods, None)
    # 9 pods x 9 destinations x 4 ports, plus the host pod's 8080 from all 10 sources.
    assert len(q.probes) == 9 * 10 * 4 + 10
    host = [p for p in q.probes if p.destination == "h/host"]
    assert {p.port for p in host} == {8080}
    assert {p.identity for p in host} == {"h/host c"}


@pytest.mark.parametrize(
    ("named", "dst", "port", "expected"),
    [
        pytest.param("http", "x/a", 80, True, id="x-http-is-80"),
        pytest.param("http", "x/a", 81, False, id="x-81-is-metrics"),
        pytest.param("http", "y/a", 81, True, id="y-http-is-81"),
        pytest.param("http", "y/a", 80, False, id="y-80-is-metrics"),
        pytest.param("metrics", "z/a", 81, False, id="z-has-no-metrics"),
    ],
)
def test_named_ports_resolve_per_destination(named, dst, port, expected):
    from podnet.testing import policy

    docs = [
        *e2e_docs(),
        *(
            policy(
                f"{ns}/only-named",
                {"podSelector": {}, "ingress": [{"ports": [{"port": named}]}]},
            )
            for ns in NAMESPACES
        ),
    ]
    e = engine(*docs, nodes=2)
    q = plan(e, [e.by_key["z/b"]], [e.by_key[dst]], [PortProto(port, "TCP")])
    assert [p.expected for p in q.probes] == [expected]
