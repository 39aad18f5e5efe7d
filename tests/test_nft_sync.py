"""sync_policies with the in-memory runner (no root): one transaction per node, counters carried
over a table replacement, incremental skips, failures reported per node; the shared-peer
renderer gives exactly render_node's table; counts attributed to policies."""

from __future__ import annotations

import dataclasses
import json

import pytest

from podnet.controller.policy_sync import sync_policies
from podnet.datapath.nft import parse_counters, parse_dynamic
from podnet.nftables import text as nft_text
from podnet.nftables.model import Counter
from podnet.policy.engine import policy_name
from podnet.render import kernel_names
from podnet.render.policy_counters import policy_counts
from podnet.render.policy_nft import PeerIndex, render_all, render_node
from podnet.testing import FakeRunner, engine, namespace, pod


def netpol(key: str, spec: dict) -> dict:
    ns, name = key.split("/")
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def cluster():
    ports = [{"name": "http", "containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]
    return engine(
        namespace("x", team="a"),
        namespace("y", team="b"),
        pod("x/a", labels={"app": "a"}, ports=ports, node="node-1"),
        pod("x/b", labels={"app": "b"}, ports=ports, node="node-1"),
        pod("y/c", labels={"app": "c"}, ports=ports, node="node-2"),
        netpol(
            "x/a-in",
            {
                "podSelector": {"matchLabels": {"app": "a"}},
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"app": "b"}}}],
                        "ports": [{"port": "http"}],
                    },
                    {"from": [{"namespaceSelector": {"matchLabels": {"team": "b"}}}]},
                    {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.244.0.0/24"]}}]},
                ],
            },
        ),
        netpol(
            "y/c-eg",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [{"podSelector": {}}],
                        "ports": [{"port": "http"}, {"port": 9000, "endPort": 9010}],
                    }
                ],
            },
        ),
    )


NODES = {"node-1": "ns.node-1", "node-2": "ns.node-2"}


def rules_in_text(text: str) -> int:
    """Lines inside chains, hook declarations not counted (how rules were counted when the
    ruleset was text: Table.rule_count must give the same numbers)."""
    n, inside = 0, False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("chain ") and s.endswith("{"):
            inside = True
        elif inside and s == "}":
            inside = False
        elif inside and not s.startswith("type "):
            n += 1
    return n


def test_one_transaction_per_node_with_the_rendered_table():
    e, runner = cluster(), FakeRunner()
    report = sync_policies("c1", e, NODES, runner)
    assert report.ok and report.applied == ["node-1", "node-2"]
    assert sorted(ns for ns, _ in runner.history) == ["ns.node-1", "ns.node-2"]
    for node, ns in NODES.items():
        assert runner.applied[ns] == render_node(e, node, "c1")
        text = nft_text.replace(runner.applied[ns])
        assert report.nodes[node].rules == rules_in_text(text) > 0


def test_one_peer_index_shared_by_all_nodes_renders_the_same_table():
    e = cluster()
    shared = PeerIndex(e)
    for node in NODES:
        assert render_node(e, node, "c1", shared) == render_node(e, node, "c1")


def test_render_all_renders_every_node_as_render_node_does():
    e = cluster()
    tables = render_all(e, "c1")
    assert sorted(tables) == sorted(NODES)
    assert tables == {node: render_node(e, node, "c1") for node in NODES}


def test_a_full_sync_applies_every_node_whatever_was_applied_before():
    # The kernel's table may have been deleted or flushed since: previous=None re-applies.
    e, runner = cluster(), FakeRunner()
    first = sync_policies("c1", e, NODES, runner)
    runner.applied.clear()
    full = sync_policies("c1", e, NODES, runner, previous=None)
    assert full.applied == ["node-1", "node-2"]
    assert runner.applied == {ns: first.tables[n] for n, ns in NODES.items()}


def test_counters_survive_a_sync():
    e, runner = cluster(), FakeRunner()
    sync_policies("c1", e, NODES, runner)
    name = kernel_names.policy_accept_counter(policy_name(e.cluster.policies[0]))
    runner.counters["ns.node-1"][name] = (7, 420)
    report = sync_policies("c1", e, NODES, runner)
    assert Counter(name, 7, 420) in runner.applied["ns.node-1"].counters
    assert f"counter {name} {{ packets 7 bytes 420 }}" in nft_text.replace(
        runner.applied["ns.node-1"]
    )
    assert runner.list_counters("ns.node-1")[name] == (7, 420)
    # The table kept for the next comparison carries no values: counting is not a change.
    assert Counter(name) in report.tables["node-1"].counters


def test_incremental_sync_skips_unchanged_nodes():
    e, runner = cluster(), FakeRunner()
    first = sync_policies("c1", e, NODES, runner)
    again = sync_policies("c1", e, NODES, runner, previous=first.tables)
    assert again.ok and again.applied == []
    assert len(runner.history) == 2


def test_a_failing_node_is_reported_not_raised():
    e, runner = cluster(), FakeRunner(fail={"ns.node-2"})
    report = sync_policies("c1", e, NODES, runner)
    assert not report.ok and report.errors[0].startswith("node-2: NftError")
    assert "node-2" not in report.tables  # so the next sync re-applies it


def test_parse_counters_keeps_podnet_tables_only():
    doc = (
        '{"nftables": [{"metainfo": {}}, '
        '{"counter": {"family": "inet", "name": "x", "table": "podnet_c1", "packets": 3, "bytes": 9}}, '
        '{"counter": {"family": "inet", "name": "y", "table": "other", "packets": 1, "bytes": 1}}]}'
    )
    assert parse_counters(doc) == {"x": (3, 9)}


@pytest.mark.parametrize(
    "direction, drop_counter",
    [
        ("ingress", kernel_names.ingress_drop_counter),
        ("egress", kernel_names.egress_drop_counter),
    ],
    ids=["ingress", "egress"],
)
def test_drops_are_attributed_to_every_policy_isolating_the_pod(direction, drop_counter):
    e = cluster()
    target = e.by_key["x/a" if direction == "ingress" else "y/c"]
    counters = {drop_counter(target.key): (5, 300)}
    counts = policy_counts(e, counters)
    pols = {f"{p.metadata.namespace}/{p.metadata.name}" for p in e.selecting(target, direction)}
    assert pols
    for key, (accepted, dropped) in counts.items():
        assert accepted == 0
        assert dropped == (5 if key in pols else 0)


def test_parse_dynamic_keeps_the_named_sets_of_the_table() -> None:

    def s(table: str, name: str, *elems: object) -> dict:
        return {"set": {"family": "inet", "table": table, "name": name, "elem": list(elems)}}

    doc = json.dumps(
        {
            "nftables": [
                {"metainfo": {"version": "1.0.6"}},
                s("podnet_a", "aff-1", {"elem": {"val": "10.244.1.2", "expires": 99}}),
                s("podnet_a", "aff-2", {"elem": {"val": "10.244.1.3", "expires": 5}}),
                s("podnet_b", "aff-1", {"elem": {"val": "10.244.9.9", "expires": 7}}),
                s("podnet_a", "plain", "10.0.0.1"),
            ]
        }
    )
    assert parse_dynamic(doc, "podnet_a", {"aff-1", "plain"}) == {"aff-1": [("10.244.1.2", 99)]}
    assert parse_dynamic("", "podnet_a", {"aff-1"}) == {}


def test_a_node_neither_rendered_nor_given_other_service_rules_keeps_its_table(monkeypatch):
    """The incremental path: only the nodes a change touches are rendered, and a node whose
    Service rules are those of the last sync is not merged (nor compared) again."""
    from ipaddress import IPv4Network
    from pathlib import Path

    from podnet.controller import policy_sync
    from podnet.model.cluster import load_cluster
    from podnet.render.service_nft import policy_part
    from podnet.render.service_nft import render_all as render_services
    from podnet.render.service_ports import service_ports

    example = Path(__file__).resolve().parent.parent / "examples" / "services"
    c = load_cluster([str(example)])
    cidr, svc_cidr = IPv4Network("10.244.0.0/16"), IPv4Network("10.96.0.0/12")
    services = render_services(service_ports(c.services, c.endpoint_slices), NODES, cidr, svc_cidr)
    e, runner = cluster(), FakeRunner()
    first = sync_policies("c1", e, NODES, runner, services=services)
    merged: list[str] = []
    real = policy_sync.merge
    monkeypatch.setattr(policy_sync, "merge", lambda t, r: merged.append("x") or real(t, r))

    def again(new_services, previous_services):
        merged.clear()
        return sync_policies(
            "c1",
            e,
            NODES,
            runner,
            previous=first.tables,
            only=frozenset({"node-1"}),
            reuse=first.pods,
            dirty=frozenset(),
            services=new_services,
            previous_services=previous_services,
        )

    same = again(services, services)
    assert merged == ["x"]  # node-1, rendered; node-2 kept as it was
    assert same.tables["node-2"] is first.tables["node-2"] and same.applied == []
    without = {**services, "node-2": dataclasses.replace(services["node-2"], ports=())}
    changed = again(without, services)
    assert len(merged) == 2 and changed.applied == ["node-2"]
    table = changed.tables["node-2"]
    assert policy_part(table) == table != first.tables["node-2"]  # its Service rules gone
