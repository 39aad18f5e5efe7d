"""A `kubectl get -A -o yaml` dump of a kind cluster (no Node objects; kube-system with
hostNetwork pods, DaemonSets and CoreDNS; pods with their podIPs) comes up as it is and
probes clean; the nodes' ranges derived from the pods are kept in the store."""

from __future__ import annotations

import json

import pytest
import yaml
from test_placement_dump import RANGES, kind_dump

from podnet.state.store import Store
from podnet.testing import podnet, policy, unique_cluster

pytestmark = pytest.mark.datapath


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dump")
    name = unique_cluster("kind")
    env = {"PODNET_STATE_DIR": str(tmp / "state")}
    deny = policy("app/web-from-dns", {"podSelector": {"matchLabels": {"app": "web"}}})
    path = tmp / "dump.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": kind_dump()}))
    (tmp / "deny.yaml").write_text(yaml.safe_dump(deny))
    try:
        out = podnet("up", "-f", str(path), "--cluster", name, env=env)
        assert out.returncode == 0, out.stderr
        yield name, env, tmp
    finally:
        podnet("down", "--cluster", name, env=env)


def test_the_dump_keeps_its_addresses_and_node_ranges(live):
    name, _, tmp = live
    runtime = json.loads((tmp / "state" / name / "runtime.json").read_text())
    assert {n["name"]: n["podCIDR"] for n in runtime["nodes"]} == {
        n: f"{r}.0/24" for n, r in RANGES.items()
    }
    pods = {f"{p['namespace']}/{p['name']}": p["ip"] for p in runtime["pods"]}
    assert pods["kube-system/coredns-5d78c9869d-2q"] == "10.244.0.2"
    assert pods["app/web-kind-worker2-3"] == "10.244.1.3"
    with Store.open(tmp / "state" / name) as store:  # as the node IPAM controller records it
        nodes = {o.name: o.body["spec"]["podCIDR"] for o in store.list("Node")}
    assert nodes == {n: f"{r}.0/24" for n, r in RANGES.items()}


def test_the_dump_probes_clean_and_after_a_policy_too(live):
    name, env, tmp = live
    out = podnet("probe", "--cluster", name, "-o", "json", env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr
    assert json.loads(out.stdout)["summary"]["mismatches"] == 0
    assert podnet("apply", "-f", str(tmp / "deny.yaml"), "--cluster", name, env=env).returncode == 0
    out = podnet("probe", "--cluster", name, "-o", "json", env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr
    blocked = [r for r in json.loads(out.stdout)["results"] if r["verdict"] == "blocked"]
    assert blocked and all(r["to"].startswith("app/web") for r in blocked)
