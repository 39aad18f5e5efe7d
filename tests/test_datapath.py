"""The three requirements of the Kubernetes network model with real packets, in both modes,
across nodes and on one node; idempotent apply and repair; the cluster is sealed. Needs root.

One cluster per mode, shared by the module (datapath only: the servers here are tiny Python
programs run in the pod namespaces, so these tests do not depend on the daemon).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from podnet.datapath import netns
from podnet.datapath.wiring import apply_plan as apply
from podnet.model.cluster import load_cluster
from podnet.render import kernel_names
from podnet.render.topology import render
from podnet.state.placement import place
from podnet.testing import (
    connect_seen,
    in_netns,
    pod,
    podnet,
    root_snapshot,
    serving,
    unique_cluster,
)

pytestmark = pytest.mark.datapath

# a and b on node-1, c on node-2, a hostNetwork pod on node-2.
PODS = [
    pod("shop/a", node="node-1", ports=[{"containerPort": 8080}]),
    pod("shop/b", node="node-1", ports=[{"containerPort": 8080}]),
    pod("shop/c", node="node-2", ports=[{"containerPort": 8080}]),
    pod("kube-system/agent", node="node-2", host_network=True),
]
NODES = [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{i}"}} for i in (1, 2)]
PORT = 8080


class Live:
    def __init__(self, name: str, mode: str, manifest: Path, env: dict[str, str]) -> None:
        self.name, self.mode, self.manifest, self.env = name, mode, manifest, env
        out = podnet("get", "pods", "-A", "-o", "json", "--cluster", name, env=env, check=True)
        self.pods = {
            f"{p['metadata']['namespace']}/{p['metadata']['name']}": p
            for p in json.loads(out.stdout)["items"]
        }

    def ip(self, key: str) -> str:
        return self.pods[key]["status"]["podIP"]

    def ns(self, key: str) -> str:
        return kernel_names.pod_netns(self.name, *key.split("/"))

    def node_ns(self, node: str) -> str:
        return kernel_names.node_netns(self.name, node)

    def node_ip(self, node: str) -> str:
        return next(
            p["status"]["hostIP"] for p in self.pods.values() if p["spec"]["nodeName"] == node
        )

    def plan(self):
        c = load_cluster([str(self.manifest)])
        return render(c, place(c, strict=True), self.name, self.mode)


@pytest.fixture(scope="module")
def before():
    return root_snapshot()


@pytest.fixture(scope="module", params=["host-gw", "vxlan"])
def live(request, tmp_path_factory, before):
    mode = request.param
    tmp = tmp_path_factory.mktemp(f"dp-{mode}")
    manifest = tmp / "cluster.yaml"
    manifest.write_text(yaml.safe_dump_all([*NODES, *PODS]))
    env = {"PODNET_STATE_DIR": str(tmp / "state")}
    name = unique_cluster("dp")
    try:
        up = podnet(
            "up", "-f", str(manifest), "--cluster", name, "--mode", mode, "--no-daemon", env=env
        )
        assert up.returncode == 0, up.stderr
        yield Live(name, mode, manifest, env)
    finally:
        podnet("down", "--cluster", name, env=env)
        assert netns.listing(kernel_names.netns_prefix(name)) == []


def test_pod_to_pod_across_nodes_without_nat(live):
    with serving(live.ns("shop/c"), PORT):
        seen, used = connect_seen(live.ns("shop/a"), live.ip("shop/c"), PORT)
    assert seen == used == live.ip("shop/a")


def test_pod_to_pod_on_one_node_without_nat(live):
    with serving(live.ns("shop/b"), PORT):
        seen, used = connect_seen(live.ns("shop/a"), live.ip("shop/b"), PORT)
    assert seen == used == live.ip("shop/a")


@pytest.mark.parametrize("target", ["shop/a", "shop/c"], ids=["same-node", "other-node"])
def test_node_reaches_pod_seen_with_its_node_ip(live, target):
    with serving(live.ns(target), PORT):
        seen, _ = connect_seen(live.node_ns("node-1"), live.ip(target), PORT)
    assert seen == live.node_ip("node-1")


def test_pod_reaches_host_network_pod_at_node_ip(live):
    agent = live.node_ns("node-2")
    with serving(agent, PORT):
        seen, _ = connect_seen(live.ns("shop/a"), live.node_ip("node-2"), PORT)
    assert seen == live.ip("shop/a")
    assert live.ip("kube-system/agent") == live.node_ip("node-2")


@pytest.mark.parametrize("key", ["shop/a", "shop/b", "shop/c"])
def test_the_ip_a_pod_sees_itself_as_is_its_status_pod_ip(live, key):
    out = in_netns(live.ns(key), "ip", "-j", "-4", "addr", "show", "dev", "eth0")
    own = [a["local"] for i in json.loads(out.stdout) for a in i["addr_info"]]
    wide = podnet("get", "pods", "-n", "shop", "-o", "wide", "--cluster", live.name, env=live.env)
    header, *rows = wide.stdout.splitlines()
    cols = header.split()
    row = next(r.split() for r in rows if r.split()[0] == key.split("/")[1])
    assert own == [row[cols.index("IP")]] == [live.ip(key)]
    assert row[cols.index("NODE")] == live.pods[key]["spec"]["nodeName"]


def test_outside_client_reaches_nodes_not_pods(live):
    inet = kernel_names.internet_netns(live.name)
    with serving(live.node_ns("node-1"), PORT):
        seen, _ = connect_seen(inet, live.node_ip("node-1"), PORT)
    assert seen.startswith("203.0.113.")
    route = in_netns(inet, "ip", "route", "get", live.ip("shop/a"))
    assert route.returncode != 0  # no route to pod addresses from outside (no NAT, no leak)


def test_apply_again_changes_nothing(live):
    assert apply(live.plan()).changes == 0


def test_apply_repairs_what_was_damaged(live):
    node = live.node_ns("node-1")
    veth = kernel_names.pod_veth("shop", "a")
    subprocess.run(["ip", "-n", node, "link", "del", veth], check=True)
    subprocess.run(["ip", "-n", node, "route", "del", f"{live.ip('shop/c')[:-1]}0/24"], check=False)
    result = apply(live.plan())
    assert result.changes > 0 and result.created == 0
    with serving(live.ns("shop/c"), PORT):
        assert connect_seen(live.ns("shop/a"), live.ip("shop/c"), PORT)[0] == live.ip("shop/a")
    assert apply(live.plan()).changes == 0


def test_get_nodes_and_json_are_kubernetes_objects(live):
    out = podnet("get", "nodes", "-o", "json", "--cluster", live.name, env=live.env, check=True)
    nodes = json.loads(out.stdout)
    assert nodes["kind"] == "List"
    assert [n["spec"]["podCIDR"] for n in nodes["items"]] == ["10.244.0.0/24", "10.244.1.0/24"]
    table = podnet("get", "nodes", "--cluster", live.name, env=live.env, check=True).stdout
    assert table.split("\n")[0].split()[:2] == ["NAME", "STATUS"] and "Ready" in table
    y = podnet("get", "pod", "a", "-n", "shop", "-o", "yaml", "--cluster", live.name, env=live.env)
    assert yaml.safe_load(y.stdout)["status"]["podIP"] == live.ip("shop/a")


def test_the_cluster_is_sealed(live, before):
    # The host's namespace has not changed while the cluster is up: no link, route or rule
    # of ours is there, not even a veth end.
    assert root_snapshot() == before
    mine = netns.listing(kernel_names.netns_prefix(live.name))
    host_ips = _host_addresses()
    for ns in mine:
        links = json.loads(in_netns(ns, "ip", "-j", "-d", "link", "show").stdout)
        for link in links:
            kind = link.get("linkinfo", {}).get("info_kind")
            assert kind in (None, "veth", "bridge", "vxlan", "bridge_slave"), (ns, link["ifname"])
            if kind == "veth" and "link_netnsid" in link:
                peer = _nsid_name(ns, link["link_netnsid"])
                assert peer in mine, (ns, link["ifname"], peer)
        for ip in host_ips:
            # Pods have a default route, as in Kubernetes, but it ends at their node; no
            # node, fabric or internet namespace has any route towards a host address.
            route = in_netns(ns, "ip", "-j", "route", "get", ip)
            if ".pod." in ns:
                assert json.loads(route.stdout)[0]["gateway"] == kernel_names.GATEWAY_IP
            else:
                assert route.returncode != 0, (ns, ip, route.stdout)


def _host_addresses() -> list[str]:
    out = subprocess.run(
        ["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True, check=True
    )
    return [
        a["local"]
        for i in json.loads(out.stdout)
        for a in i["addr_info"]
        if not a["local"].startswith("127.")
    ]


def _nsid_name(ns: str, nsid: int) -> str:
    out = json.loads(in_netns(ns, "ip", "-j", "netns", "list-id").stdout or "[]")
    return next((x.get("name", "") for x in out if x["nsid"] == nsid), "")
