"""The pair by pair analysis of small questions (policy.pair_analysis, no numpy) gives what
the matrix's analysis gives (policy.analysis): every renderer's output is the same text, on
random clusters (test_matrix_property's), random selections and ports, both --ipblock-pods
and both --hostnetwork-pods modes; `analyze` takes it only for small questions."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_matrix_property import PORTS, cluster_docs

from podnet.policy.analysis import analyze
from podnet.policy.classes import class_numbers, classify, ipblock_networks
from podnet.policy.engine import Engine, External
from podnet.policy.pair_analysis import SMALL_CELLS, analyze_pairs, question_cells
from podnet.policy.select import parse_selection
from podnet.report import human, machine
from podnet.testing import cluster, namespace, pod, policy

EXAMPLE = str(Path(__file__).resolve().parent.parent / "examples" / "shop")
RENDERERS = {
    "table": lambda a: human.to_table(a, color=False),
    "color": lambda a: human.to_table(a, color=True),
    "md": human.to_markdown,
    "dot": human.to_dot,
    "summary": human.to_summary,
    "json": machine.to_json,
    "csv": machine.to_csv,
}


def same_outputs(e: Engine, srcs: Any, dsts: Any, out_s: Any, out_d: Any, ports: Any) -> None:
    matrix = analyze(e, srcs, dsts, out_s, out_d, ports)
    pairs = analyze_pairs(e, srcs, dsts, out_s, out_d, ports)
    for name, render in RENDERERS.items():
        assert render(pairs) == render(matrix), name
    assert list(pairs.class_of) == matrix.class_of.tolist()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(docs=cluster_docs(), data=st.data())
def test_pair_analysis_equals_matrix_analysis(docs: list[dict[str, Any]], data: Any) -> None:
    for mode, hostnet in itertools.product(("match", "ignore"), ("node", "pod")):
        e = Engine(cluster(*docs), ipblock_pods=mode, hostnetwork_pods=hostnet)
        pods = e.pods
        srcs = data.draw(st.lists(st.sampled_from(pods), unique_by=lambda p: p.key))
        dsts = data.draw(st.lists(st.sampled_from(pods), unique_by=lambda p: p.key))
        srcs.sort(key=lambda p: p.key)
        dsts.sort(key=lambda p: p.key)
        ports = data.draw(
            st.none() | st.lists(st.sampled_from(PORTS), min_size=1, unique=True).map(sorted)
        )
        same_outputs(e, srcs, dsts, [], [], ports)


def test_outside_peers_and_classes_on_the_example() -> None:
    """Outside sources and destinations (the engine's answers, shared by both) and the
    policy classes of the example's pods, in both ipBlock modes."""
    from podnet.model.cluster import load_cluster
    from podnet.policy.ports import parse_ports

    for mode in ("match", "ignore"):
        e = Engine(load_cluster([EXAMPLE]), ipblock_pods=mode, hostnetwork_pods="node")
        pods = e.pods
        for src, dst in (("0.0.0.0/0", "shop/*"), ("shop/*", "203.0.113.0/24"), ("*", "*")):
            srcs, out_s = parse_selection(src, pods, "--from")
            dsts, out_d = parse_selection(dst, pods, "--to")
            same_outputs(e, srcs, dsts, out_s, out_d, parse_ports("53/UDP,8080/TCP,9090"))
        nets = ipblock_networks(e.cluster.policies) if mode == "match" else []
        assert class_numbers(pods, nets) == classify(pods, nets).class_of.tolist()
        assert isinstance(out_s, list) and all(isinstance(x, External) for x in out_s)


def test_grouped_rows_are_the_same() -> None:
    """Beyond 24 pods on an axis the table groups pods of one class: 30 replicas of three
    kinds, a policy that tells two of them apart, an ipBlock that cuts one kind in two."""
    docs: list[dict[str, Any]] = [namespace("web"), namespace("db", team="data")]
    for i in range(30):
        kind = ("api", "front", "cache")[i % 3]
        docs.append(
            pod(
                f"web/{kind}-{i}",
                labels={"app": kind},
                ports=[{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                ip=f"10.244.{i % 2}.{10 + i}",
            )
        )
    docs.append(pod("db/pg-0", labels={"app": "pg"}, ports=[{"containerPort": 5432}]))
    docs.append(
        policy(
            "web/api-in",
            {
                "podSelector": {"matchLabels": {"app": "api"}},
                "ingress": [
                    {"from": [{"podSelector": {"matchLabels": {"app": "front"}}}]},
                    {"from": [{"ipBlock": {"cidr": "10.244.1.0/24"}}], "ports": [{"port": "http"}]},
                ],
            },
        )
    )
    for mode in ("match", "ignore"):
        e = Engine(cluster(*docs), ipblock_pods=mode)
        assert len(e.pods) > human.GROUP_OVER
        same_outputs(e, e.pods, e.pods, [], [], None)


def test_question_size() -> None:
    e = Engine(cluster(namespace("a"), pod("a/x", ports=[{"containerPort": 80}]), pod("a/y")))
    assert question_cells(e.pods, e.pods, None) == 2  # only x declares a port
    assert question_cells(e.pods, e.pods, list(PORTS[:3])) == 12
    assert question_cells(e.pods, e.pods, None) <= SMALL_CELLS


def _modules(*argv: str) -> set[str]:
    code = (
        "import json, sys\nfrom podnet.cli.main import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "sys.stdout.flush()\nprint('\\n' + json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120
    )
    return set(json.loads(out.stderr.strip().splitlines()[-1]))


def test_analyze_takes_the_matrix_beyond_small_questions(tmp_path: Path) -> None:
    """The example's question is small (pair by pair, no numpy); the HTML report and a
    question of more than SMALL_CELLS cells take the matrix."""
    assert "podnet.policy.pair_analysis" in _modules("analyze", "-f", EXAMPLE, "-o", "json")
    html = _modules("analyze", "-f", EXAMPLE, "-o", "html")
    assert "numpy" in html and "podnet.policy.analysis" in html
    big = tmp_path / "big.yaml"
    big.write_text(
        "\n---\n".join(
            json.dumps(pod(f"default/p{i}", ports=[{"containerPort": 80 + i % 40}]))
            for i in range(60)
        )
    )
    # 60 sources x 60 destinations, each on its own port: 3,600 cells
    assert "numpy" in _modules("analyze", "-f", str(big), "-o", "summary")
