"""Pod classes keep only the labels some podSelector reads."""

from __future__ import annotations

from podnet.policy.classes import selected_label_keys
from podnet.policy.matrix import compute
from podnet.policy.ports import PortProto
from podnet.testing.builders import engine, namespace, pod, policy


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
