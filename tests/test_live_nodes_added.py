"""Nodes added to a running cluster: a Node applied, or a node that an applied pod names
(as `up` creates the nodes a dump's pods name). The first sync records each new node's
address and pod range in the store's node table, as `up` does for the first ones; every
later sync keeps them, so a node added after another takes a range of its own instead of
renumbering the nodes that came before (live: `get nodes`, the routes, `probe`)."""

from __future__ import annotations

import json

import pytest

from podnet.state.store import Store
from podnet.testing import Live, live_cluster, namespace, pod

pytestmark = pytest.mark.datapath

PORTS = [{"containerPort": 8080}]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    docs = [namespace("a"), pod("a/p1", {"app": "x"}, ports=PORTS)]
    with live_cluster(tmp_path_factory.mktemp("nodes"), docs, "pnodes", nodes=2) as c:
        yield c


def _table(live: Live) -> dict[str, tuple[str, str]]:
    with Store.open(live.sdir) as store:
        return store.nodes()


def test_added_nodes_are_recorded_and_keep_their_ranges(live: Live) -> None:
    live.apply([pod("a/p9", {"app": "x"}, ports=PORTS, node="node-9")])
    live.apply([{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-7"}}])
    first = _table(live)
    assert {"node-7", "node-9"} <= first.keys(), first
    ranges = [cidr for _, cidr in first.values()]
    assert len(set(ranges)) == len(ranges) == 4, first  # a range each
    # node-8 sorts before node-9: without the recorded table it took node-9's range.
    live.apply([pod("a/p8", {"app": "x"}, ports=PORTS, node="node-8")])
    after = _table(live)
    assert {n: after[n] for n in first} == first
    ips = live.pod_ips()
    assert ips["a/p9"] in _net(first["node-9"][1]) and ips["a/p8"] in _net(after["node-8"][1])
    out = live.cli("get", "nodes", "-o", "json")
    assert out.returncode == 0, out.stderr
    listed = {
        n["metadata"]["name"]: n["spec"].get("podCIDR") for n in json.loads(out.stdout)["items"]
    }
    assert listed == {n: cidr for n, (_, cidr) in after.items()}, listed
    # The probe reads the node table to know where each pod is served.
    probe = live.cli("probe", "--ports", "8080/TCP")
    assert probe.returncode == 0, probe.stdout[-2000:] + probe.stderr
    assert "all as the engine expects" in probe.stdout, probe.stdout[-2000:]


def _net(cidr: str) -> set[str]:
    import ipaddress

    return {str(a) for a in ipaddress.IPv4Network(cidr)}
