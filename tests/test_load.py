"""Manifest loading: sources, list shapes, defaulting, workloads, dumps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from podnet.model.cluster import build, load_cluster
from podnet.model.errors import InputError
from podnet.model.load import load

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}


def pod_doc(name: str, ns: str = "x", **extra: object) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "c"}]},
        **extra,
    }


def write(tmp_path: Path, name: str, docs: list[object]) -> Path:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump_all(docs))
    return p


def test_multi_document_yaml_and_folder_recursion(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", [NS, pod_doc("a")])
    write(tmp_path, "sub/b.yml", [pod_doc("b")])
    (tmp_path / "sub/c.json").write_text(json.dumps(pod_doc("c")))
    (tmp_path / "notes.txt").write_text("not a manifest")
    c = load_cluster([str(tmp_path)])
    assert [p.metadata.name for p in c.pods] == ["a", "b", "c"]


def test_stdin(tmp_path: Path) -> None:
    c = load_cluster(["-"], stdin_text=yaml.safe_dump_all([NS, pod_doc("a")]))
    assert [p.metadata.name for p in c.pods] == ["a"]


def test_kind_list_and_typed_lists_without_item_kind(tmp_path: Path) -> None:
    items = [{"metadata": {"name": "a", "namespace": "x"}, "spec": {"containers": [{"name": "c"}]}}]
    write(tmp_path, "pods.yaml", [{"apiVersion": "v1", "kind": "PodList", "items": items}])
    write(tmp_path, "all.yaml", [{"apiVersion": "v1", "kind": "List", "items": [NS, pod_doc("b")]}])
    c = load_cluster([str(tmp_path)])
    assert sorted(p.metadata.name for p in c.pods) == ["a", "b"]


def test_server_fields_are_tolerated(tmp_path: Path) -> None:
    doc = pod_doc(
        "a", status={"phase": "Running", "podIP": "10.244.1.7", "conditions": [{"type": "Ready"}]}
    )
    doc["metadata"].update(uid="u", resourceVersion="1", managedFields=[{"manager": "kubectl"}])  # type: ignore[attr-defined]
    c = load_cluster([str(write(tmp_path, "a.yaml", [NS, doc]))])
    assert c.pods[0].ip == "10.244.1.7"


def test_api_server_defaulting(tmp_path: Path) -> None:
    pol = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p"},
        "spec": {"podSelector": {}, "egress": [{}]},
    }
    pol2 = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "q"},
        "spec": {"egress": []},
    }
    port_pod = pod_doc("a", ns="default")
    port_pod["spec"] = {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}
    c = load_cluster([str(write(tmp_path, "a.yaml", [pol, pol2, port_pod]))])
    p, q = c.policies
    assert p.metadata.namespace == "default"
    assert p.spec.policy_types == ("Ingress", "Egress")
    assert q.spec.policy_types == ("Ingress",), "an empty egress list does not imply Egress"
    assert q.spec.pod_selector.is_empty
    assert c.pods[0].spec.containers[0].ports[0].protocol == "TCP"
    ns = c.namespace("default")
    assert ns.metadata.labels == {"kubernetes.io/metadata.name": "default"}
    assert any("namespaces used but not declared" in str(w) for w in c.warnings)


def test_namespace_name_label_is_set_even_when_labels_given(tmp_path: Path) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "x", "labels": {"team": "a"}},
    }
    c = load_cluster([str(write(tmp_path, "a.yaml", [doc]))])
    assert c.namespace("x").metadata.labels == {"team": "a", "kubernetes.io/metadata.name": "x"}


def test_unknown_kinds_skipped_with_one_summary_warning(tmp_path: Path) -> None:
    docs = [
        NS,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "b"}},
    ]
    result = load([str(write(tmp_path, "a.yaml", docs))])
    skipped = [w for w in result.warnings if "skipped" in w.message]
    assert len(skipped) == 1
    assert "ConfigMap (1)" in skipped[0].message and "ServiceAccount (1)" in skipped[0].message


def workload(kind: str, name: str, replicas: int | None = 2, **spec: object) -> dict[str, object]:
    s: dict[str, object] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 80}]}]
            },
        },
        **spec,
    }
    if replicas is not None:
        s["replicas" if kind != "Job" else "parallelism"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "x"},
        "spec": s,
    }


@pytest.mark.parametrize(
    ("kind", "count", "pattern"),
    [
        ("Deployment", 2, r"^web-[a-z0-9]{10}-[a-z0-9]{5}$"),
        ("ReplicaSet", 2, r"^web-[a-z0-9]{5}$"),
        ("StatefulSet", 2, r"^web-[01]$"),
        ("Job", 2, r"^web-[a-z0-9]{5}$"),
        ("DaemonSet", 3, r"^web-[a-z0-9]{5}$"),
    ],
    ids=["deployment", "replicaset", "statefulset", "job", "daemonset-one-per-node"],
)
def test_workloads_expand_deterministically(
    tmp_path: Path, kind: str, count: int, pattern: str
) -> None:
    path = str(write(tmp_path, "w.yaml", [NS, workload(kind, "web", serviceName="web-svc")]))
    first, second = load_cluster([path]), load_cluster([path])
    names = [p.metadata.name for p in first.pods]
    assert names == [p.metadata.name for p in second.pods]
    assert len(names) == count
    import re

    assert all(re.match(pattern, n) for n in names), names
    assert all(p.metadata.labels["app"] == "web" for p in first.pods)
    assert all(p.all_ports[0][1].name == "http" for p in first.pods)
    if kind == "StatefulSet":
        assert [(p.spec.hostname, p.spec.subdomain) for p in first.pods] == [
            ("web-0", "web-svc"),
            ("web-1", "web-svc"),
        ]
    if kind == "DaemonSet":
        assert sorted(p.spec.node_name or "" for p in first.pods) == ["node-1", "node-2", "node-3"]


def test_cronjob_expands_to_one_job_pod(tmp_path: Path) -> None:
    cj = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "x"},
        "spec": {
            "schedule": "0 0 * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "metadata": {"labels": {"app": "n"}},
                        "spec": {"containers": [{"name": "c"}]},
                    }
                }
            },
        },
    }
    c = load_cluster([str(write(tmp_path, "c.yaml", [NS, cj]))])
    assert len(c.pods) == 1 and c.pods[0].metadata.name.startswith("nightly-")
    assert c.pods[0].metadata.labels["job-name"].startswith("nightly-")


def test_workload_whose_pods_are_in_the_dump_is_not_expanded_twice(tmp_path: Path) -> None:
    dep = workload("Deployment", "web")
    rs = workload("ReplicaSet", "web-5d9c8b7f6")
    rs["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "1"}
    ]  # type: ignore[index]
    pods = []
    for suffix in ("abcde", "fghij"):
        p = pod_doc(f"web-5d9c8b7f6-{suffix}")
        p["metadata"]["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9c8b7f6", "uid": "2"}
        ]  # type: ignore[index]
        pods.append(p)
    c = load_cluster([str(write(tmp_path, "dump.yaml", [NS, dep, rs, *pods]))])
    assert sorted(p.metadata.name for p in c.pods) == ["web-5d9c8b7f6-abcde", "web-5d9c8b7f6-fghij"]


def test_terminal_pods_have_no_network(tmp_path: Path) -> None:
    done = pod_doc("done", status={"phase": "Succeeded"})
    c = load_cluster([str(write(tmp_path, "a.yaml", [NS, done, pod_doc("live")]))])
    assert [p.metadata.name for p in c.pods] == ["live"]


def test_nodes_named_by_a_pod_list_are_created(tmp_path: Path) -> None:
    p = pod_doc("a", status={"hostIP": "10.0.0.5"})
    p["spec"]["nodeName"] = "worker-7"  # type: ignore[index]
    c = load_cluster([str(write(tmp_path, "a.yaml", [NS, p]))])
    assert [n.metadata.name for n in c.nodes] == ["worker-7"]
    assert c.nodes[0].internal_ip == "10.0.0.5"


def test_duplicate_objects_are_rejected_naming_both_places(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", [NS, pod_doc("a")])
    b = write(tmp_path, "b.yaml", [pod_doc("a")])
    with pytest.raises(InputError) as e:
        build(load([str(a), str(b)]))
    (problem,) = e.value.problems
    assert str(problem) == f"{b}[0] Pod x/a: duplicate object (first defined at {a}[1])"


def test_ten_thousand_pod_dump_loads_quickly(tmp_path: Path) -> None:
    """Not a timing assertion (those live in bench/): a smoke test that a big JSON dump of
    the kubectl shape loads completely."""
    items = [
        {
            "metadata": {
                "name": f"p{i}",
                "namespace": f"n{i % 50}",
                "labels": {"app": f"a{i % 20}"},
            },
            "spec": {
                "containers": [{"name": "c", "ports": [{"containerPort": 80}]}],
                "nodeName": f"w{i % 100}",
            },
            "status": {"podIP": f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}"},
        }
        for i in range(10_000)
    ]
    (tmp_path / "dump.json").write_text(
        json.dumps({"apiVersion": "v1", "kind": "PodList", "items": items})
    )
    c = load_cluster([str(tmp_path / "dump.json")])
    assert len(c.pods) == 10_000 and len(c.nodes) == 100


def _big_list(n: int, trailing: bool) -> str:
    items = "".join(
        f"- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: p{i}\n    namespace: x\n"
        f"    labels: {{app: a{i % 7}, on: 'yes'}}\n  spec:\n    containers:\n    - name: c\n"
        f"      ports:\n      - {{containerPort: {1000 + i % 50}, name: p{i % 50}x}}\n"
        for i in range(n)
    )
    tail = "kind: List\nmetadata:\n  resourceVersion: ''\n" if trailing else ""
    head = "" if trailing else "kind: List\n"
    return f"apiVersion: v1\n{head}items:\n{items}{tail}"


@pytest.mark.parametrize("shape", ["list-kubectl-layout", "list-kind-first", "multi-document"])
def test_parallel_parse_equals_sequential(monkeypatch: pytest.MonkeyPatch, shape: str) -> None:
    import podnet.model.manifests as loader

    if shape == "multi-document":
        text = "".join(
            f"---\nkind: Pod\nmetadata: {{name: p{i}, labels: {{v: '1'}}}}\nspec: {{}}\n"
            for i in range(9000)
        )
    else:
        text = _big_list(3000, trailing=shape == "list-kubectl-layout")
    assert len(text) >= loader.PARALLEL_MIN_BYTES
    parallel = loader._parse_in_parallel(text)
    assert parallel is not None, "a cut point exists"
    monkeypatch.setattr(loader, "PARALLEL_MIN_BYTES", 10**12)
    assert parallel == loader.parse_documents("x.yaml", text)


def test_parallel_parse_errors_keep_their_true_position() -> None:
    import podnet.model.manifests as loader

    text = _big_list(3000, trailing=True)
    lines = text.splitlines(keepends=True)
    bad = len(lines) - 20
    lines[bad] = "  spec: [unclosed\n"
    with pytest.raises(InputError) as e:
        loader.parse_documents("big.yaml", "".join(lines))
    assert f"big.yaml:{bad + 2}:" in str(e.value) or f"big.yaml:{bad + 1}:" in str(e.value)


def test_a_top_level_key_between_items_prevents_the_list_cut() -> None:
    import podnet.model.manifests as loader

    text = "items:\n" + "- a: 1\n" * 10 + "other:\n" + "- b: 2\n" * 10
    assert loader._list_cut(text) is None
