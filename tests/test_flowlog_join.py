"""Attribution and joining, pure: the tags the renderer puts on a pod's chains, traced
through the rendered tables of the nodes a packet crosses, become records that name the
policy and rule that admitted a connection, and for a blocked attempt the policies that
isolate the rejecting pod in the rejecting direction and none other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from podnet.flowlog.attribution import Directory, directory
from podnet.flowlog.flow_join import Joiner
from podnet.flowlog.flow_record import Flow, dumps, loads
from podnet.flowlog.nl_wire import CtEvent, FiveTuple, LogPacket, ct_event, messages
from podnet.policy.engine import Engine
from podnet.render import flow_log
from podnet.render.policy_nft import render_all
from podnet.testing import Packet, Tracer, engine, namespace, pod, policy, service

NODES = {"node-1": "172.18.0.2", "node-2": "172.18.0.3"}
INTERNET = "203.0.113.2"
IPS = {"web": "10.244.0.10", "a": "10.244.1.11", "b": "10.244.1.12", "c": "10.244.1.13"}


def _engine() -> Engine:
    return engine(
        namespace("app"),
        pod("app/web", {"app": "web"}, [{"containerPort": 8080}], ip=IPS["web"], node="node-1"),
        pod("app/a", {"role": "a"}, ip=IPS["a"], node="node-2"),
        pod("app/b", {"role": "b"}, ip=IPS["b"], node="node-2"),
        pod("app/c", {"role": "c"}, ip=IPS["c"], node="node-2"),
        # Two policies isolate web for ingress; only allow-a could admit a (on 8080)
        policy(
            "app/allow-b-9090",
            {
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"role": "b"}}}],
                        "ports": [{"port": 9090}],
                    }
                ],
            },
        ),
        policy(
            "app/allow-a",
            {
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [
                    {"from": [{"podSelector": {"matchLabels": {"role": "x"}}}]},
                    {
                        "from": [{"podSelector": {"matchLabels": {"role": "a"}}}],
                        "ports": [{"port": 8080}],
                    },
                ],
            },
        ),
        # selects web too, but for egress only: never the cause of an ingress block
        policy(
            "app/web-egress",
            {
                "podSelector": {"matchLabels": {"app": "web"}},
                "policyTypes": ["Egress"],
                "egress": [{}],
            },
        ),
        # c may send nothing
        policy(
            "app/c-egress",
            {"podSelector": {"matchLabels": {"role": "c"}}, "policyTypes": ["Egress"]},
        ),
        service(
            "app/web",
            {"app": "web"},
            [{"name": "http", "port": 80, "targetPort": 8080}],
            clusterIP="10.96.0.50",
        ),
        nodes=2,
    )


@pytest.fixture(scope="module")
def world() -> tuple[Engine, dict[str, Tracer], Directory]:
    e = _engine()
    tables = render_all(e, "t")
    return e, {n: Tracer(t) for n, t in tables.items()}, directory(e, NODES, INTERNET)


def _attempt(
    world: tuple[Engine, dict[str, Tracer], Directory],
    src: str,
    dst: str,
    port: int,
    joiner: Joiner,
) -> str:
    """Trace a TCP SYN src -> dst through the source's node, then the destination's (as
    the kernel does), feeding the joiner what the kernel would send: the log messages of
    each node, and a conntrack NEW event of each node that let it through."""
    e, tracers, _ = world
    pods = {p.key: p for p in e.pods}
    s, d = pods[src], pods[dst]
    five = FiveTuple(6, s.ip, 40000, d.ip, port)
    hops = [s.node] if s.node == d.node else [s.node, d.node]
    verdict = "accept"
    for node in hops:
        tr = tracers[node]
        verdict = tr.trace(Packet(s.ip, d.ip, "tcp", port))
        for prefix in tr.logged:
            joiner.logged(node, LogPacket(prefix, five, None, 2), 1.0)
        if verdict != "accept":
            break
        joiner.conntrack(node, CtEvent(five, five.reversed(), 8), 1.0)
    return verdict


def _one(joiner: Joiner, d: Directory) -> Flow:
    assert joiner.due(1.1, d) == []  # not quiet long enough yet
    (flow,) = joiner.due(5.0, d)
    assert len(joiner) == 0
    return flow


def test_admitted_by_the_policy_whose_rule_matched(world) -> None:
    j = Joiner()
    assert _attempt(world, "app/a", "app/web", 8080, j) == "accept"
    f = _one(j, world[2])
    assert f.verdict == "allowed"
    assert f.ingress is not None and (f.ingress.policy, f.ingress.rule) == ("app/allow-a", 1)
    assert f.ingress.node == "node-1"
    assert f.egress is not None and (f.egress.verdict, f.egress.reason) == (
        "allowed",
        "not isolated",
    )
    assert (f.src.name, f.dst.name) == ("app/a", "app/web")
    assert f.nodes == ("node-1", "node-2")


def test_blocked_by_ingress_names_only_the_policies_isolating_that_direction(world) -> None:
    j = Joiner()
    assert _attempt(world, "app/b", "app/web", 8080, j) == "reject"
    f = _one(j, world[2])
    assert f.verdict == "blocked"
    assert f.ingress is not None and f.ingress.verdict == "blocked"
    assert f.ingress.policies == ("app/allow-a", "app/allow-b-9090")
    assert "app/web-egress" not in f.ingress.policies and "app/c-egress" not in f.ingress.policies
    assert (f.ingress.pod, f.ingress.node) == ("app/web", "node-1")
    assert f.egress is not None and f.egress.reason == "not isolated"


def test_blocked_by_egress_on_the_source_node_is_not_the_destinations_doing(world) -> None:
    j = Joiner()
    assert _attempt(world, "app/c", "app/web", 8080, j) == "reject"
    f = _one(j, world[2])
    assert f.verdict == "blocked"
    assert f.egress is not None and f.egress.policies == ("app/c-egress",)
    assert (f.egress.pod, f.egress.node) == ("app/c", "node-2")
    assert f.ingress is not None and f.ingress.verdict == "not reached"
    assert f.nodes == ("node-2",)


def test_the_tags_name_policy_hash_and_rule() -> None:
    tag = flow_log.parse(flow_log.admitted("app/allow-a", "ingress", 1).prefix)
    assert tag is not None and (tag.verdict, tag.direction, tag.rule) == ("allowed", "ingress", 1)
    assert flow_log.parse("pn:x:1") is None and flow_log.parse("other") is None
    assert flow_log.parse("pn:a:abc:i:notanumber") is None
    blocked = flow_log.parse(flow_log.rejected("app/c", "egress", ["app/p"]).prefix)
    assert blocked is not None and (blocked.verdict, blocked.direction) == ("blocked", "egress")
    assert blocked.policies_hash == flow_log.policies_digest(["app/p"])


def test_a_reject_is_never_blamed_on_the_policies_of_a_stale_picture() -> None:
    """The reject's tag says which policies isolated the pod when its rule was written: a
    picture of the cluster with other policies (a change not read yet) names none."""
    from podnet.flowlog.attribution import Directory
    from podnet.flowlog.flow_join import _decision, _Group

    tag = flow_log.parse(flow_log.rejected("app/c", "ingress", ["app/quarantine-c"]).prefix)
    assert tag is not None
    g = _Group(FiveTuple(6, "10.244.0.2", 40000, "10.244.0.3", 80), 0.0, 0.0)
    g.logs.append(("node-1", tag, g.key))
    d = Directory(pod_hashes={tag.pod_hash: "app/c"})
    d.isolating[("app/c", "ingress")] = ("app/allow-all",)  # before the quarantine
    stale = _decision(g, d, "ingress", "app/c", None)
    assert stale is not None and stale.verdict == "blocked" and stale.policies == ()
    assert stale.reason == "policies changed"
    d.isolating[("app/c", "ingress")] = ("app/quarantine-c",)  # the picture read again
    fresh = _decision(g, d, "ingress", "app/c", None)
    assert fresh is not None and fresh.policies == ("app/quarantine-c",)
    assert len(flow_log.admitted("x" * 63 + "/" + "y" * 253, "egress", 999).prefix) < 127


def test_service_and_masquerade_joined_across_nodes(world) -> None:
    """internet -> node-2's NodePort -> DNAT to web on node-1, masqueraded to node-2's
    address: node-1's events (about node-2's address) join the client's connection,
    in either order."""
    d = world[2]
    client = FiveTuple(6, INTERNET, 50000, NODES["node-2"], 30080)
    d.node_ports[("TCP", 30080)] = d.service_ips[("10.96.0.50", "TCP", 80)]
    reply = FiveTuple(6, IPS["web"], 8080, NODES["node-2"], 61000)
    on_node_2 = CtEvent(client, reply, 0x1B8)  # SRC_NAT | DST_NAT | confirmed, seen reply
    forwarded = reply.reversed()
    for order in ("node-2 first", "node-1 first"):
        j = Joiner()
        if order == "node-2 first":
            j.conntrack("node-2", on_node_2, 1.0)
        j.logged(
            "node-1",
            LogPacket(flow_log.admitted("app/allow-a", "ingress", 1).prefix, forwarded, 3, 2),
            1.0,
        )
        j.conntrack("node-1", CtEvent(forwarded, reply, 8), 1.0)
        if order == "node-1 first":
            j.conntrack("node-2", on_node_2, 1.0)
        f = _one(j, d)
        assert (f.src.name, f.src.ip, f.dst.name) == ("internet", INTERNET, "app/web"), order
        assert f.service is not None and (f.service.name, f.service.port) == ("app/web", "http")
        assert f.service.address == f"{NODES['node-2']}:30080"
        assert f.snat == f"{NODES['node-2']}:61000"
        assert f.ingress is not None and f.ingress.policy == "app/allow-a"
        assert f.egress is None  # the internet is not a pod
        assert f.nodes == ("node-1", "node-2")


def test_captured_nodeport_events_join_into_one_flow() -> None:
    capture = json.loads((Path(__file__).parent / "data" / "flowlog_capture.json").read_text())
    d = Directory(nodes={"172.18.0.2": "node-1", "172.18.0.3": "node-2"}, internet=INTERNET)
    j = Joiner()
    for item in reversed(capture["nodeport_two_nodes"]):  # node-2's entry last: worst order
        for m in messages(bytes.fromhex(item["hex"])):
            ev = ct_event(m)
            assert ev is not None
            j.conntrack(item["node"], ev, 1.0)
    (f,) = j.flush(d)
    assert (f.src.name, f.dst.port, f.nodes) == ("internet", 8080, ("node-1", "node-2"))


def test_clusterip_service_attributed(world) -> None:
    d = world[2]
    orig = FiveTuple(6, IPS["a"], 41000, "10.96.0.50", 80)
    reply = FiveTuple(6, IPS["web"], 8080, IPS["a"], 41000)
    j = Joiner()
    j.conntrack("node-2", CtEvent(orig, reply, 0x1A8), 1.0)
    (f,) = j.flush(d)
    assert f.service is not None and f.service.name == "app/web"
    assert f.service.address == "10.96.0.50:80" and f.snat is None
    assert (f.dst.name, f.dst.port) == ("app/web", 8080)


def test_isolated_without_a_log_message_is_unknown_not_allowed(world) -> None:
    e = world[0]
    web, a = (next(p for p in e.pods if p.key == k) for k in ("app/web", "app/a"))
    five = FiveTuple(6, a.ip, 1, web.ip, 8080)
    j = Joiner()
    j.conntrack("node-1", CtEvent(five, five.reversed(), 8), 1.0)
    (f,) = j.flush(world[2])
    assert f.ingress is not None and f.ingress.verdict == "unknown"
    assert f.ingress.policies == ("app/allow-a", "app/allow-b-9090")


def test_foreign_log_prefixes_are_ignored() -> None:
    j = Joiner()
    assert not j.logged(
        "node-1", LogPacket("someone else", FiveTuple(6, "1.1.1.1", 1, "2.2.2.2", 2), 0, 2), 1.0
    )
    assert len(j) == 0


def test_json_line_round_trip(world) -> None:
    j = Joiner()
    _attempt(world, "app/c", "app/web", 8080, j)
    _attempt(world, "app/a", "app/web", 8080, j)
    for f in j.flush(world[2]):
        line = dumps(f)
        assert "\n" not in line
        assert loads(line) == f
        assert json.loads(line)["type"] == "flow"
