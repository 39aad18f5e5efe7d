"""--hostnetwork-pods: node (default; a hostNetwork pod's traffic is its node's) or pod (a pod
like any other, at its node's address), in the engine, the matrix and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from podnet.cli.main import main
from podnet.policy.engine import Engine
from podnet.policy.matrix import compute
from podnet.policy.ports import PortProto
from podnet.testing import cluster, namespace, pod, policy

HTTP = PortProto(80, "TCP")
DOCS = [
    namespace("app"),
    namespace("mon"),
    pod("app/web", labels={"app": "web"}, node="node-1", ports=[{"containerPort": 80}]),
    pod("app/peer", labels={"app": "peer"}, node="node-2"),
    pod("mon/agent", labels={"app": "agent"}, node="node-1", host_network=True),
    pod(
        "mon/exporter",
        labels={"app": "exp"},
        node="node-2",
        host_network=True,
        ports=[{"containerPort": 80}],
    ),
    # web admits only the agent; the exporter admits only web
    policy(
        "app/web",
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "agent"}}}
                    ]
                }
            ],
        },
    ),
    policy(
        "mon/exp",
        {
            "podSelector": {"matchLabels": {"app": "exp"}},
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}
                    ]
                }
            ],
        },
    ),
]
CASES = {
    # (src, dst): (node reading, pod reading)
    ("mon/agent", "app/web"): (True, True),  # node: its own node; pod: the rule selects it
    ("mon/exporter", "app/web"): (False, False),
    ("app/peer", "mon/exporter"): (True, False),  # node: nothing isolates the exporter
    ("app/web", "mon/exporter"): (True, True),
}


@pytest.mark.parametrize("reading", [0, 1], ids=["node", "pod"])
def test_engine_and_matrix_per_reading(reading: int) -> None:
    mode = ("node", "pod")[reading]
    e = Engine(cluster(*DOCS, nodes=2), hostnetwork_pods=mode)
    m = compute(e, [HTTP], declared_only=False).dense(0)
    index = {p.key: i for i, p in enumerate(e.pods)}
    for (src, dst), expected in CASES.items():
        verdict = e.allowed(e.by_key[src], e.by_key[dst], HTTP)
        assert verdict == expected[reading], (mode, src, dst)
        assert bool(m[index[src], index[dst]]) == verdict, (mode, src, dst)


def test_explain_names_the_reading() -> None:
    e = Engine(cluster(*DOCS, nodes=2))
    v = e.explain(e.by_key["app/peer"], e.by_key["mon/exporter"], HTTP)
    assert "its own node" in v.reason
    v = e.explain(e.by_key["app/web"], e.by_key["mon/exporter"], HTTP)
    assert v.ingress is not None and "host network" in v.ingress.note
    e = Engine(cluster(*DOCS, nodes=2), hostnetwork_pods="pod")
    v = e.explain(e.by_key["app/peer"], e.by_key["mon/exporter"], HTTP)
    assert v.ingress is not None and v.ingress.policies == ["mon/exp"] and not v.allowed


def test_command_line_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump_all(DOCS))
    answers = {}
    for mode in ("node", "pod"):
        args = ["analyze", "-f", str(f), "--from", "app/peer", "--to", "mon/exporter"]
        assert main([*args, "--hostnetwork-pods", mode, "-o", "json"]) == 0
        (r,) = json.loads(capsys.readouterr().out)["results"]
        answers[mode] = r["allowed"]
        args = ["explain", "-f", str(f), "--from", "app/peer", "--to", "mon/exporter"]
        assert main([*args, "--port", "80/TCP", "--hostnetwork-pods", mode]) == 0
        capsys.readouterr()
    assert answers == {"node": True, "pod": False}
