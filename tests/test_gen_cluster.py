"""The benchmark's cluster generator (bench/gen_cluster.py): deterministic, exact counts,
realistic shape, and every document valid for podnet's loader."""

from __future__ import annotations

import importlib.util
import ipaddress
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from podnet.model.cluster import load_cluster
from podnet.state.placement import place

_PATH = Path(__file__).resolve().parent.parent / "bench" / "gen_cluster.py"
_spec = importlib.util.spec_from_file_location("gen_cluster", _PATH)
assert _spec and _spec.loader
gen_cluster = importlib.util.module_from_spec(_spec)
sys.modules["gen_cluster"] = gen_cluster  # dataclasses resolve annotations through it
_spec.loader.exec_module(gen_cluster)


def _walk(obj: Any) -> list[Any]:
    """Every dict and list inside obj, obj included."""
    out, todo = [], [obj]
    while todo:
        o = todo.pop()
        out.append(o)
        if isinstance(o, dict):
            todo += o.values()
        elif isinstance(o, list):
            todo += o
    return out


@pytest.fixture(scope="module")
def mid() -> Any:
    return gen_cluster.generate(500, 100, 10, seed=1)


def test_same_seed_same_files(tmp_path: Path) -> None:
    for name in ("a", "b"):
        gen_cluster.write(gen_cluster.generate(300, 60, 8, seed=7), tmp_path / name)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert [str(f) for f in files] == [
        "meta.txt",
        "nodes/nodes.yaml",
        "ns/namespaces.yaml",
        "pods/pods.yaml",
        "policies/policies.yaml",
    ]
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_other_seed_other_cluster() -> None:
    a = gen_cluster.generate(300, 60, 8, seed=1)
    b = gen_cluster.generate(300, 60, 8, seed=2)
    assert a.pods != b.pods
    assert a.policies != b.policies


@pytest.mark.parametrize(
    ("pods", "policies", "namespaces"),
    [
        pytest.param(500, 100, 10, id="500-100-10"),
        pytest.param(1000, 200, None, id="1000-200-default-ns"),
        pytest.param(7, 1, 3, id="smallest"),
        pytest.param(60, 3, 12, id="fewer-policies-than-namespaces"),
        pytest.param(40, 300, 4, id="many-policies-per-app"),
    ],
)
def test_exact_counts(pods: int, policies: int, namespaces: int | None) -> None:
    g = gen_cluster.generate(pods, policies, namespaces, seed=3)
    expected_ns = namespaces or gen_cluster.default_namespaces(pods)
    assert (len(g.pods), len(g.policies), len(g.namespaces)) == (pods, policies, expected_ns)
    assert g.meta["pods"] == pods
    names = Counter(
        (d["metadata"].get("namespace"), d["metadata"]["name"]) for d in g.pods + g.policies
    )
    assert max(names.values()) == 1


def test_default_namespaces_scale_with_pods() -> None:
    assert [gen_cluster.default_namespaces(p) for p in (500, 1000, 2000, 5000, 10000)] == [
        10,
        20,
        40,
        100,
        200,
    ]


def test_apps_are_deployments_of_3_to_10_identical_replicas(mid: Any) -> None:
    apps: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for d in mid.pods:
        apps[(d["metadata"]["namespace"], d["metadata"]["labels"]["app"])].append(d)
    for (ns, _), pods in apps.items():
        if ns in gen_cluster.SYSTEM_NAMESPACES:
            assert len(pods) == 2
            continue
        assert 3 <= len(pods) <= 10
        shapes = {
            (
                d["metadata"]["labels"]["tier"],
                d["metadata"]["labels"]["pod-template-hash"],
                repr(d["spec"]["containers"]),
            )
            for d in pods
        }
        assert len(shapes) == 1
    # No ownerReferences: NCA would fold the replicas of an owner into one representative.
    assert all("ownerReferences" not in d["metadata"] for d in mid.pods)


def test_namespaces_carry_team_and_env(mid: Any) -> None:
    for d in mid.namespaces:
        labels = d["metadata"]["labels"]
        assert labels["kubernetes.io/metadata.name"] == d["metadata"]["name"]
        if d["metadata"]["name"] != "kube-system":
            assert labels["env"] in gen_cluster.ENVS
            assert labels["team"]


def test_policies_cover_the_usual_kinds(mid: Any) -> None:
    everything = _walk(mid.policies)
    dicts = [o for o in everything if isinstance(o, dict)]
    specs = [p["spec"] for p in mid.policies]
    assert any(s["podSelector"] == {} and "ingress" not in s for s in specs)  # default deny
    assert any(s["policyTypes"] == ["Ingress", "Egress"] for s in specs)
    assert any("namespaceSelector" in d and "podSelector" in d for d in dicts)  # combined peer
    assert any("namespaceSelector" in d and "podSelector" not in d for d in dicts)
    assert any("matchExpressions" in d for d in dicts)
    assert any(d.get("except") for d in dicts if "cidr" in d)
    assert any(d["cidr"].startswith("10.244.") for d in dicts if "cidr" in d)  # pod ranges
    assert any("endPort" in d for d in dicts)
    assert any(isinstance(d.get("port"), str) for d in dicts)
    assert any(isinstance(d.get("port"), int) for d in dicts)
    assert any(d.get("protocol") == "UDP" and d.get("port") in (53, "dns") for d in dicts)
    assert any(s["policyTypes"] == ["Egress"] and "egress" in s for s in specs)


def test_nca_layout(tmp_path: Path) -> None:
    gen_cluster.write(gen_cluster.generate(50, 10, 4, seed=1), tmp_path)
    ns = yaml.safe_load((tmp_path / "ns" / "namespaces.yaml").read_text())
    pods = yaml.safe_load((tmp_path / "pods" / "pods.yaml").read_text())
    policies = list(yaml.safe_load_all((tmp_path / "policies" / "policies.yaml").read_text()))
    assert ns["kind"] == "List" and {i["kind"] for i in ns["items"]} == {"Namespace"}
    assert pods["kind"] == "List" and {i["kind"] for i in pods["items"]} == {"Pod"}
    assert {p["kind"] for p in policies} == {"NetworkPolicy"}


def test_every_document_loads_and_places(tmp_path: Path) -> None:
    gen = gen_cluster.generate(1000, 200, 20, seed=5)
    gen_cluster.write(gen, tmp_path)
    cluster = load_cluster([str(tmp_path)])
    assert not cluster.warnings
    assert len(cluster.pods) == 1000
    assert len(cluster.policies) == 200
    assert len(cluster.namespaces) == 20
    assert len(cluster.nodes) == gen.meta["nodes"]
    placement = place(cluster)
    # The addresses of the dump are kept, and each lies in its node's podCIDR.
    for p in gen.pods:
        key = (p["metadata"]["namespace"], p["metadata"]["name"])
        assert placement.pod_ip[key] == p["status"]["podIP"]
        node = placement.pod_node[key]
        assert ipaddress.ip_address(placement.pod_ip[key]) in placement.node_cidr[node]
    slots = sum(
        len({(cp.container_port, cp.protocol) for _, cp in p.all_ports}) for p in cluster.pods
    )
    assert gen.meta["port_slots"] == slots


def test_json_output_is_the_same_cluster(tmp_path: Path) -> None:
    gen = gen_cluster.generate(200, 40, 6, seed=2, owners=True)
    gen_cluster.write(gen, tmp_path / "y")
    gen_cluster.write(gen, tmp_path / "j", "json")
    assert not list((tmp_path / "j").rglob("*.yaml"))
    a, b = load_cluster([str(tmp_path / "y")]), load_cluster([str(tmp_path / "j")])
    assert (a.namespaces, a.nodes, a.pods, a.policies) == (
        b.namespaces,
        b.nodes,
        b.pods,
        b.policies,
    )
    assert all(p.metadata.owner_references for p in a.pods)
