"""NodeRuleset.origins: each rule of a pod's policy chain named as explain names it, in the
chain's order, also where one policy rule renders several nft rules (several ports, a named
port) — what `podnet trace` maps a traced rule handle to."""

from __future__ import annotations

from podnet.render.policy_nft import NodeRuleset
from podnet.testing import engine, pod, policy

DB = pod(
    "shop/db", labels={"app": "db"}, ports=[{"name": "pg", "containerPort": 5432}], node="node-1"
)
API = pod("shop/api", labels={"tier": "backend"}, node="node-1")


def test_origins_align_with_the_chain() -> None:
    e = engine(
        DB,
        API,
        policy(
            "shop/a",
            """
            podSelector: {matchLabels: {app: db}}
            ingress:
              - from: [{podSelector: {matchLabels: {tier: backend}}}]
                ports: [{port: 5432}, {port: pg}]
              - ports: [{port: 9000}]
            """,
        ),
        policy("shop/b", "podSelector: {}\ningress: [{from: [{podSelector: {}}]}]"),
    )
    db = e.by_key["shop/db"]
    ruleset = NodeRuleset(e, db.node, "c")
    chain = ruleset.pod_rules(db).ingress
    assert chain is not None
    origins = ruleset.origins(db, "ingress")
    assert len(origins) == len(chain[1])
    assert origins == [
        "hairpin",
        "shop/a ingress[0]",
        "shop/a ingress[0]",  # the named port pg: one more rule
        "shop/a ingress[1]",
        "shop/b ingress[0]",
        "default deny",
    ]


def test_egress_origins() -> None:
    e = engine(
        DB,
        API,
        policy(
            "shop/out",
            """
            podSelector: {matchLabels: {tier: backend}}
            policyTypes: [Egress]
            egress: [{to: [{podSelector: {matchLabels: {app: db}}}], ports: [{port: pg}]}]
            """,
        ),
    )
    api = e.by_key["shop/api"]
    ruleset = NodeRuleset(e, api.node, "c")
    chain = ruleset.pod_rules(api).egress
    assert chain is not None
    assert ruleset.origins(api, "egress") == ["hairpin", "shop/out egress[0]", "default deny"]
    assert len(chain[1]) == 3
