"""The rendered datapath plan: golden files per mode, kernel-name budgets, refusals.

Regenerate the golden files with PODNET_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from podnet.model.cluster import build
from podnet.model.errors import InputError
from podnet.model.load import LoadResult
from podnet.render import kernel_names
from podnet.render import runtime as rt
from podnet.render.topology import render
from podnet.state.placement import place
from podnet.testing import cluster as cluster_from
from podnet.testing import pod

GOLDEN = Path(__file__).parent / "golden" / "render"
UPDATE = os.environ.get("PODNET_UPDATE_GOLDEN") == "1"


def sample():
    return cluster_from(
        pod("shop/web-0", labels={"app": "web"}, ports=[{"name": "http", "containerPort": 80}]),
        pod("shop/web-1", labels={"app": "web"}, ports=[{"containerPort": 80}]),
        pod("shop/db-0", node="node-1", ports=[{"containerPort": 5432}]),
        pod("shop/pinned", ip="10.244.1.77"),
        pod("kube-system/agent", node="node-2", host_network=True),
        nodes=2,
    )


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with PODNET_UPDATE_GOLDEN=1"
    assert text == path.read_text()


@pytest.mark.parametrize("mode", ["host-gw", "vxlan"])
def test_plan_matches_golden(mode):
    c = sample()
    plan = render(c, place(c, strict=True), "demo", mode)
    check_golden(f"plan-{mode}.txt", plan.text())


def test_runtime_matches_golden():
    c = sample()
    check_golden("runtime.json", rt.dumps(rt.build(c, place(c, strict=True), "demo", "vxlan")))


def test_runtime_host_network_pod_lives_in_node_namespace():
    c = sample()
    doc = rt.to_doc(rt.build(c, place(c, strict=True), "demo", "host-gw"))
    agent = next(p for p in doc["pods"] if p["name"] == "agent")
    assert agent["hostNetwork"] is True
    assert agent["netns"] == kernel_names.node_netns("demo", "node-2")
    assert agent["ip"] == next(n["ip"] for n in doc["nodes"] if n["name"] == "node-2")


def test_every_netns_carries_the_cluster_name_and_links_fit_ifnamsiz():
    long = "p" * 253
    c = cluster_from(pod(f"shop/{long}"), pod("shop/x"), nodes=1)
    plan = render(c, place(c, strict=True), "demo", "vxlan")
    for ns in plan.namespaces:
        assert ns.name.startswith("podnet.demo.")
        assert len(ns.name) <= kernel_names.NETNS_NAME_MAX
        for link in ns.links:
            assert len(link.name) <= kernel_names.IFNAMSIZ
    assert len({ns.name for ns in plan.namespaces}) == len(plan.namespaces)


def test_link_names_are_readable_and_stable():
    assert kernel_names.pod_veth("shop", "web-0") == kernel_names.pod_veth("shop", "web-0")
    assert kernel_names.pod_veth("shop", "web-0").startswith("web-0-")
    assert kernel_names.pod_veth("shop", "web-0") != kernel_names.pod_veth("other", "web-0")


def test_nft_names_hash_the_identity_they_name():
    """The nft names `podnet get networkpolicies` reads counters by, and `down` and the
    benchmarks find the table by: spelled once, in kernel_names."""
    h = hashlib.sha256(b"shop/web-0").hexdigest()[:10]
    assert kernel_names.table_name("demo-1") == "podnet_demo_1"
    assert kernel_names.policy_accept_counter("shop/web-0") == f"pol_{h}_accept"
    assert kernel_names.ingress_drop_counter("shop/web-0") == f"in_drop_{h}"
    assert kernel_names.egress_drop_counter("shop/web-0") == f"eg_drop_{h}"
    assert kernel_names.nft_object(kernel_names.PEER_SET, "shop/web-0") == f"peer-{h}"


@pytest.mark.parametrize(
    "cluster_name, fragment",
    [
        ("x" * 33, "at most 32"),
        ("Bad_Name", "DNS label"),
        ("a.b", "DNS label"),
        ("", "DNS label"),
    ],
    ids=["too-long", "uppercase", "dot", "empty"],
)
def test_bad_cluster_names_are_refused(cluster_name, fragment):
    c = cluster_from(pod("shop/a"), nodes=1)
    with pytest.raises(InputError) as e:
        render(c, place(c, strict=True), cluster_name, "host-gw")
    assert fragment in str(e.value)


def test_hash_collision_is_refused_naming_both_pods(monkeypatch):
    monkeypatch.setattr(kernel_names, "short_hash", lambda *parts, length=8: "0" * length)
    c = cluster_from(pod("shop/web-abc1"), pod("shop/web-abc2"), nodes=1)
    with pytest.raises(InputError) as e:
        render(c, place(c, strict=True), "demo", "host-gw")
    assert "collides" in str(e.value) and "web-" in str(e.value)


def test_unknown_mode_is_refused():
    c = cluster_from(pod("shop/a"), nodes=1)
    with pytest.raises(InputError, match="unknown mode"):
        render(c, place(c, strict=True), "demo", "ipip")


def test_single_node_vxlan_has_no_overlay_device():
    c = cluster_from(pod("shop/a"), nodes=1)
    plan = render(c, place(c, strict=True), "demo", "vxlan")
    (node,) = plan.by_role("node")
    assert all(link.kind != "vxlan" for link in node.links)


def test_vxlan_entries_point_at_every_other_node():
    c = cluster_from(*(pod(f"shop/p{i}") for i in range(6)), nodes=3)
    pl = place(c, strict=True)
    plan = render(c, pl, "demo", "vxlan")
    for node in plan.by_role("node"):
        others = {ip for n, ip in pl.node_ip.items() if n != node.owner}
        assert {f.dst for f in node.fdb} == others
        vteps = {n.mac for n in node.neighbours if n.dev == kernel_names.VXLAN_IF}
        assert vteps == {f.mac for f in node.fdb}


def test_empty_input_still_renders_fabric_and_nodes():
    c = build(LoadResult(), node_count=2)
    plan = render(c, place(c, strict=True), "demo", "host-gw")
    assert [ns.role for ns in plan.namespaces] == ["fabric", "internet", "node", "node"]
