"""A port bound to localhost (podnet.io/localhost-ports) is reachable by no other pod:
the analyzer says so whatever the policies allow, per pair and in the matrix alike."""

from __future__ import annotations

import pytest

from podnet.model.localports import localhost_ports
from podnet.policy.matrix import compute
from podnet.policy.ports import PortProto
from podnet.testing import engine, namespace, pod

PORTS = [
    {"name": "http", "containerPort": 80},
    {"name": "admin", "containerPort": 9000},
    {"containerPort": 53, "protocol": "UDP"},
]


@pytest.mark.parametrize(
    ("text", "expected", "unknown"),
    [
        ("9000", {(9000, "TCP")}, ()),
        ("admin, 53/UDP", {(9000, "TCP"), (53, "UDP")}, ()),
        ("53", set(), ("53",)),  # 53/TCP is not declared
        ("nope, 70/ICMP", set(), ("nope", "70/ICMP")),
    ],
    ids=["number", "name-and-udp", "undeclared-protocol", "unknown"],
)
def test_annotation_parsing(
    text: str, expected: set[tuple[int, str]], unknown: tuple[str, ...]
) -> None:
    declared = [(p.get("name"), p["containerPort"], p.get("protocol", "TCP")) for p in PORTS]
    chosen, bad = localhost_ports({"podnet.io/localhost-ports": text}, declared)
    assert chosen == expected and bad == unknown


def test_localhost_port_is_denied_to_other_pods_and_open_on_the_others() -> None:
    server = pod("x/server", ports=PORTS)
    server["metadata"]["annotations"] = {"podnet.io/localhost-ports": "admin"}
    e = engine(namespace("x"), server, pod("x/client"))
    s, c = e.by_key["x/server"], e.by_key["x/client"]
    v = e.explain(c, s, PortProto(9000, "TCP"))
    assert not v.allowed and "binds 9000/TCP to 127.0.0.1" in v.reason
    assert e.allowed(c, s, PortProto(80, "TCP"))
    assert e.allowed(s, s, PortProto(9000, "TCP")), "the pod's own containers reach it"
    m = compute(e, [PortProto(9000, "TCP"), PortProto(80, "TCP")], declared_only=False)
    i, j = e.pods.index(c), e.pods.index(s)
    assert not m.dense(0)[i, j] and m.dense(0)[j, j] and m.dense(1)[i, j]
