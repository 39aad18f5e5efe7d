"""The per-node nftables renderer: golden text, and a packet tracer that must agree with the
policy engine on every pair (the renderer and the engine cannot drift apart unnoticed).

Regenerate the golden files with PODNET_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_matrix_property import cluster_docs

from podnet.model.cluster import load_cluster
from podnet.nftables import text as nft_text
from podnet.nftables.expr import InSet, Jump, VMap
from podnet.nftables.model import Table
from podnet.policy.endpoints import PodEndpoint
from podnet.policy.engine import Engine
from podnet.policy.matrix import declared_ports
from podnet.policy.ports import PortProto
from podnet.render.kernel_names import table_name
from podnet.render.policy_nft import render_node
from podnet.testing import Packet, Tracer, engine, trace

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "nft"
UPDATE = os.environ.get("PODNET_UPDATE_GOLDEN") == "1"


def rulesets(e: Engine, cluster: str = "test") -> dict[str, Tracer]:
    return {
        n.metadata.name: Tracer(render_node(e, n.metadata.name, cluster)) for n in e.cluster.nodes
    }


def datapath_verdict(
    rs: dict[str, Tracer], src: PodEndpoint, dst: PodEndpoint, pp: PortProto
) -> bool:
    """Where the first packet of a connection meets a forward hook, and what each says.

    A pod's packet is forwarded by its node; a host-network pod's leaves through the node's
    output hook. At the destination's node it is forwarded to a pod, or delivered to the node
    itself (input hook) when the destination uses the host network.
    """
    pkt = Packet(src.ip, dst.ip, pp.protocol.lower(), pp.port)
    hops = []
    if not src.host_network:
        hops.append(src.node)  # the source node's forward hook judges egress (and local ingress)
    if not dst.host_network and dst.node not in hops:
        hops.append(dst.node)
    if (src.host_network or dst.host_network) and dst.node == src.node:
        hops = []  # between a node and its own pods: output/input hooks, never forwarded
    return all(trace(rs[n], pkt) == "accept" for n in hops)


def test_table_name_carries_the_cluster() -> None:
    assert table_name("demo-1") == "podnet_demo_1"


def test_shop_rulesets_match_golden() -> None:
    e = Engine(load_cluster([str(ROOT / "examples" / "shop")]))
    for node in sorted(n.metadata.name for n in e.cluster.nodes):
        text = nft_text.replace(render_node(e, node, "demo"))
        path = GOLDEN / f"shop-{node}.nft"
        if UPDATE:
            path.write_text(text)
        assert path.exists(), f"{path} missing: run with PODNET_UPDATE_GOLDEN=1"
        assert text == path.read_text(), f"{path} differs: review, then PODNET_UPDATE_GOLDEN=1"


def test_rendering_is_deterministic() -> None:
    a = Engine(load_cluster([str(ROOT / "examples" / "shop")]))
    b = Engine(load_cluster([str(ROOT / "examples" / "shop")]))
    assert render_node(a, "node-1", "x") == render_node(b, "node-1", "x")


def test_a_node_without_isolated_pods_has_no_hook() -> None:
    """No forward hook, so no connection tracking where no policy applies."""
    e = engine(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}},
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "a", "namespace": "x"},
            "spec": {"containers": [{"name": "c"}]},
        },
    )
    text = nft_text.replace(render_node(e, "node-1", "t"))
    assert "jump" not in text and "hook forward" not in text and "map ingress-pods" in text


def dangling(table: Table) -> list[str]:
    """References to objects the table does not declare (nft would refuse the table).
    (The converse is not checked: a policy's accept counter is declared even where none of
    its rules renders, and an egress rule with a named port declares the peer set it does
    not use; both are in the golden files, and harmless.)"""
    sets, maps = {s.name for s in table.sets}, {m.name for m in table.maps}
    chains, counters = {c.name for c in table.chains}, {c.name for c in table.counters}
    wrong = []
    for chain in table.chains:
        for rule in chain.rules:
            refs = [("set", m.set, sets) for m in rule.matches if isinstance(m, InSet)]
            if rule.counter:
                refs.append(("counter", rule.counter, counters))
            if isinstance(rule.verdict, VMap):
                refs.append(("map", rule.verdict.map, maps))
            for what, name, declared in refs:
                if name not in declared:
                    wrong.append(f"{chain.name}: no {what} {name}")
    for m in table.maps:
        for _, v in m.elements:
            if isinstance(v, Jump) and v.chain not in chains:
                wrong.append(f"map {m.name}: no chain {v.chain}")
    return wrong


def check_all_pairs(e: Engine, ports: list[PortProto]) -> list[str]:
    rs = rulesets(e)
    wrong = [f"{node}: {d}" for node, t in rs.items() for d in dangling(t.table)]
    for pp in ports:
        for s in e.pods:
            for d in e.pods:
                if s.key == d.key or (pp.port, pp.protocol) in d.localhost:
                    continue  # loopback and localhost-bound ports never reach the datapath
                want = e.allowed(s, d, pp)
                got = datapath_verdict(rs, s, d, pp)
                if want != got:
                    wrong.append(f"{s.key} -> {d.key} {pp}: engine {want}, ruleset {got}")
    return wrong


def test_shop_ruleset_agrees_with_the_engine() -> None:
    e = Engine(load_cluster([str(ROOT / "examples" / "shop")]))
    assert not check_all_pairs(e, declared_ports(e.pods))


PORTS = st.lists(
    st.sampled_from(
        [
            PortProto(80, "TCP"),
            PortProto(81, "TCP"),
            PortProto(53, "UDP"),
            PortProto(5432, "TCP"),
            PortProto(8080, "TCP"),
            PortProto(9000, "TCP"),
            PortProto(53, "TCP"),
        ]
    ),
    min_size=1,
    max_size=3,
    unique=True,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(docs=cluster_docs(), ports=PORTS)
def test_rendered_rulesets_agree_with_the_engine(
    docs: list[dict[str, Any]], ports: list[PortProto]
) -> None:
    for mode in ("match", "ignore"):
        e = engine(*docs, ipblock_pods=mode)
        wrong = check_all_pairs(e, ports)
        assert not wrong, f"[{mode}]\n" + "\n".join(wrong)


def test_ipblock_modes_in_the_ruleset() -> None:
    """match: an ipBlock over the pod network admits pods; ignore: it admits only outside
    addresses, so the ruleset must leave every cluster address out of its set."""
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}

    def pod(name: str, ip: str, node: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "x", "labels": {"app": name}},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "c", "ports": [{"containerPort": 80}]}],
            },
            "status": {"podIP": ip},
        }

    nodes = [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}} for n in ("node-1", "node-2")
    ]
    pol = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "x"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "b"}},
            "ingress": [
                {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.244.1.0/24"]}}]}
            ],
        },
    }
    docs = [
        *nodes,
        ns,
        pod("a", "10.244.0.5", "node-1"),
        pod("b", "10.244.0.6", "node-1"),
        pod("c", "10.244.1.5", "node-2"),
        pol,
    ]
    pp = PortProto(80, "TCP")
    for mode, a_allowed in (("match", True), ("ignore", False)):
        e = engine(*docs, ipblock_pods=mode)
        rs = rulesets(e)
        a, b, c = (e.by_key[f"x/{n}"] for n in "abc")
        assert datapath_verdict(rs, a, b, pp) is a_allowed is e.allowed(a, b, pp)
        assert datapath_verdict(rs, c, b, pp) is False is e.allowed(c, b, pp)  # in the except
        outside = Packet("10.9.9.9", b.ip, "tcp", 80)
        assert trace(rs["node-1"], outside) == "accept"
