"""Null means unset for every optional field, as the API server's JSON decoding does.

Public policy recipes write `podSelector:` or `matchLabels:` with no value (YAML null); Go's
encoding/json leaves such pointers, slices and maps nil, exactly as when the key is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from podnet.model.cluster import load_cluster
from podnet.model.errors import InputError
from podnet.policy.ports import PortProto
from podnet.testing import engine, namespace, pod, policy

PODS = [
    namespace("a", team="a"),
    namespace("b", team="b"),
    pod("a/web", labels={"app": "web"}, ports=[{"containerPort": 80}]),
    pod("a/cli", labels={"app": "cli"}),
    pod("b/cli", labels={"app": "cli"}),
]
HTTP = PortProto(80, "TCP")


def verdicts(spec: str) -> dict[str, bool]:
    e = engine(*PODS, policy("a/p", spec))
    web = e.by_key["a/web"]
    return {src: e.allowed(e.by_key[src], web, HTTP) for src in ("a/cli", "b/cli")}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            "podSelector:\npolicyTypes: [Ingress]\n",
            {"a/cli": False, "b/cli": False},
            id="null-podSelector-selects-all-deny-all",
        ),
        pytest.param(
            "podSelector:\n  matchLabels:\npolicyTypes: [Ingress]\n",
            {"a/cli": False, "b/cli": False},
            id="null-matchLabels",
        ),
        pytest.param(
            "podSelector: {matchLabels: {app: web}, matchExpressions: null}\ningress:\n",
            {"a/cli": False, "b/cli": False},
            id="null-ingress-list-and-matchExpressions",
        ),
        pytest.param(
            "podSelector: {}\ningress:\n- from:\n  ports:\n",
            {"a/cli": True, "b/cli": True},
            id="null-from-and-ports-admit-everything",
        ),
        pytest.param(
            "podSelector: {}\ningress:\n- from:\n  - podSelector:\n      matchLabels:\n"
            "    namespaceSelector:\n",
            {"a/cli": True, "b/cli": False},
            id="null-namespaceSelector-is-own-namespace",
        ),
        pytest.param(
            "podSelector: {}\ningress:\n- from:\n  - podSelector: {}\n    namespaceSelector: {}\n",
            {"a/cli": True, "b/cli": True},
            id="empty-namespaceSelector-is-all-namespaces",
        ),
        pytest.param(
            "podSelector: {}\ningress:\n- from:\n  - namespaceSelector:\n      matchLabels:\n"
            "        team: b\n    podSelector:\n  ports:\n  - port: 80\n    protocol:\n    endPort:\n",
            {"a/cli": False, "b/cli": True},
            id="null-podSelector-in-peer-and-null-port-fields",
        ),
    ],
)
def test_null_fields_read_as_absent(spec: str, expected: dict[str, bool]) -> None:
    assert verdicts(spec) == expected


def test_null_egress_does_not_add_egress_policy_type() -> None:
    e = engine(*PODS, policy("a/p", "podSelector:\negress:\ningress:\n"))
    assert e.cluster.policies[0].spec.policy_types == ("Ingress",)


def test_null_metadata_and_spec_fields_of_other_kinds(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n  labels:\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: x\n  labels:\n"
        "  annotations:\nspec:\n  nodeName:\n  hostNetwork:\n  containers:\n"
        "  - name: c\n    ports:\n    - containerPort: 80\n      protocol:\nstatus:\n  podIP:\n"
    )
    c = load_cluster([str(f)])
    (p,) = c.pods
    assert p.metadata.labels == {} and not p.spec.host_network
    assert p.spec.containers[0].ports[0].protocol == "TCP"
    assert c.namespace("x").metadata.labels == {"kubernetes.io/metadata.name": "x"}


def test_null_required_field_is_reported_missing(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n"
        "spec:\n  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n        cidr:\n"
    )
    with pytest.raises(InputError) as e:
        load_cluster([str(f)])
    assert "spec.ingress[0].from[0].ipBlock.cidr: Required value" in str(e.value)


def test_unknown_field_stays_reported_when_null(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n"
        "spec:\n  podSelector:\n  ingres:\n"
    )
    with pytest.raises(InputError) as e:
        load_cluster([str(f)])
    assert "spec.ingres: unknown field" in str(e.value)
