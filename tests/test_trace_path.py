"""tracing.path: trace events (as the kernel reports them in each node namespace) read as a
path in Kubernetes terms: the Service, the endpoint DNAT chose, the policy rule that
decided, the route; and the verdict, from the trace and the socket together."""

from __future__ import annotations

from podnet.datapath.nftrace import Header, TraceEvent
from podnet.datapath.route_lookup import RouteHop
from podnet.policy.expectations import Observation
from podnet.tracing.path import Path, PolicyChain, first_packet, verdict_of, walk

N1, N2 = "podnet.c.node.node-1", "podnet.c.node.node-2"
SVC = "svc-62357767d3-shop/db/tcp/pg"
PKT = Header("10.244.0.2", "10.96.0.20", 6, 45000, 5432)
DNAT = Header("10.244.0.2", "10.244.1.3", 6, 45000, 5432)


def ev(ns: str, chain: str, handle: int | None, verdict: str | None, target: str | None = None,
       header: Header | None = None, kind: str = "rule", id: int = 1, oif: int | None = None,
       table: str = "podnet_c") -> TraceEvent:  # fmt: skip
    return TraceEvent(ns, id, kind, table, chain, handle, verdict, target, header, 5, oif)


EVENTS = [
    ev(N1, "trace-1", 45, "continue", header=PKT),
    ev(N1, "nat-prerouting", 23, "jump", "services", PKT),
    ev(N1, "services", 27, "goto", SVC),
    ev(N1, SVC, 43, "accept"),
    ev(N1, "filter-forward", 34, "jump", "service-endpoints-check", DNAT, oif=2),
    ev(N1, "filter-forward", None, "continue"),
    ev(N2, "forward", 34, "jump", "in-65d0c28a51", DNAT, id=9),
    ev(N2, "in-65d0c28a51", 30, "drop", id=9),
    ev(N2, "forward", 34, "jump", "in-65d0c28a51", DNAT, id=9),  # a retransmitted SYN
]


def _walk(events: list[TraceEvent], handles: dict[str, dict[str, list[int]]]) -> Path:
    per_ns = first_packet(events, "podnet_c", "trace-1")
    return walk(
        per_ns,
        [N1, N2],
        {N1: "node-1", N2: "node-2"},
        handles,
        {
            ("node-2", "in-65d0c28a51"): PolicyChain(
                "shop/db", "ingress", ("hairpin", "shop/p ingress[0]", "default deny")
            )
        },
        {"10.244.1.3": "shop/db", "10.244.0.2": "shop/api"},
        {N1: RouteHop("10.244.1.3", "eth0", "172.18.0.3", None)},
        {"172.18.0.3": "node-2"},
        {N1: {2: "eth0", 5: "api-1"}, N2: {5: "eth0"}},
    )


def test_service_dnat_route_and_the_rejecting_rule() -> None:
    path = _walk(EVENTS, {N2: {"in-65d0c28a51": [28, 29, 30]}})
    steps = [s.what for s in path.steps]
    assert steps == [
        "enters node node-1 on api-1",
        f"Service shop/db/tcp/pg: kube-proxy's cluster traffic chain {SVC}",
        f"DNAT to endpoint shop/db at 10.244.1.3:5432 (chosen by {SVC})",
        "routed to node node-2 via 172.18.0.3 on eth0 (host-gw)",
        "enters node node-2 on eth0",
        "ingress policies of pod shop/db (chain in-65d0c28a51)",
        "REJECTED by ingress of shop/db: no policy rule admits it",
    ]
    assert path.verdict == "blocked"
    seen = Observation("rejected", detail="No route to host")
    assert verdict_of(path, seen) == ("blocked", "ingress of shop/db: no policy rule admits it")


def test_the_admitting_rule_named_by_its_position() -> None:
    events = [*EVENTS[:7], ev(N2, "in-65d0c28a51", 29, "accept", id=9)]
    path = _walk(events, {N2: {"in-65d0c28a51": [28, 29, 30]}})
    assert "ingress of shop/db allowed by shop/p ingress[0]" in [s.what for s in path.steps]
    seen = Observation("reply", reply="shop/db pg")
    assert verdict_of(path, seen) == ("passed", "answered by shop/db pg")


def test_a_kernel_chain_unlike_the_store_is_said() -> None:
    path = _walk(EVENTS, {N2: {"in-65d0c28a51": [29, 30]}})
    assert any("differs from the store's" in s.what for s in path.steps)


def test_only_the_first_packet_of_each_namespace() -> None:
    per_ns = first_packet([*EVENTS, ev(N1, "forward", 1, "accept", id=2)], "podnet_c", "trace-1")
    assert [e.chain for e in per_ns[N2]] == ["forward", "in-65d0c28a51"]
    assert all(e.id == 1 for e in per_ns[N1])
