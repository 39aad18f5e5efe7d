"""NetworkPolicy semantics, one rule per case, with expectations taken from the specification:
the API reference (networking.k8s.io/v1 field comments), the concepts page
(https://kubernetes.io/docs/concepts/services-networking/network-policies/) and the upstream
e2e suite (kubernetes test/e2e/network/netpol), never from what the engine prints.

Namespaces used throughout: x {team: a}, y {team: b}, z {} (each also carries
kubernetes.io/metadata.name, set by the API server).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from podnet.model.errors import InputError
from podnet.policy.addresses import AddressSet
from podnet.policy.engine import External
from podnet.policy.ports import PortProto
from podnet.testing import engine, namespace, pod, policy

NS = [namespace("x", team="a"), namespace("y", team="b"), namespace("z")]
DENY_IN_X = policy("x/deny-in", {"podSelector": {}, "policyTypes": ["Ingress"]})
DENY_OUT_X = policy("x/deny-out", {"podSelector": {}, "policyTypes": ["Egress"]})

# A cluster of plain pods: x/a x/b x/c x/client, y/b y/client y/other, z/client.
PODS = [
    pod("x/a", labels={"pod": "a"}),
    pod("x/b", labels={"pod": "b"}),
    pod("x/c", labels={"pod": "c"}),
    pod("x/client", labels={"role": "client"}),
    pod("y/b", labels={"pod": "b"}),
    pod("y/client", labels={"role": "client"}),
    pod("y/other", labels={"role": "other"}),
    pod("z/client", labels={"role": "client"}),
]


def node_doc(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


def on_a(spec_ingress: list[dict[str, Any]]) -> dict[str, Any]:
    """A policy in x selecting pod=a for ingress with the given rules."""
    return policy(
        "x/on-a",
        {
            "podSelector": {"matchLabels": {"pod": "a"}},
            "policyTypes": ["Ingress"],
            "ingress": spec_ingress,
        },
    )


# --- isolation per direction; union; both ends ------------------------------------------------

ISOLATION = [
    pytest.param(
        [],
        [
            ("x/a", "y/b", "80/TCP", True),
            ("y/b", "x/a", "80/TCP", True),
            ("x/a", "ext:198.51.100.1", "443/TCP", True),
        ],
        id="no-policy-everything-open",
    ),
    pytest.param(
        [DENY_IN_X],
        [
            ("y/b", "x/a", "80/TCP", False),
            ("x/b", "x/a", "80/TCP", False),
            ("x/a", "y/b", "80/TCP", True),
        ],
        id="ingress-policy-isolates-ingress-only",
    ),
    pytest.param(
        [DENY_OUT_X],
        [
            ("x/a", "y/b", "80/TCP", False),
            ("x/a", "ext:198.51.100.1", "443/TCP", False),
            ("y/b", "x/a", "80/TCP", True),
        ],
        id="egress-policy-isolates-egress-only",
    ),
    pytest.param(
        [policy("x/p", {"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Ingress"]})],
        [("y/b", "x/a", "80/TCP", False), ("y/b", "x/b", "80/TCP", True)],
        id="only-selected-pods-are-isolated",
    ),
    pytest.param(
        [policy("y/deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})],
        [
            ("z/client", "x/a", "80/TCP", True),
            ("x/a", "z/client", "80/TCP", True),
            ("x/a", "y/b", "80/TCP", False),
        ],
        id="policy-selects-only-in-its-own-namespace",
    ),
    pytest.param(
        # policyTypes [Ingress]: the egress rules are present but the policy does not apply
        # to egress ("we say that such a policy applies to the pod for egress" needs Egress).
        [
            policy(
                "x/p",
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [{}],
                    "egress": [{"to": [{"ipBlock": {"cidr": "192.0.2.0/24"}}]}],
                },
            )
        ],
        [("x/a", "y/b", "80/TCP", True), ("x/a", "ext:198.51.100.1", "80/TCP", True)],
        id="egress-rules-ignored-when-policytypes-is-ingress",
    ),
    pytest.param(
        [
            policy(
                "x/p",
                {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [{}],
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}],
                },
            )
        ],
        [("y/b", "x/a", "80/TCP", True), ("ext:198.51.100.1", "x/a", "80/TCP", True)],
        id="ingress-rules-ignored-when-policytypes-is-egress",
    ),
    pytest.param(
        [
            on_a([{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]),
            policy(
                "x/on-a-2",
                {
                    "podSelector": {"matchLabels": {"pod": "a"}},
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "c"}}}]}],
                },
            ),
        ],
        [
            ("x/b", "x/a", "80/TCP", True),
            ("x/c", "x/a", "80/TCP", True),
            ("x/client", "x/a", "80/TCP", False),
        ],
        id="union-of-all-selecting-policies",
    ),
    pytest.param(
        [
            on_a(
                [
                    {
                        "from": [{"podSelector": {"matchLabels": {"pod": "b"}}}],
                        "ports": [{"port": 80}],
                    },
                    {
                        "from": [{"podSelector": {"matchLabels": {"pod": "c"}}}],
                        "ports": [{"port": 81}],
                    },
                ]
            )
        ],
        [
            ("x/b", "x/a", "80/TCP", True),
            ("x/b", "x/a", "81/TCP", False),
            ("x/c", "x/a", "81/TCP", True),
            ("x/c", "x/a", "80/TCP", False),
        ],
        id="union-of-rules-each-rule-from-and-ports-together",
    ),
    pytest.param(
        # e2e "should enforce multiple ingress policies with ingress allow-all policy taking precedence"
        [DENY_IN_X, policy("x/allow", {"podSelector": {}, "ingress": [{}]})],
        [("y/b", "x/a", "81/TCP", True), ("x/b", "x/a", "9999/UDP", True)],
        id="allow-all-policy-wins-over-deny-all",
    ),
    pytest.param(
        # A policy that selects other pods does not widen pod a's allowances.
        [
            on_a([{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]),
            policy("x/open-c", {"podSelector": {"matchLabels": {"pod": "c"}}, "ingress": [{}]}),
        ],
        [("x/client", "x/a", "80/TCP", False), ("x/client", "x/c", "80/TCP", True)],
        id="allowances-of-other-pods-do-not-apply",
    ),
    pytest.param(
        # "both the egress policy on the source pod and the ingress policy on the destination
        # pod need to allow the connection" (e2e: denying egress on the client side even if
        # the server explicitly allows it).
        [
            policy(
                "x/a-out",
                {
                    "podSelector": {"matchLabels": {"pod": "a"}},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [
                                {
                                    "namespaceSelector": {"matchLabels": {"team": "b"}},
                                    "podSelector": {"matchLabels": {"pod": "b"}},
                                }
                            ]
                        }
                    ],
                },
            ),
            policy(
                "y/in",
                {
                    "podSelector": {"matchLabels": {"role": "client"}},
                    "ingress": [
                        {
                            "from": [
                                {
                                    "namespaceSelector": {"matchLabels": {"team": "a"}},
                                    "podSelector": {"matchLabels": {"pod": "a"}},
                                }
                            ]
                        }
                    ],
                },
            ),
        ],
        [
            ("x/a", "y/b", "80/TCP", True),  # egress allows, y/b not isolated for ingress
            ("x/a", "y/client", "80/TCP", False),  # ingress allows, egress does not
            ("x/b", "y/client", "80/TCP", False),  # egress open, ingress does not allow x/b
            ("x/a", "z/client", "80/TCP", False),
            ("y/other", "y/client", "80/TCP", False),
        ],
        id="source-egress-and-destination-ingress-both-needed",
    ),
    pytest.param(
        [DENY_OUT_X, policy("y/open", {"podSelector": {}, "ingress": [{}]})],
        [("x/a", "y/b", "80/TCP", False), ("y/b", "x/a", "80/TCP", True)],
        id="open-ingress-does-not-override-denied-egress",
    ),
]


@pytest.mark.parametrize(("policies", "checks"), ISOLATION)
def test_isolation_and_union(
    check: Callable[..., None], policies: list[dict[str, Any]], checks: list
) -> None:
    check([*NS, *PODS, *policies], checks)


# --- peers ------------------------------------------------------------------------------------

PEERS = [
    pytest.param(
        [{"podSelector": {"matchLabels": {"role": "client"}}}],
        {"x/client": True, "y/client": False, "z/client": False, "x/b": False},
        id="podselector-peer-policy-namespace-only",
    ),
    pytest.param(
        [{"podSelector": {}}],
        {"x/b": True, "x/client": True, "y/b": False, "z/client": False},
        id="empty-podselector-peer-all-pods-of-own-namespace",
    ),
    pytest.param(
        [{"namespaceSelector": {"matchLabels": {"team": "b"}}}],
        {"y/b": True, "y/client": True, "y/other": True, "x/client": False, "z/client": False},
        id="namespaceselector-peer-all-pods-of-namespaces",
    ),
    pytest.param(
        [{"namespaceSelector": {}}],
        {"x/b": True, "y/other": True, "z/client": True, "ext:198.51.100.1": False},
        id="empty-namespaceselector-all-pods-not-outside",
    ),
    pytest.param(
        [
            {
                "namespaceSelector": {"matchLabels": {"team": "b"}},
                "podSelector": {"matchLabels": {"role": "client"}},
            }
        ],
        {"y/client": True, "y/other": False, "x/client": False, "z/client": False},
        id="namespace-and-pod-selector-in-one-peer-AND",
    ),
    pytest.param(
        [
            {"namespaceSelector": {"matchLabels": {"team": "b"}}},
            {"podSelector": {"matchLabels": {"role": "client"}}},
        ],
        {
            "y/client": True,
            "y/other": True,
            "y/b": True,
            "x/client": True,
            "x/b": False,
            "z/client": False,
        },
        id="namespace-and-pod-selector-as-two-peers-OR",
    ),
    pytest.param(
        [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "client"}}}],
        {"x/client": True, "y/client": True, "z/client": True, "y/other": False, "x/b": False},
        id="empty-namespaceselector-with-podselector-any-namespace",
    ),
    pytest.param(
        [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "z"}}}],
        {"z/client": True, "y/client": False, "x/client": False},
        id="namespace-selected-by-metadata-name-label",
    ),
    pytest.param(
        [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "w"}}}],
        {"w/undeclared": True, "z/client": False},
        id="undeclared-namespace-also-carries-metadata-name",
    ),
    pytest.param(
        [
            {
                "namespaceSelector": {
                    "matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]
                }
            }
        ],
        {"y/b": True, "z/client": True, "x/client": False},
        id="namespace-notin-matches-namespaces-lacking-the-key",
    ),
    pytest.param(
        [{"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]}}],
        {"y/b": True, "x/client": True, "z/client": False},
        id="namespace-exists",
    ),
    pytest.param(
        [
            {
                "namespaceSelector": {
                    "matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]
                }
            }
        ],
        {"z/client": True, "y/b": False, "x/client": False},
        id="namespace-doesnotexist",
    ),
]


@pytest.mark.parametrize(("peers", "expected"), PEERS)
def test_peer_selection(
    check: Callable[..., None], peers: list[dict[str, Any]], expected: dict[str, bool]
) -> None:
    docs = [*NS, *PODS, pod("w/undeclared"), on_a([{"from": peers}])]
    check(docs, [(src, "x/a", "80/TCP", ok) for src, ok in expected.items()])


# Labels of the peers: t1 {tier: web}, t2 {tier: db}, t3 {} (no tier), t4 {tier: cache, env: prod}.
TIERS = [
    pod("x/t1", labels={"tier": "web"}),
    pod("x/t2", labels={"tier": "db"}),
    pod("x/t3", labels={}),
    pod("x/t4", labels={"tier": "cache", "env": "prod"}),
]

EXPRESSIONS = [
    pytest.param(
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "db"]}]},
        "t1 t2",
        id="In",
    ),
    pytest.param(
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]},
        "t2 t3 t4",
        id="NotIn-matches-pods-lacking-the-key",
    ),
    pytest.param(
        {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, "t1 t2 t4", id="Exists"
    ),
    pytest.param(
        {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, "t3", id="DoesNotExist"
    ),
    pytest.param(
        {
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["cache", "db"]},
                {"key": "env", "operator": "Exists"},
            ]
        },
        "t4",
        id="expressions-are-ANDed",
    ),
    pytest.param(
        {
            "matchLabels": {"tier": "db"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["db", "web"]}],
        },
        "t2",
        id="matchLabels-and-matchExpressions-ANDed",
    ),
    pytest.param(
        {"matchLabels": {"tier": "web", "env": "prod"}}, "", id="matchLabels-all-must-hold"
    ),
]


@pytest.mark.parametrize(("selector", "matching"), EXPRESSIONS)
def test_pod_selector_expressions(
    check: Callable[..., None], selector: dict[str, Any], matching: str
) -> None:
    chosen = set(matching.split())
    docs = [*NS, *PODS, *TIERS, on_a([{"from": [{"podSelector": selector}]}])]
    check(docs, [(f"x/{t}", "x/a", "80/TCP", t in chosen) for t in ("t1", "t2", "t3", "t4")])


def test_policy_podselector_expressions_choose_isolated_pods(check: Callable[..., None]) -> None:
    """spec.podSelector with NotIn: pods lacking the key are selected (and so isolated) too."""
    deny = policy(
        "x/deny",
        {
            "podSelector": {
                "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]
            },
            "policyTypes": ["Ingress"],
        },
    )
    check(
        [*NS, *TIERS, pod("y/src"), deny],
        [
            ("y/src", "x/t1", "80/TCP", True),
            ("y/src", "x/t2", "80/TCP", False),
            ("y/src", "x/t3", "80/TCP", False),
        ],
    )


# --- ipBlock ----------------------------------------------------------------------------------

# Pinned pod addresses: x/dst 10.244.1.10, y/in 10.244.2.5, y/out 10.244.2.9, z/far 10.244.3.7.
IP_PODS = [
    pod("x/dst", labels={"pod": "dst"}, ip="10.244.1.10"),
    pod("y/in", ip="10.244.2.5"),
    pod("y/out", ip="10.244.2.9"),
    pod("z/far", ip="10.244.3.7"),
]


def ingress_from(*peers: dict[str, Any]) -> dict[str, Any]:
    return policy(
        "x/in", {"podSelector": {"matchLabels": {"pod": "dst"}}, "ingress": [{"from": list(peers)}]}
    )


def egress_to(*peers: dict[str, Any], ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"to": list(peers)}
    if ports is not None:
        rule["ports"] = ports
    return policy(
        "x/out",
        {
            "podSelector": {"matchLabels": {"pod": "dst"}},
            "policyTypes": ["Egress"],
            "egress": [rule],
        },
    )


BLOCK_Y = {"ipBlock": {"cidr": "10.244.2.0/24", "except": ["10.244.2.8/29"]}}
DOC_RANGE = {"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.128/25"]}}

IPBLOCKS = [
    pytest.param(
        "match",
        [ingress_from(BLOCK_Y)],
        [
            ("y/in", "x/dst", "80/TCP", True),
            ("y/out", "x/dst", "80/TCP", False),
            ("z/far", "x/dst", "80/TCP", False),
        ],
        id="match-ipblock-matches-pod-ips-with-except",
    ),
    pytest.param(
        "ignore",
        [ingress_from(BLOCK_Y)],
        [("y/in", "x/dst", "80/TCP", False), ("y/out", "x/dst", "80/TCP", False)],
        id="ignore-ipblock-does-not-match-pod-ips",
    ),
    pytest.param(
        "match",
        [egress_to({"ipBlock": {"cidr": "10.244.2.5/32"}})],
        [("x/dst", "y/in", "80/TCP", True), ("x/dst", "y/out", "80/TCP", False)],
        id="match-egress-to-pod-by-slash-32",
    ),
    pytest.param(
        "ignore",
        [egress_to({"ipBlock": {"cidr": "10.244.2.5/32"}})],
        [("x/dst", "y/in", "80/TCP", False)],
        id="ignore-egress-to-pod-by-slash-32",
    ),
    *[
        pytest.param(
            mode,
            [ingress_from(DOC_RANGE)],
            [
                ("ext:203.0.113.7", "x/dst", "80/TCP", True),
                ("ext:203.0.113.127", "x/dst", "80/TCP", True),
                ("ext:203.0.113.128", "x/dst", "80/TCP", False),
                ("ext:203.0.113.0/25", "x/dst", "80/TCP", True),
                # an outside CIDR is allowed only if every address in it is
                ("ext:203.0.113.0/24", "x/dst", "80/TCP", False),
                ("ext:198.51.100.1", "x/dst", "80/TCP", False),
                ("y/in", "x/dst", "80/TCP", False),
            ],
            id=f"{mode}-ipblock-outside-addresses-with-except",
        )
        for mode in ("match", "ignore")
    ],
    *[
        pytest.param(
            mode,
            [egress_to({"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}})],
            [
                ("x/dst", "ext:198.51.100.1", "443/TCP", True),
                ("x/dst", "ext:10.1.2.3", "443/TCP", False),
                ("x/dst", "y/in", "443/TCP", False),
            ],
            id=f"{mode}-egress-internet-except-private",
        )
        for mode in ("match", "ignore")
    ],
    pytest.param(
        "match",
        [egress_to({"ipBlock": {"cidr": "0.0.0.0/0"}})],
        [("x/dst", "y/in", "80/TCP", True), ("x/dst", "ext:198.51.100.1", "80/TCP", True)],
        id="match-everything-block-includes-pods",
    ),
    pytest.param(
        "ignore",
        [egress_to({"ipBlock": {"cidr": "0.0.0.0/0"}})],
        [("x/dst", "y/in", "80/TCP", False), ("x/dst", "ext:198.51.100.1", "80/TCP", True)],
        id="ignore-everything-block-excludes-pods",
    ),
    pytest.param(
        "match",
        [
            ingress_from(
                {"ipBlock": {"cidr": "203.0.113.0/25"}}, {"ipBlock": {"cidr": "203.0.113.128/25"}}
            )
        ],
        [("ext:203.0.113.0/24", "x/dst", "80/TCP", True)],
        id="outside-cidr-covered-by-two-ipblocks-together",
    ),
    pytest.param(
        "match",
        [ingress_from({"podSelector": {}}, {"namespaceSelector": {}})],
        [("ext:198.51.100.1", "x/dst", "80/TCP", False), ("y/in", "x/dst", "80/TCP", True)],
        id="selectors-never-match-outside-addresses",
    ),
    pytest.param(
        "match",
        [],
        [
            ("ext:198.51.100.1", "x/dst", "80/TCP", True),
            ("x/dst", "ext:198.51.100.1", "80/TCP", True),
        ],
        id="outside-to-unisolated-pod-open",
    ),
    # ipBlock.cidr may be IPv6 ("2001:db8::/64"); an IPv6 block holds no IPv4 address.
    *[
        pytest.param(
            mode,
            [ingress_from({"ipBlock": {"cidr": cidr}}), egress_to({"ipBlock": {"cidr": cidr}})],
            [
                ("y/in", "x/dst", "80/TCP", False),
                ("ext:198.51.100.1", "x/dst", "80/TCP", False),
                ("x/dst", "y/in", "80/TCP", False),
                ("x/dst", "ext:198.51.100.1", "80/TCP", False),
            ],
            id=f"{mode}-ipv6-block-{cidr}-holds-no-ipv4-address",
        )
        for mode in ("match", "ignore")
        for cidr in ("::/0", "::/96")
    ],
    *[
        pytest.param(
            mode,
            [
                ingress_from(
                    {"ipBlock": {"cidr": "2001:db8::/32"}}, {"ipBlock": {"cidr": "10.244.2.0/24"}}
                )
            ],
            [
                ("y/in", "x/dst", "80/TCP", mode == "match"),
                ("z/far", "x/dst", "80/TCP", False),
                ("ext:198.51.100.1", "x/dst", "80/TCP", False),
            ],
            id=f"{mode}-ipv6-block-beside-ipv4-block",
        )
        for mode in ("match", "ignore")
    ],
]


@pytest.mark.parametrize(("mode", "policies", "checks"), IPBLOCKS)
def test_ipblock(
    check: Callable[..., None], mode: str, policies: list[dict[str, Any]], checks: list
) -> None:
    check([*NS, *IP_PODS, *policies], checks, ipblock_pods=mode)


# --- ports ------------------------------------------------------------------------------------

HTTP = {"name": "http", "containerPort": 8080, "protocol": "TCP"}
PORT_PODS = [
    pod(
        "x/a",
        labels={"pod": "a"},
        ports=[HTTP, {"name": "dns", "containerPort": 53, "protocol": "UDP"}],
    ),
    pod(
        "x/b9090",
        labels={"pod": "a"},
        ports=[{"name": "http", "containerPort": 9090, "protocol": "TCP"}],
    ),
    pod("x/none", labels={"pod": "a"}),
    pod("y/src", ports=[{"name": "http", "containerPort": 7777, "protocol": "TCP"}]),
]


def ports_in(ports: list[dict[str, Any]] | None) -> dict[str, Any]:
    rule: dict[str, Any] = {"from": [{"namespaceSelector": {}}]}
    if ports is not None:
        rule["ports"] = ports
    return on_a([rule])


PORTS = [
    pytest.param(
        [{"port": 80}],
        [("80/TCP", True), ("81/TCP", False), ("80/UDP", False), ("80/SCTP", False)],
        id="number-protocol-defaults-to-TCP",
    ),
    pytest.param(
        [{"protocol": "UDP", "port": 53}], [("53/UDP", True), ("53/TCP", False)], id="udp"
    ),
    pytest.param(
        # e2e: should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP'
        [{"protocol": "SCTP", "port": 80}],
        [("80/SCTP", True), ("80/TCP", False), ("80/UDP", False)],
        id="sctp-is-not-tcp",
    ),
    pytest.param(
        # "If this field is not provided, this matches all port names and numbers."
        [{"protocol": "UDP"}],
        [("1/UDP", True), ("53/UDP", True), ("65535/UDP", True), ("53/TCP", False)],
        id="protocol-only-entry-all-ports-of-protocol",
    ),
    pytest.param(
        [{"port": 32000, "endPort": 32768}],
        [
            ("31999/TCP", False),
            ("32000/TCP", True),
            ("32400/TCP", True),
            ("32768/TCP", True),
            ("32769/TCP", False),
            ("32000/UDP", False),
        ],
        id="endport-range-inclusive-edges",
    ),
    pytest.param(
        [{"port": 80, "endPort": 80}],
        [("80/TCP", True), ("81/TCP", False), ("79/TCP", False)],
        id="endport-equal-to-port",
    ),
    pytest.param(
        [{"port": 80}, {"protocol": "UDP", "port": 53}],
        [("80/TCP", True), ("53/UDP", True), ("53/TCP", False), ("80/UDP", False)],
        id="ports-list-is-ORed",
    ),
    pytest.param(
        None, [("1/TCP", True), ("65535/UDP", True), ("9/SCTP", True)], id="ports-absent-all-ports"
    ),
    pytest.param(
        [],
        [("1/TCP", True), ("65535/UDP", True), ("9/SCTP", True)],
        id="ports-empty-list-all-ports",
    ),
    pytest.param(
        [{"port": "http"}],
        [("8080/TCP", True), ("80/TCP", False), ("8080/UDP", False), ("7777/TCP", False)],
        id="named-port-resolves-on-destination",
    ),
    pytest.param(
        # The destination declares dns as UDP; a TCP (default) rule for dns matches nothing.
        [{"port": "dns"}],
        [("53/UDP", False), ("53/TCP", False)],
        id="named-port-protocol-must-match-container-port",
    ),
    pytest.param(
        [{"port": "dns", "protocol": "UDP"}],
        [("53/UDP", True), ("53/TCP", False)],
        id="named-port-udp",
    ),
    pytest.param(
        [{"port": "metrics"}],
        [("8080/TCP", False), ("9100/TCP", False)],
        id="named-port-not-declared-matches-nothing",
    ),
]


@pytest.mark.parametrize(("ports", "verdicts"), PORTS)
def test_ingress_ports(
    check: Callable[..., None], ports: list[dict[str, Any]] | None, verdicts: list[tuple[str, bool]]
) -> None:
    check([*NS, *PORT_PODS, ports_in(ports)], [("y/src", "x/a", pp, ok) for pp, ok in verdicts])


def test_named_port_same_name_different_numbers_per_pod(check: Callable[..., None]) -> None:
    check(
        [*NS, *PORT_PODS, ports_in([{"port": "http"}])],
        [
            ("y/src", "x/a", "8080/TCP", True),
            ("y/src", "x/a", "9090/TCP", False),
            ("y/src", "x/b9090", "9090/TCP", True),
            ("y/src", "x/b9090", "8080/TCP", False),
            ("y/src", "x/none", "8080/TCP", False),
        ],
    )


def test_named_port_declared_by_two_containers_matches_either(check: Callable[..., None]) -> None:
    two = pod("x/two", labels={"pod": "a"})
    two["spec"]["containers"] = [
        {"name": "c1", "image": "x", "ports": [{"name": "http", "containerPort": 8080}]},
        {"name": "c2", "image": "x", "ports": [{"name": "http", "containerPort": 9090}]},
    ]
    check(
        [*NS, two, pod("y/src"), ports_in([{"port": "http"}])],
        [
            ("y/src", "x/two", "8080/TCP", True),
            ("y/src", "x/two", "9090/TCP", True),
            ("y/src", "x/two", "80/TCP", False),
        ],
    )


NAMED_EGRESS_PODS = [
    pod("x/src", labels={"pod": "src"}, ports=[{"name": "http", "containerPort": 7777}]),
    pod("y/a", ports=[HTTP]),
    pod("y/b", ports=[{"name": "http", "containerPort": 9090}]),
    pod("y/c"),
]


def test_named_port_egress_resolves_against_destination(check: Callable[..., None]) -> None:
    """e2e "should allow egress access on one named port": the name is looked up on the
    destination pod's containerPorts, not on the source that carries the policy."""
    out = policy(
        "x/out",
        {
            "podSelector": {"matchLabels": {"pod": "src"}},
            "policyTypes": ["Egress"],
            "egress": [{"ports": [{"port": "http"}]}],
        },
    )
    check(
        [*NS, *NAMED_EGRESS_PODS, out],
        [
            ("x/src", "y/a", "8080/TCP", True),
            ("x/src", "y/a", "9090/TCP", False),
            ("x/src", "y/b", "9090/TCP", True),
            ("x/src", "y/b", "8080/TCP", False),
            ("x/src", "y/c", "7777/TCP", False),
            ("x/src", "y/c", "8080/TCP", False),
            # outside addresses have no container ports: a named port never matches them
            ("x/src", "ext:198.51.100.1", "8080/TCP", False),
            ("x/src", "ext:198.51.100.1", "7777/TCP", False),
        ],
    )


def test_named_port_ingress_from_outside_resolves_on_destination(
    check: Callable[..., None],
) -> None:
    """Ingress from an outside address: the destination is a pod, so the name resolves."""
    check(
        [
            *NS,
            *PORT_PODS,
            on_a(
                [{"from": [{"ipBlock": {"cidr": "198.51.100.0/24"}}], "ports": [{"port": "http"}]}]
            ),
        ],
        [
            ("ext:198.51.100.7", "x/a", "8080/TCP", True),
            ("ext:198.51.100.7", "x/a", "80/TCP", False),
            ("ext:198.51.100.7", "x/b9090", "9090/TCP", True),
            ("ext:198.51.100.7", "x/none", "8080/TCP", False),
        ],
    )


def test_numeric_egress_port_to_outside(check: Callable[..., None]) -> None:
    out = egress_to({"ipBlock": {"cidr": "198.51.100.0/24"}}, ports=[{"port": 443}])
    check(
        [*NS, *IP_PODS, out],
        [
            ("x/dst", "ext:198.51.100.9", "443/TCP", True),
            ("x/dst", "ext:198.51.100.9", "80/TCP", False),
            ("x/dst", "ext:192.0.2.1", "443/TCP", False),
        ],
    )


# --- empty versus absent ----------------------------------------------------------------------

EMPTY_ABSENT = [
    pytest.param(
        {"podSelector": {}, "policyTypes": ["Ingress"]},
        [("y/b", "x/a", "80/TCP", False), ("x/a", "y/b", "80/TCP", True)],
        id="ingress-absent-with-policytypes-Ingress-denies-all",
    ),
    pytest.param(
        # "If this field is empty then this NetworkPolicy does not allow any traffic"
        {"podSelector": {}, "ingress": []},
        [
            ("y/b", "x/a", "80/TCP", False),
            ("ext:198.51.100.1", "x/a", "80/TCP", False),
            ("x/a", "y/b", "80/TCP", True),
        ],
        id="ingress-empty-list-denies-all",
    ),
    pytest.param(
        {"podSelector": {}, "ingress": [{}]},
        [("y/b", "x/a", "80/TCP", True), ("ext:198.51.100.1", "x/a", "5353/UDP", True)],
        id="ingress-one-empty-rule-allows-all",
    ),
    pytest.param(
        # "If this field is empty or missing, this rule matches all sources"
        {"podSelector": {}, "ingress": [{"from": [], "ports": [{"port": 80}]}]},
        [
            ("y/b", "x/a", "80/TCP", True),
            ("ext:198.51.100.1", "x/a", "80/TCP", True),
            ("y/b", "x/a", "81/TCP", False),
        ],
        id="from-empty-list-all-sources",
    ),
    pytest.param(
        {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]},
        [("z/client", "x/a", "80/TCP", True), ("z/client", "x/a", "81/TCP", False)],
        id="from-absent-all-sources",
    ),
    pytest.param(
        # SetDefaults_NetworkPolicySpec: Egress only if len(egress) != 0, so `egress: []`
        # alone makes an ingress-only deny-all policy.
        {"podSelector": {}, "egress": []},
        [
            ("y/b", "x/a", "80/TCP", False),
            ("x/a", "y/b", "80/TCP", True),
            ("x/a", "ext:198.51.100.1", "80/TCP", True),
        ],
        id="egress-empty-list-without-policytypes-is-ingress-only",
    ),
    pytest.param(
        # "all policies (whether or not they contain an ingress section) are assumed to affect
        # ingress": egress rules without policyTypes isolate ingress too.
        {"podSelector": {}, "egress": [{}]},
        [("y/b", "x/a", "80/TCP", False), ("x/a", "y/b", "80/TCP", True)],
        id="egress-rules-without-policytypes-also-isolate-ingress",
    ),
    pytest.param(
        {
            "podSelector": {},
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"team": "b"}}}]}],
        },
        [
            ("x/a", "y/b", "80/TCP", True),
            ("x/a", "z/client", "80/TCP", False),
            ("y/b", "x/a", "80/TCP", False),
        ],
        id="egress-rules-without-policytypes-isolate-both",
    ),
    pytest.param(
        {"podSelector": {}, "policyTypes": ["Egress"]},
        [
            ("x/a", "y/b", "80/TCP", False),
            ("x/a", "ext:198.51.100.1", "53/UDP", False),
            ("y/b", "x/a", "80/TCP", True),
        ],
        id="policytypes-Egress-without-rules-denies-all-egress",
    ),
    pytest.param(
        {"podSelector": {}, "policyTypes": ["Egress"], "egress": []},
        [("x/a", "y/b", "80/TCP", False), ("y/b", "x/a", "80/TCP", True)],
        id="policytypes-Egress-with-empty-list-denies-all-egress",
    ),
    pytest.param(
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [], "ports": [{"protocol": "UDP", "port": 53}]}],
        },
        [
            ("x/a", "ext:198.51.100.1", "53/UDP", True),
            ("x/a", "y/b", "53/UDP", True),
            ("x/a", "y/b", "80/TCP", False),
        ],
        id="to-empty-list-all-destinations",
    ),
    pytest.param(
        {"policyTypes": ["Ingress"]},
        [("y/b", "x/a", "80/TCP", False), ("y/b", "x/client", "80/TCP", False)],
        id="podselector-absent-selects-all-pods",
    ),
    pytest.param(
        {"podSelector": {}, "policyTypes": [], "ingress": [{"from": [{"podSelector": {}}]}]},
        [
            ("x/b", "x/a", "80/TCP", True),
            ("y/b", "x/a", "80/TCP", False),
            ("x/a", "y/b", "80/TCP", True),
        ],
        id="policytypes-empty-list-defaults-like-absent",
    ),
]


@pytest.mark.parametrize(("spec", "checks"), EMPTY_ABSENT)
def test_empty_versus_absent(
    check: Callable[..., None], spec: dict[str, Any], checks: list
) -> None:
    check([*NS, *PODS, policy("x/p", spec)], checks)


@pytest.mark.parametrize(
    "peer",
    [
        pytest.param({}, id="empty-peer-must-specify-a-peer"),
        pytest.param(
            {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}, id="ipblock-with-selector"
        ),
    ],
)
def test_invalid_peer_is_rejected(peer: dict[str, Any]) -> None:
    """The API server rejects these ("must specify a peer", "may not specify both ipBlock and
    another peer"), so `from: [{}]` never means "everyone"."""
    with pytest.raises(InputError):
        engine(*NS, *PODS, on_a([{"from": [peer]}]))


# --- hostNetwork pods, the node, and the pod itself -------------------------------------------

HOST_PODS = [
    node_doc("node-1"),
    node_doc("node-2"),
    pod("x/a", labels={"pod": "a"}, node="node-1"),
    pod("x/b", labels={"pod": "b"}, node="node-2"),
    pod("x/cl", labels={"role": "client"}, node="node-2"),
    pod("x/h1", labels={"role": "client"}, node="node-1", host_network=True),
    pod("x/h2", labels={"role": "client"}, node="node-2", host_network=True),
    pod("y/c", labels={"role": "client"}, node="node-2"),
]
DENY_ALL_X = policy("x/deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})

HOSTNET = [
    pytest.param(
        [DENY_ALL_X],
        [
            # "traffic to and from the node where a Pod is running is always allowed"
            ("x/h1", "x/a", "80/TCP", True),
            ("x/a", "x/h1", "80/TCP", True),
            ("x/h2", "x/a", "80/TCP", False),
            ("x/a", "x/h2", "80/TCP", False),
            ("x/b", "x/h2", "80/TCP", True),
            ("x/h2", "x/b", "80/TCP", True),
            ("x/b", "x/h1", "80/TCP", False),
        ],
        id="own-node-always-allowed-other-node-is-not",
    ),
    pytest.param(
        [DENY_ALL_X],
        [
            ("y/c", "x/h2", "80/TCP", True),
            ("x/h2", "y/c", "80/TCP", True),
            ("x/h1", "x/h2", "80/TCP", True),
        ],
        id="hostnetwork-pods-never-selected-by-policy",
    ),
    pytest.param(
        [on_a([{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}])],
        [("x/cl", "x/a", "80/TCP", True), ("x/h2", "x/a", "80/TCP", False)],
        id="podselector-peer-ignores-hostnetwork-pods",
    ),
    pytest.param(
        [on_a([{"from": [{"namespaceSelector": {}}]}])],
        [("y/c", "x/a", "80/TCP", True), ("x/h2", "x/a", "80/TCP", False)],
        id="namespaceselector-peer-ignores-hostnetwork-pods",
    ),
    pytest.param(
        # "you can allow traffic from a hostNetwork Pod using an ipBlock rule" (node network
        # 172.18.0.0/16 is podnet's documented node address range)
        [on_a([{"from": [{"ipBlock": {"cidr": "172.18.0.0/16"}}]}])],
        [("x/h2", "x/a", "80/TCP", True), ("x/cl", "x/a", "80/TCP", False)],
        id="ipblock-of-node-addresses-admits-hostnetwork-pod",
    ),
]


@pytest.mark.parametrize(("policies", "checks"), HOSTNET)
def test_host_network_and_node(
    check: Callable[..., None], policies: list[dict[str, Any]], checks: list
) -> None:
    check([*NS, *HOST_PODS, *policies], checks)


@pytest.mark.parametrize("pp", ["80/TCP", "53/UDP", "9/SCTP", "65535/TCP"])
@pytest.mark.parametrize("who", ["x/a", "x/h1"])
def test_pod_always_reaches_itself(check: Callable[..., None], who: str, pp: str) -> None:
    """ "a pod cannot block access to itself" (upstream: reachability.AllowLoopback)."""
    check([*NS, *HOST_PODS, DENY_ALL_X], [(who, who, pp, True)])


# --- explain ----------------------------------------------------------------------------------


def test_explain_names_selecting_policies_and_admitting_rule() -> None:
    e = engine(
        *NS,
        *PODS,
        on_a([{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]),
        policy("x/deny-in", {"podSelector": {}, "policyTypes": ["Ingress"]}),
        policy("x/other", {"podSelector": {"matchLabels": {"pod": "c"}}, "ingress": [{}]}),
    )
    v = e.explain(e.by_key["x/b"], e.by_key["x/a"], PortProto(80, "TCP"))
    assert v.allowed
    assert v.ingress is not None and v.ingress.isolated
    assert sorted(v.ingress.policies) == ["x/deny-in", "x/on-a"]
    assert any(a.startswith("x/on-a ingress[0]") for a in v.ingress.admitted_by), (
        v.ingress.admitted_by
    )
    assert v.egress is not None and not v.egress.isolated and v.egress.policies == []


def test_explain_nearest_miss_names_namespace_selector_and_labels() -> None:
    e = engine(
        *NS, *PODS, on_a([{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}])
    )
    v = e.explain(e.by_key["y/b"], e.by_key["x/a"], PortProto(80, "TCP"))
    assert not v.allowed
    assert v.ingress is not None and v.ingress.isolated and not v.ingress.admitted_by
    assert [m.rule for m in v.ingress.misses] == ["x/on-a ingress[0]"]
    why = v.ingress.misses[0].why
    for needle in (
        "namespaceSelector",
        "team: a",
        "namespace y",
        "team: b",
        "kubernetes.io/metadata.name: y",
    ):
        assert needle in why, (needle, why)


def test_explain_port_miss_and_denial_without_rules() -> None:
    e = engine(*NS, *PODS, on_a([{"ports": [{"port": 443}]}]), DENY_OUT_X)
    v = e.explain(e.by_key["y/b"], e.by_key["x/a"], PortProto(80, "TCP"))
    assert not v.allowed
    assert v.ingress is not None and v.ingress.misses and "443" in v.ingress.misses[0].why
    v = e.explain(e.by_key["x/a"], e.by_key["y/b"], PortProto(80, "TCP"))
    assert not v.allowed and v.egress is not None and v.egress.isolated
    assert v.egress.policies == ["x/deny-out"] and not v.egress.admitted_by


def test_explain_outside_peer_and_loopback() -> None:
    e = engine(*NS, *PODS, DENY_ALL_X)
    ext = External("203.0.113.7/32", AddressSet.cidr("203.0.113.7/32"))
    v = e.explain(ext, e.by_key["x/a"], PortProto(80, "TCP"))
    assert not v.allowed and v.egress is None and v.ingress is not None and v.ingress.isolated
    v = e.explain(e.by_key["x/a"], e.by_key["x/a"], PortProto(80, "TCP"))
    assert v.allowed and v.reason


# --- upstream e2e truth tables (test/e2e/network/netpol/network_policy.go) --------------------
#
# The e2e model: namespaces x, y, z; pods a, b, c in each, labelled pod=<name>, each serving
# 80 and 81 over TCP, UDP and SCTP with container ports named serve-<port>-<protocol>.
# Loopback is ignored there (ignoreLoopback), so self pairs are left out here too.

E2E_PODS = [f"{ns}/{p}" for ns in "xyz" for p in "abc"]
E2E_PORTS = [
    {"name": f"serve-{n}-{proto.lower()}", "containerPort": n, "protocol": proto}
    for n in (80, 81)
    for proto in ("TCP", "UDP", "SCTP")
]
# Pinned addresses so that ipBlock cases can name them: x/a 10.244.0.10, x/b 10.244.0.11, ...
E2E_IP = {key: f"10.244.{i // 3}.{10 + i % 3}" for i, key in enumerate(E2E_PODS)}


def e2e_model() -> list[dict[str, Any]]:
    docs = [namespace(ns) for ns in "xyz"]
    docs += [pod(k, labels={"pod": k[2]}, ports=E2E_PORTS, ip=E2E_IP[k]) for k in E2E_PODS]
    return docs


class Reachability:
    """The upstream Reachability helper: a default, then Expect/ExpectPeer overrides."""

    def __init__(self, default: bool = True) -> None:
        self.m = {(s, d): default for s in E2E_PODS for d in E2E_PODS}

    def peer(self, src: str, dst: str, ok: bool) -> Reachability:
        """ExpectPeer: "" matches every pod, "x" a namespace, "x/a" one pod."""
        for s, d in self.m:
            if _peer_has(src, s) and _peer_has(dst, d):
                self.m[(s, d)] = ok
        return self

    def all_ingress(self, dst: str, ok: bool) -> Reachability:
        return self.peer("", dst, ok)

    def all_egress(self, src: str, ok: bool) -> Reachability:
        return self.peer(src, "", ok)


def _peer_has(peer: str, key: str) -> bool:
    return not peer or peer == key or peer == key.split("/")[0]


def sel(**labels: str) -> dict[str, Any]:
    return {"matchLabels": labels}


def meta(ns: str) -> dict[str, Any]:
    return sel(**{"kubernetes.io/metadata.name": ns})


def gen(
    name: str,
    pod_labels: dict[str, str],
    ingress: list | None = None,
    egress: list | None = None,
    ns: str = "x",
) -> dict[str, Any]:
    """GenNetworkPolicyWithNameAndPodMatchLabel + SetSpecIngressRules/SetSpecEgressRules:
    each Set* call adds its policy type, even with no rules."""
    spec: dict[str, Any] = {"podSelector": {"matchLabels": pod_labels}, "policyTypes": []}
    if ingress is not None:
        spec["ingress"] = ingress
        spec["policyTypes"].append("Ingress")
    if egress is not None:
        spec["egress"] = egress
        spec["policyTypes"].append("Egress")
    return policy(f"{ns}/{name}", spec)


NOT_IN_X = {
    "matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["x"]}
    ]
}

E2E = [
    pytest.param(
        [gen("deny-ingress", {}, ingress=[])],
        "80/TCP",
        Reachability().peer("", "x", False),
        id="default-deny-ingress",
    ),
    pytest.param(
        [gen("deny-all", {}, ingress=[], egress=[])],
        "80/TCP",
        Reachability().peer("", "x", False).peer("x", "", False),
        id="default-deny-all",
    ),
    pytest.param(
        [gen("x-a-allows-x-b", {"pod": "a"}, ingress=[{"from": [{"podSelector": sel(pod="b")}]}])],
        "80/TCP",
        Reachability().all_ingress("x/a", False).peer("x/b", "x/a", True),
        id="allow-from-pods-within-server-namespace-by-podselector",
    ),
    pytest.param(
        [
            gen("deny-all", {}, ingress=[]),
            gen(
                "allow-all-to-a",
                {"pod": "a"},
                ingress=[{"from": [{"podSelector": {}, "namespaceSelector": {}}]}],
            ),
        ],
        "80/TCP",
        Reachability().all_ingress("x/a", True).all_ingress("x/b", False).all_ingress("x/c", False),
        id="allow-ingress-traffic-for-a-target",
    ),
    pytest.param(
        [
            gen(
                "allow-from-another-ns",
                {"pod": "a"},
                ingress=[{"from": [{"namespaceSelector": {}}]}],
            )
        ],
        "80/TCP",
        Reachability(),
        id="allow-ingress-from-pods-in-all-namespaces",
    ),
    pytest.param(
        [
            gen(
                "allow-client-a-via-ns-selector",
                {"pod": "a"},
                ingress=[{"from": [{"namespaceSelector": meta("y")}]}],
            )
        ],
        "80/TCP",
        Reachability().peer("x", "x/a", False).peer("z", "x/a", False),
        id="allow-only-from-a-different-namespace-by-namespaceselector",
    ),
    pytest.param(
        [
            gen(
                "x-a-allows-x-b",
                {"pod": "a"},
                ingress=[
                    {
                        "from": [
                            {
                                "podSelector": {
                                    "matchExpressions": [
                                        {"key": "pod", "operator": "In", "values": ["b"]}
                                    ]
                                }
                            }
                        ]
                    }
                ],
            )
        ],
        "80/TCP",
        Reachability().all_ingress("x/a", False).peer("x/b", "x/a", True),
        id="podselector-with-matchexpressions",
    ),
    pytest.param(
        [
            gen(
                "allow-ns-y-match-selector",
                {"pod": "a"},
                ingress=[
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchExpressions": [
                                        {
                                            "key": "kubernetes.io/metadata.name",
                                            "operator": "In",
                                            "values": ["y"],
                                        }
                                    ]
                                }
                            }
                        ]
                    }
                ],
            )
        ],
        "80/TCP",
        Reachability().peer("x", "x/a", False).peer("z", "x/a", False),
        id="namespaceselector-with-matchexpressions",
    ),
    pytest.param(
        [
            gen(
                "allow-ns-y-match-selector",
                {"pod": "a"},
                ingress=[
                    {"from": [{"namespaceSelector": NOT_IN_X}, {"podSelector": sel(pod="b")}]}
                ],
            )
        ],
        "80/TCP",
        Reachability().peer("x/a", "x/a", False).peer("x/c", "x/a", False),
        id="podselector-or-namespaceselector",
    ),
    pytest.param(
        [
            gen(
                "allow-ns-y-podselector-and-nsselector",
                {"pod": "a"},
                ingress=[{"from": [{"namespaceSelector": NOT_IN_X, "podSelector": sel(pod="b")}]}],
            )
        ],
        "80/TCP",
        Reachability().all_ingress("x/a", False).peer("y/b", "x/a", True).peer("z/b", "x/a", True),
        id="podselector-and-namespaceselector",
    ),
    pytest.param(
        [
            gen(
                "allow-ns-y-z-pod-b-c",
                {"pod": "a"},
                ingress=[
                    {
                        "from": [
                            {
                                "namespaceSelector": NOT_IN_X,
                                "podSelector": {
                                    "matchExpressions": [
                                        {"key": "pod", "operator": "In", "values": ["b", "c"]}
                                    ]
                                },
                            }
                        ]
                    }
                ],
            )
        ],
        "80/TCP",
        Reachability().peer("x", "x/a", False).peer("y/a", "x/a", False).peer("z/a", "x/a", False),
        id="multiple-podselectors-and-namespaceselectors",
    ),
    pytest.param(
        [
            gen(
                "allow-ns-x-pod-b-c",
                {"pod": "a"},
                ingress=[{"from": [{"podSelector": sel(pod="b")}, {"podSelector": sel(pod="c")}]}],
            )
        ],
        "80/TCP",
        Reachability().all_ingress("x/a", False).peer("x/b", "x/a", True).peer("x/c", "x/a", True),
        id="any-podselectors",
    ),
    pytest.param(
        [
            gen(
                "allow-ns-y-pod-a",
                {"pod": "a"},
                ingress=[{"from": [{"namespaceSelector": meta("y"), "podSelector": sel(pod="a")}]}],
            )
        ],
        "80/TCP",
        Reachability().all_ingress("x/a", False).peer("y/a", "x/a", True),
        id="only-from-a-pod-in-a-different-namespace",
    ),
    *[
        pytest.param(
            [
                gen(
                    "allow-81",
                    {"pod": "a"},
                    ingress=[
                        {
                            "from": [{"namespaceSelector": meta("y")}],
                            "ports": [{"port": 81, "protocol": proto}],
                        }
                    ],
                )
            ],
            f"81/{proto}",
            Reachability().peer("x", "x/a", False).peer("z", "x/a", False),
            id=f"policy-based-on-ports-{proto}",
        )
        for proto in ("TCP", "UDP", "SCTP")
    ],
    pytest.param(
        [
            gen(
                "allow-81",
                {"pod": "a"},
                ingress=[
                    {
                        "from": [{"namespaceSelector": meta("y")}],
                        "ports": [{"port": 81, "protocol": "TCP"}],
                    }
                ],
            )
        ],
        "80/TCP",
        Reachability().all_ingress("x/a", False),
        id="stacked-policies-port-81-only-blocks-80",
    ),
    pytest.param(
        [
            gen(
                "allow-81",
                {"pod": "a"},
                ingress=[
                    {
                        "from": [{"namespaceSelector": meta("y")}],
                        "ports": [{"port": 81, "protocol": "TCP"}],
                    }
                ],
            ),
            gen(
                "allow-80",
                {"pod": "a"},
                ingress=[
                    {
                        "from": [{"namespaceSelector": meta("y")}],
                        "ports": [{"port": 80, "protocol": "TCP"}],
                    }
                ],
            ),
        ],
        "80/TCP",
        Reachability().peer("x", "x/a", False).peer("z", "x/a", False),
        id="stacked-policies-second-unblocks-80",
    ),
    pytest.param(
        [gen("allow-all", {}, ingress=[{}])], "81/TCP", Reachability(), id="allow-all-policy"
    ),
    pytest.param(
        [gen("allow-all", {}, ingress=[{"ports": [{"port": "serve-81-tcp"}]}])],
        "81/TCP",
        Reachability(),
        id="ingress-one-named-port-81",
    ),
    pytest.param(
        [gen("allow-all", {}, ingress=[{"ports": [{"port": "serve-81-tcp"}]}])],
        "80/TCP",
        Reachability().peer("", "x", False),
        id="ingress-one-named-port-blocks-80",
    ),
    pytest.param(
        [
            gen(
                "allow-80",
                {"pod": "a"},
                ingress=[
                    {
                        "from": [{"namespaceSelector": meta("y")}],
                        "ports": [{"port": "serve-80-tcp", "protocol": "TCP"}],
                    }
                ],
            )
        ],
        "80/TCP",
        Reachability().peer("x", "x/a", False).peer("z", "x/a", False),
        id="ingress-from-namespace-on-named-port",
    ),
    pytest.param(
        [
            gen(
                "allow-80",
                {"pod": "a"},
                ingress=[
                    {
                        "from": [{"namespaceSelector": meta("y")}],
                        "ports": [{"port": "serve-80-tcp", "protocol": "TCP"}],
                    }
                ],
            )
        ],
        "81/TCP",
        Reachability().all_ingress("x/a", False),
        id="ingress-from-namespace-on-named-port-blocks-81",
    ),
    pytest.param(
        [gen("allow-egress", {}, egress=[{"ports": [{"port": "serve-80-tcp"}]}])],
        "80/TCP",
        Reachability(),
        id="egress-one-named-port-80",
    ),
    pytest.param(
        [gen("allow-egress", {}, egress=[{"ports": [{"port": "serve-80-tcp"}]}])],
        "81/TCP",
        Reachability().peer("x", "", False),
        id="egress-one-named-port-blocks-81",
    ),
    pytest.param(
        [gen("deny-ingress-pod-a", {}, ingress=[{"from": [{"podSelector": {}}]}])],
        "80/TCP",
        Reachability().peer("y", "x", False).peer("z", "x", False),
        id="deny-ingress-from-pods-on-other-namespaces",
    ),
    pytest.param(
        [gen("deny-egress-pod-a", {"pod": "a"}, egress=[])],
        "80/TCP",
        Reachability().all_egress("x/a", False),
        id="deny-egress-by-podselector",
    ),
    pytest.param(
        [gen("deny-egress-ns-x", {}, egress=[])],
        "80/TCP",
        Reachability().peer("x", "", False),
        id="deny-egress-from-all-pods-in-namespace",
    ),
    *[
        pytest.param(
            [
                gen(
                    "allow-client-a",
                    {"pod": "a"},
                    ingress=[{"from": [{"podSelector": sel(pod="b")}]}],
                    egress=[{"ports": [{"port": 80}]}],
                )
            ],
            pp,
            reach,
            id=f"ingress-and-egress-together-{pp.split('/')[0]}",
        )
        for pp, reach in (
            ("80/TCP", Reachability().all_ingress("x/a", False).peer("x/b", "x/a", True)),
            (
                "81/TCP",
                Reachability()
                .all_ingress("x/a", False)
                .all_egress("x/a", False)
                .peer("x/b", "x/a", True),
            ),
        )
    ],
    pytest.param(
        [
            gen(
                "allow-to-ns-y-pod-a",
                {"pod": "a"},
                egress=[{"to": [{"namespaceSelector": meta("y"), "podSelector": sel(pod="a")}]}],
            ),
            gen(
                "allow-from-xa-on-ya",
                {"pod": "a"},
                ns="y",
                ingress=[{"from": [{"namespaceSelector": meta("x"), "podSelector": sel(pod="a")}]}],
            ),
            gen(
                "allow-from-xa-on-yb",
                {"pod": "b"},
                ns="y",
                ingress=[{"from": [{"namespaceSelector": meta("x"), "podSelector": sel(pod="a")}]}],
            ),
        ],
        "80/TCP",
        Reachability()
        .peer("x/a", "", False)
        .peer("", "y/a", False)
        .peer("x/a", "y/a", True)
        .peer("", "y/b", False),
        id="deny-egress-on-client-even-if-server-allows",
    ),
    pytest.param(
        [
            gen(
                "allow-to-ns-y-pod-a",
                {"pod": "a"},
                egress=[{"to": [{"namespaceSelector": meta("y"), "podSelector": sel(pod="a")}]}],
            )
        ],
        "80/TCP",
        Reachability().all_egress("x/a", False).peer("x/a", "y/a", True),
        id="egress-to-server-in-other-namespace-by-pod-and-namespace-selector",
    ),
    *[
        pytest.param(
            [
                gen(
                    "allow-ingress-by-proto",
                    {"pod": "a"},
                    ingress=[{"ports": [{"protocol": "TCP"}]}],
                )
            ],
            pp,
            reach,
            id=f"ingress-any-port-on-protocol-{pp.split('/')[1]}",
        )
        for pp, reach in (
            ("80/TCP", Reachability()),
            ("80/UDP", Reachability().peer("", "x/a", False)),
        )
    ],
    pytest.param(
        [gen("allow-ingress-port-80", {}, ingress=[{"ports": [{"port": 80}]}])],
        "81/TCP",
        Reachability().peer("", "x", False),
        id="multiple-ingress-policies-before-allow-all",
    ),
    pytest.param(
        [
            gen("allow-ingress-port-80", {}, ingress=[{"ports": [{"port": 80}]}]),
            gen("allow-ingress", {}, ingress=[{}]),
        ],
        "81/TCP",
        Reachability(),
        id="multiple-ingress-policies-allow-all-takes-precedence",
    ),
    pytest.param(
        [gen("allow-egress-port-80", {}, egress=[{"ports": [{"port": 80}]}])],
        "81/TCP",
        Reachability().peer("x", "", False),
        id="multiple-egress-policies-before-allow-all",
    ),
    pytest.param(
        [
            gen("allow-egress-port-80", {}, egress=[{"ports": [{"port": 80}]}]),
            gen("allow-egress", {}, egress=[{}]),
        ],
        "81/TCP",
        Reachability(),
        id="multiple-egress-policies-allow-all-takes-precedence",
    ),
    pytest.param(
        [
            gen(
                "allow-client-a-via-cidr",
                {"pod": "a"},
                egress=[{"to": [{"ipBlock": {"cidr": f"{E2E_IP['y/b']}/32"}}]}],
            )
        ],
        "80/TCP",
        Reachability().all_egress("x/a", False).peer("x/a", "y/b", True),
        id="egress-to-server-in-cidr-block",
    ),
    pytest.param(
        # upstream uses podA.IP/4; the network of 10.244.0.10/4 is 0.0.0.0/4
        [
            gen(
                "allow-client-a-via-cidr",
                {"pod": "a"},
                egress=[
                    {"to": [{"ipBlock": {"cidr": "0.0.0.0/4", "except": [f"{E2E_IP['x/b']}/32"]}}]}
                ],
            )
        ],
        "80/TCP",
        Reachability().peer("x/a", "x/b", False),
        id="except-clause-in-egress-cidr-block",
    ),
    pytest.param(
        # upstream then replaces the policy (same name) by one allowing only x/b's address
        [
            gen(
                "allow-client-a-via-cidr",
                {"pod": "a"},
                egress=[{"to": [{"ipBlock": {"cidr": f"{E2E_IP['x/b']}/32"}}]}],
            )
        ],
        "80/TCP",
        Reachability().all_egress("x/a", False).peer("x/a", "x/b", True),
        id="ip-overlapping-cidr-and-except-after-update",
    ),
    pytest.param(
        # not upstream: both policies at once; the union admits x/b through the second
        [
            gen(
                "allow-client-a-via-cidr",
                {"pod": "a"},
                egress=[
                    {"to": [{"ipBlock": {"cidr": "0.0.0.0/4", "except": [f"{E2E_IP['x/b']}/32"]}}]}
                ],
            ),
            gen(
                "allow-client-a-via-cidr-2",
                {"pod": "a"},
                egress=[{"to": [{"ipBlock": {"cidr": f"{E2E_IP['x/b']}/32"}}]}],
            ),
        ],
        "80/TCP",
        Reachability(),
        id="address-excepted-in-one-policy-allowed-by-another",
    ),
    pytest.param(
        [
            gen("allow-egress-for-target", {"pod": "a"}, egress=[{}]),
            gen("deny-ingress-via-label-selector", {"pod": "a"}, ingress=[]),
        ],
        "80/TCP",
        Reachability().all_ingress("x/a", False),
        id="ingress-and-egress-controlled-independently",
    ),
    pytest.param(
        [
            gen("deny-ingress", {}, ingress=[]),
            gen(
                "allow-only-sctp-81",
                {"pod": "a"},
                ingress=[{"ports": [{"port": 81, "protocol": "SCTP"}]}],
            ),
        ],
        "81/TCP",
        Reachability().peer("", "x", False),
        id="sctp-rule-not-treated-as-tcp",
    ),
    pytest.param(
        [
            gen(
                "allow-only-sctp-80",
                {"pod": "a"},
                ingress=[{"ports": [{"port": 80, "protocol": "SCTP"}]}],
            )
        ],
        "81/TCP",
        Reachability().all_ingress("x/a", False),
        id="sctp-rule-still-isolates",
    ),
    pytest.param(
        [
            gen(
                "allow-only-udp-81",
                {"pod": "a"},
                ingress=[{"ports": [{"port": 81, "protocol": "UDP"}]}],
            )
        ],
        "81/TCP",
        Reachability().all_ingress("x/a", False),
        id="udp-rule-does-not-allow-tcp",
    ),
    pytest.param(
        [gen("deny-ingress-via-label-selector", {"target": "isolated"}, ingress=[])],
        "80/TCP",
        Reachability(),
        id="policy-selecting-no-pod-changes-nothing",
    ),
    pytest.param(
        [
            gen(
                "allow-ns-y-match-selector-for-immutable-ns-label",
                {"pod": "a"},
                egress=[
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchExpressions": [
                                        {
                                            "key": "kubernetes.io/metadata.name",
                                            "operator": "NotIn",
                                            "values": ["y"],
                                        }
                                    ]
                                }
                            }
                        ]
                    }
                ],
            )
        ],
        "80/TCP",
        Reachability().peer("x/a", "y", False),
        id="namespaceselector-matchexpressions-default-ns-label-egress",
    ),
]


@pytest.mark.parametrize(("policies", "pp", "reach"), E2E)
def test_upstream_e2e_truth_table(
    policies: list[dict[str, Any]], pp: str, reach: Reachability
) -> None:
    e = engine(*e2e_model(), *policies)
    number, proto = pp.split("/")
    port = PortProto(int(number), proto)
    wrong = [
        f"{s} -> {d}: expected {ok}"
        for (s, d), ok in reach.m.items()
        if s != d and e.allowed(e.by_key[s], e.by_key[d], port) != ok
    ]
    assert not wrong, "\n".join(wrong)
