"""The incremental policy sync equals a whole render (no root): over random sequences of
changes (pod labels, namespace labels, policies applied and deleted, pods added and
deleted, a pod's ports), sync_policies narrowed by render/policy_scope.affected (each node
outside its nodes keeping its previous table, each pod outside its pods keeping its
previous part of its node's table) yields exactly render_all's tables of the same state,
and applies only nodes whose table changed."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_probe_differential import POD_KEYS, ns_labels, policy_spec

from podnet.controller.policy_sync import sync_policies
from podnet.policy.engine import Engine
from podnet.render.policy_nft import render_all
from podnet.render.policy_scope import affected, affected_nodes
from podnet.state.placement import place
from podnet.testing import FakeRunner, cluster, namespace, pod, policy

NAMESPACES = ("x", "y", "z")
PODS = {  # key -> node
    "x/a": "node-1",
    "x/b": "node-2",
    "y/a": "node-2",
    "y/b": "node-3",
    "z/a": "node-3",
    "z/b": "node-1",
    "z/h": "node-2",  # a host-network pod
}
PORTS = [
    [
        {"name": "http", "containerPort": 80},
        {"name": "dns", "containerPort": 53, "protocol": "UDP"},
    ],
    [{"name": "http", "containerPort": 81}, {"name": "metrics", "containerPort": 9090}],
    [],
]
CLUSTER = "scope"


def node_netns(e: Engine) -> dict[str, str]:
    return {n.metadata.name: f"ns-{n.metadata.name}" for n in e.cluster.nodes}


def pod_labels() -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in POD_KEYS.items()})


def change(ips: list[str], cidrs: list[str]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.one_of(
        st.tuples(st.just("pod-labels"), st.sampled_from(sorted(PODS)), pod_labels()),
        st.tuples(st.just("ns-labels"), st.sampled_from(NAMESPACES), ns_labels()),
        st.tuples(
            st.just("policy"),
            st.sampled_from([f"{ns}/p{i}" for ns in NAMESPACES for i in (1, 2)]),
            st.one_of(st.none(), policy_spec(ips, cidrs)),
        ),
        st.tuples(st.just("pod-present"), st.sampled_from(sorted(PODS)), st.booleans()),
        st.tuples(st.just("pod-ports"), st.sampled_from(sorted(PODS)), st.integers(0, 2)),
    )


def initial() -> dict[str, Any]:
    return {
        "ns": {ns: {} for ns in NAMESPACES},
        "pods": {k: {"labels": {"pod": k[-1]}, "ports": 0, "present": True} for k in PODS},
        "policies": {},
    }


def docs(state: dict[str, Any]) -> list[dict[str, Any]]:
    out = [namespace(ns, ns=ns, **labels) for ns, labels in state["ns"].items()]
    for key, p in state["pods"].items():
        if p["present"]:
            out.append(
                pod(
                    key,
                    labels=p["labels"],
                    ports=PORTS[p["ports"]],
                    node=PODS[key],
                    host_network=key == "z/h",
                )
            )
    out += [policy(key, spec) for key, spec in sorted(state["policies"].items())]
    return out


HELD = place(cluster(*docs(initial()), nodes=3))
HELD_IPS = {k: (HELD.pod_node[k], HELD.pod_ip[k]) for k in HELD.pod_ip}
IPS = sorted({ip for _, ip in HELD_IPS.values()} | set(HELD.node_ip.values()))
CIDRS = ["10.244.0.0/16", "10.244.1.0/24", "172.18.0.0/16", *(f"{ip}/32" for ip in IPS[:3])]


def engine_of(state: dict[str, Any]) -> Engine:
    c = cluster(*docs(state), nodes=3)
    return Engine(c, place(c, held=HELD_IPS))


def step(state: dict[str, Any], ch: tuple[Any, ...]) -> None:
    kind, key, value = ch
    if kind == "pod-labels":
        state["pods"][key]["labels"] = value
    elif kind == "ns-labels":
        state["ns"][key] = value
    elif kind == "policy":
        if value is None:
            state["policies"].pop(key, None)
        else:
            state["policies"][key] = value
    elif kind == "pod-present":
        state["pods"][key]["present"] = value
    else:
        state["pods"][key]["ports"] = value


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(change(IPS, CIDRS), min_size=1, max_size=8))
def test_incremental_tables_equal_a_whole_render(changes: list[tuple[Any, ...]]) -> None:
    state = initial()
    runner = FakeRunner()
    old = engine_of(state)
    report = sync_policies(CLUSTER, old, node_netns(old), runner)
    tables, pods = report.tables, report.pods
    for ch in changes:
        step(state, ch)
        new = engine_of(state)
        scope = affected(old, new)
        only = None if scope is None else scope.nodes
        assert only == affected_nodes(old, new)
        netns = node_netns(new)
        report = sync_policies(
            CLUSTER,
            new,
            netns,
            runner,
            previous=tables,
            only=only,
            reuse=pods,
            dirty=None if scope is None else scope.pods,
        )
        whole = render_all(new, CLUSTER)
        assert report.tables == whole, (ch, scope)
        for node, table in whole.items():
            if node not in report.applied:
                assert tables[node] == table  # skipped only when unchanged
            assert (
                runner.applied[netns[node]]
                == table.with_counter_values(runner.counters.get(netns[node], {}))
                or node not in report.applied
            )
        tables, pods, old = report.tables, report.pods, new


def test_a_relabel_no_policy_reads_touches_only_the_pods_node() -> None:
    state = initial()
    state["policies"]["x/p1"] = {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}],
    }
    old = engine_of(state)
    state["pods"]["y/b"]["labels"] = {"pod": "b", "tier": "back"}
    assert affected_nodes(old, engine_of(state)) == {"node-3"}
    state["pods"]["x/b"]["labels"] = {"app": "web"}  # now a peer of x/p1, which selects x/a
    assert affected_nodes(old, engine_of(state)) == {"node-1", "node-2", "node-3"}


def test_what_moves_renders_every_node() -> None:
    state = initial()
    old = engine_of(state)
    c = cluster(*docs(state), nodes=3)
    moved = dict(HELD_IPS)
    node, ip = moved["x", "a"]
    moved["x", "a"] = (node, ip.rsplit(".", 1)[0] + ".200")  # another address
    assert affected_nodes(old, Engine(c, place(c, held=moved))) is None
