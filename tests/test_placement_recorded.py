"""A live cluster's nodes keep the address and pod range they were given (the store's node
table, passed to `place` as `nodes`), as pods keep theirs (`held`): a node added later takes
a free range instead of the one the next free range would be. No root."""

from __future__ import annotations

from podnet.state.placement import place
from podnet.testing import cluster, namespace, pod

NODE1 = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}


def test_a_recorded_node_keeps_its_range_and_address_when_another_comes() -> None:
    before = cluster(namespace("a"), NODE1, pod("a/p9", node="node-9"))
    first = place(before)
    recorded = {n: (first.node_ip[n], str(c)) for n, c in first.node_cidr.items()}
    # node-8 sorts before node-9: placed from scratch, it takes node-9's range and address.
    after = cluster(namespace("a"), NODE1, pod("a/p9", node="node-9"), pod("a/p8", node="node-8"))
    fresh = place(after)
    assert str(fresh.node_cidr["node-8"]) == recorded["node-9"][1]
    kept = place(after, nodes=recorded)
    assert {n: (kept.node_ip[n], str(kept.node_cidr[n])) for n in recorded} == recorded
    assert kept.node_cidr["node-8"] not in {first.node_cidr[n] for n in recorded}
    assert kept.node_ip["node-8"] not in {ip for ip, _ in recorded.values()}
