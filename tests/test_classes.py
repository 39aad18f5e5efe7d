"""Pod classes keep only the labels some podSelector reads."""

from __future__ import annotations

import numpy as np
import pytest

from podnet.policy import matrix
from podnet.policy.classes import selected_label_keys
from podnet.policy.matrix import compute
from podnet.policy.ports import PortProto
from podnet.testing import engine, namespace, pod, policy


def test_labels_no_selector_reads_do_not_split_classes() -> None:
    docs = [
        namespace("db"),
        *(
            pod(f"db/pg-{i}", labels={"app": "pg", "statefulset.kubernetes.io/pod-name": f"pg-{i}"})
            for i in range(5)
        ),
        pod("db/cli", labels={"role": "client"}),
        policy(
            "db/pg",
            {
                "podSelector": {"matchLabels": {"app": "pg"}},
                "ingress": [
                    {
                        "from": [
                            {
                                "podSelector": {
                                    "matchExpressions": [{"key": "role", "operator": "Exists"}]
                                }
                            }
                        ]
                    }
                ],
            },
        ),
    ]
    e = engine(*docs)
    assert selected_label_keys(e.cluster.policies) == {"app", "role"}
    m = compute(e, [PortProto(5432, "TCP")], declared_only=False)
    assert m.allowed[0].shape == (2, 2)  # two policy classes; the report still sees six
    assert len(m.classes.reps) == 6
    dense = m.dense(0)
    for i, s in enumerate(e.pods):
        for j, d in enumerate(e.pods):
            assert bool(dense[i, j]) == e.allowed(s, d, PortProto(5432, "TCP"))


def test_port_matrices_kept_one_at_a_time_give_the_same_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = [
        namespace("a"),
        pod("a/web", labels={"app": "web"}, ports=[{"containerPort": 80}]),
        pod("a/db", labels={"app": "db"}, ports=[{"containerPort": 5432}]),
        policy("a/db", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [
            {"from": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": 5432}]}
        ]}),
    ]  # fmt: skip
    ports = [PortProto(80, "TCP"), PortProto(5432, "TCP")]
    e = engine(*docs)
    kept = compute(e, ports, declared_only=False)
    monkeypatch.setattr(matrix, "KEEP_ALL_BYTES", 0)
    lazy = compute(e, ports, declared_only=False)
    for k in (1, 0, 1, -1):
        assert np.array_equal(kept.dense(k), lazy.dense(k))
    assert len(lazy.allowed[:]) == 2
