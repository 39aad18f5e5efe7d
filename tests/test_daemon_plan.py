"""The daemon's pure parts: runtime.json, the localhost-ports annotation, the listener plan."""

from __future__ import annotations

import json

import pytest

from podnet.render.runtime import dumps, parse
from podnet.testing import pod_entry, runtime_doc
from podnet.workload.sockets import ANY, LOCALHOST, NO_PORT, Endpoint, localhost_ports, make_plan


def runtime(*pods: dict, nodes: tuple = ({"name": "n1", "ip": "172.18.0.2", "netns": "x-n1"},)):
    return parse(runtime_doc("c", nodes, pods), "digest")


def pod(name="a", ports=None, annotations=None, host_network=False, netns=None):
    return pod_entry(
        "default",
        name,
        "n1",
        "172.18.0.2" if host_network else "10.244.0.5",
        netns or ("x-n1" if host_network else f"x-{name}"),
        ports if ports is not None else {"web": [(8080, "TCP")]},
        annotations,
        host_network,
    )


def test_runtime_reads_back_what_it_writes():
    r = runtime(pod())
    assert (r.dns_ip, r.dns_domain, r.mode) == ("10.96.0.10", "cluster.local", "host-gw")
    assert r.pods[0].key == "default/a"
    assert r.pods[0].containers[0].ports[0].protocol == "TCP"
    assert parse(json.loads(dumps(r)), r.digest) == r


def test_runtime_fields_are_all_required():
    doc = runtime_doc("c", pods=[pod()])
    del doc["dns"]
    with pytest.raises(KeyError):
        parse(doc)


@pytest.mark.parametrize(
    ("annotation", "local", "problems"),
    [
        ("9000", {(9000, "TCP")}, 0),
        (" 9000 , 53/udp ", {(9000, "TCP"), (53, "UDP")}, 0),
        ("metrics", {(9000, "TCP")}, 0),
        ("9001", set(), 1),
        ("9000/ICMP", set(), 1),
        ("metrics/UDP", set(), 1),
        ("", set(), 0),
    ],
    ids=[
        "number",
        "list-and-protocol",
        "port-name",
        "undeclared",
        "bad-protocol",
        "name+proto",
        "empty",
    ],
)
def test_localhost_ports_annotation(annotation, local, problems):
    ports = {"side": [(9000, "TCP", "metrics"), (53, "UDP")]}
    p = runtime(pod(annotations={"podnet.io/localhost-ports": annotation}, ports=ports)).pods[0]
    got, bad = localhost_ports(p)
    assert set(got) == local
    assert len(bad) == problems
    assert all("default/a" in line for line in bad)


def test_plan_binds_any_or_localhost_and_checks_from_the_node():
    plan = make_plan(
        runtime(
            pod(
                ports={"web": [(8080, "TCP"), (53, "UDP")], "side": [(9000, "TCP")]},
                annotations={"podnet.io/localhost-ports": "9000"},
            )
        ),
        sctp=True,
    )
    assert set(plan.listeners) == {
        Endpoint("x-a", ANY, 8080, "TCP"),
        Endpoint("x-a", ANY, 53, "UDP"),
        Endpoint("x-a", LOCALHOST, 9000, "TCP"),
    }
    assert plan.listeners[Endpoint("x-a", LOCALHOST, 9000, "TCP")].container == "side"
    checks = {(c.netns, c.host, c.port) for c in plan.checks["default/a"]}
    assert checks == {
        ("x-n1", "10.244.0.5", 8080),
        ("x-n1", "10.244.0.5", 53),
        ("x-a", LOCALHOST, 9000),
    }
    assert all(
        c.expect in (b"default/a web\n", b"default/a side\n") for c in plan.checks["default/a"]
    )


def test_sctp_unsupported_is_listed_not_served():
    plan = make_plan(runtime(pod(ports={"web": [(7777, "SCTP")]})), sctp=False)
    assert plan.listeners == {}
    assert plan.unsupported == ("default/a web 7777/SCTP",)
    # the pod still gets a check (its address answers), so the cluster can come up
    assert [c.port for c in plan.checks["default/a"]] == [NO_PORT]


def test_pod_without_ports_is_checked_for_any_answer():
    plan = make_plan(runtime(pod(ports={})), sctp=True)
    (check,) = plan.checks["default/a"]
    assert (check.port, check.expect) == (NO_PORT, None)


def test_host_network_pods_conflicting_on_a_port_are_reported():
    plan = make_plan(runtime(pod("h1", host_network=True), pod("h2", host_network=True)), sctp=True)
    assert plan.listeners[Endpoint("x-n1", ANY, 8080, "TCP")].pod == "h1"
    assert len(plan.problems) == 1 and "default/h2" in plan.problems[0]
