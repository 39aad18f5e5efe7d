"""Every example on https://kubernetes.io/docs/concepts/services-networking/network-policies/
(kubernetes/website content/en/docs/concepts/services-networking/network-policies.md and its
code samples under content/en/examples/service/networking/), applied to a small cluster, with
the verdicts the page's own prose states.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from podnet.testing import namespace, pod, policy

# --- "The NetworkPolicy resource": service/networking/networkpolicy.yaml ----------------------

TEST_NETWORK_POLICY = """
podSelector:
  matchLabels:
    role: db
policyTypes:
- Ingress
- Egress
ingress:
- from:
  - ipBlock:
      cidr: 172.17.0.0/16
      except:
      - 172.17.1.0/24
  - namespaceSelector:
      matchLabels:
        project: myproject
  - podSelector:
      matchLabels:
        role: frontend
  ports:
  - protocol: TCP
    port: 6379
egress:
- to:
  - ipBlock:
      cidr: 10.0.0.0/24
  ports:
  - protocol: TCP
    port: 5978
"""

RESOURCE_CLUSTER = [
    namespace("default"),
    namespace("myproject", project="myproject"),
    namespace("elsewhere"),
    pod("default/db", labels={"role": "db"}),
    pod("default/frontend", labels={"role": "frontend"}),
    pod("default/other", labels={"role": "other"}),
    pod("myproject/client", labels={"app": "anything"}),
    pod("elsewhere/frontend", labels={"role": "frontend"}),
    policy("default/test-network-policy", TEST_NETWORK_POLICY),
]

RESOURCE = [
    # 1. isolates role=db pods in the default namespace for both ingress and egress
    pytest.param("default/other", "default/db", "80/TCP", False, id="db-isolated-for-ingress"),
    pytest.param("default/db", "default/frontend", "80/TCP", False, id="db-isolated-for-egress"),
    pytest.param("default/frontend", "default/other", "80/TCP", True, id="other-pods-not-isolated"),
    # 2. allows connections to role=db on TCP 6379 from ...
    pytest.param("default/frontend", "default/db", "6379/TCP", True, id="from-frontend-in-default"),
    pytest.param(
        "myproject/client", "default/db", "6379/TCP", True, id="from-any-pod-in-project-myproject"
    ),
    pytest.param(
        "elsewhere/frontend", "default/db", "6379/TCP", False, id="not-frontend-of-other-namespace"
    ),
    pytest.param("default/other", "default/db", "6379/TCP", False, id="not-other-pods-of-default"),
    pytest.param("ext:172.17.0.0", "default/db", "6379/TCP", True, id="from-172.17.0.0"),
    pytest.param("ext:172.17.0.255", "default/db", "6379/TCP", True, id="from-172.17.0.255"),
    pytest.param("ext:172.17.2.0", "default/db", "6379/TCP", True, id="from-172.17.2.0"),
    pytest.param("ext:172.17.255.255", "default/db", "6379/TCP", True, id="from-172.17.255.255"),
    pytest.param(
        "ext:172.17.2.0/23", "default/db", "6379/TCP", True, id="from-range-outside-except"
    ),
    pytest.param(
        "ext:172.17.1.0", "default/db", "6379/TCP", False, id="not-from-except-172.17.1.0"
    ),
    pytest.param(
        "ext:172.17.1.255", "default/db", "6379/TCP", False, id="not-from-except-172.17.1.255"
    ),
    pytest.param(
        "ext:172.17.0.0/16", "default/db", "6379/TCP", False, id="not-from-whole-cidr-with-except"
    ),
    pytest.param("ext:172.16.0.1", "default/db", "6379/TCP", False, id="not-from-outside-cidr"),
    pytest.param("default/frontend", "default/db", "6380/TCP", False, id="only-port-6379"),
    pytest.param("default/frontend", "default/db", "6379/UDP", False, id="only-tcp"),
    # 3. allows connections from role=db to CIDR 10.0.0.0/24 on TCP 5978
    pytest.param("default/db", "ext:10.0.0.7", "5978/TCP", True, id="egress-to-10.0.0.7-5978"),
    pytest.param(
        "default/db", "ext:10.0.0.0/24", "5978/TCP", True, id="egress-to-whole-10.0.0.0/24"
    ),
    pytest.param("default/db", "ext:10.0.0.7", "5979/TCP", False, id="egress-only-5978"),
    pytest.param("default/db", "ext:10.0.1.7", "5978/TCP", False, id="egress-only-10.0.0.0/24"),
    pytest.param(
        "default/db", "default/frontend", "5978/TCP", False, id="egress-not-to-pods-outside-cidr"
    ),
]


@pytest.mark.parametrize(("src", "dst", "pp", "ok"), RESOURCE)
def test_networkpolicy_resource_example(
    check: Callable[..., None], src: str, dst: str, pp: str, ok: bool
) -> None:
    check(RESOURCE_CLUSTER, [(src, dst, pp, ok)])


# --- "Behavior of to and from selectors": the user=alice / role=client pair -------------------

AND_PEER = """
podSelector: {matchLabels: {app: server}}
ingress:
- from:
  - namespaceSelector:
      matchLabels:
        user: alice
    podSelector:
      matchLabels:
        role: client
"""
OR_PEERS = """
podSelector: {matchLabels: {app: server}}
ingress:
- from:
  - namespaceSelector:
      matchLabels:
        user: alice
  - podSelector:
      matchLabels:
        role: client
"""
ALICE_CLUSTER = [
    namespace("app"),
    namespace("alice", user="alice"),
    namespace("bob", user="bob"),
    pod("app/server", labels={"app": "server"}),
    pod("app/client", labels={"role": "client"}),
    pod("app/other"),
    pod("alice/client", labels={"role": "client"}),
    pod("alice/other"),
    pod("bob/client", labels={"role": "client"}),
]

SELECTORS = [
    # "a single from element allowing connections from Pods with the label role=client in
    # namespaces with the label user=alice"
    pytest.param(
        AND_PEER,
        {
            "alice/client": True,
            "alice/other": False,
            "app/client": False,
            "bob/client": False,
            "app/other": False,
        },
        id="one-element-AND",
    ),
    # "allows connections from Pods in the local Namespace with the label role=client, or
    # from any Pod in any namespace with the label user=alice"
    pytest.param(
        OR_PEERS,
        {
            "alice/client": True,
            "alice/other": True,
            "app/client": True,
            "bob/client": False,
            "app/other": False,
        },
        id="two-elements-OR",
    ),
]


@pytest.mark.parametrize(("spec", "expected"), SELECTORS)
def test_to_and_from_selectors(
    check: Callable[..., None], spec: str, expected: dict[str, bool]
) -> None:
    docs = [*ALICE_CLUSTER, policy("app/p", spec)]
    check(docs, [(src, "app/server", "80/TCP", ok) for src, ok in expected.items()])


# --- "Default policies" -----------------------------------------------------------------------

DENY_INGRESS = "podSelector: {}\npolicyTypes:\n- Ingress\n"
ALLOW_ALL_INGRESS = "podSelector: {}\ningress:\n- {}\npolicyTypes:\n- Ingress\n"
DENY_EGRESS = "podSelector: {}\npolicyTypes:\n- Egress\n"
ALLOW_ALL_EGRESS = "podSelector: {}\negress:\n- {}\npolicyTypes:\n- Egress\n"
DENY_ALL = "podSelector: {}\npolicyTypes:\n- Ingress\n- Egress\n"
RESTRICT_A = "podSelector: {matchLabels: {app: a}}\npolicyTypes: [Ingress, Egress]\ningress:\n- from: [{podSelector: {matchLabels: {app: b}}}]\negress:\n- to: [{podSelector: {matchLabels: {app: b}}}]\n"

DEFAULT_CLUSTER = [
    namespace("default"),
    namespace("other"),
    pod("default/a", labels={"app": "a"}),
    pod("default/b", labels={"app": "b"}),
    pod("other/c"),
]
EXT = "ext:198.51.100.10"

DEFAULTS = [
    pytest.param(
        [DENY_INGRESS],
        [
            ("other/c", "default/a", False),
            ("default/b", "default/a", False),
            (EXT, "default/a", False),
            # "This policy does not affect isolation for egress from any pod."
            ("default/a", "other/c", True),
            ("default/a", EXT, True),
            ("default/a", "other/c", True),
        ],
        id="default-deny-all-ingress",
    ),
    pytest.param(
        # "With this policy in place, no additional policy or policies can cause any incoming
        # connection to those pods to be denied."
        [ALLOW_ALL_INGRESS, DENY_INGRESS, RESTRICT_A],
        [
            ("other/c", "default/a", True),
            (EXT, "default/a", True),
            ("default/b", "default/a", True),
            ("default/a", "other/c", False),
        ],
        id="allow-all-ingress",
    ),
    pytest.param(
        [DENY_EGRESS],
        [
            ("default/a", "other/c", False),
            ("default/a", "default/b", False),
            ("default/a", EXT, False),
            # "This policy does not change the ingress isolation behavior of any pod."
            ("other/c", "default/a", True),
            (EXT, "default/a", True),
        ],
        id="default-deny-all-egress",
    ),
    pytest.param(
        [ALLOW_ALL_EGRESS, DENY_EGRESS, RESTRICT_A],
        [("default/a", "other/c", True), ("default/a", EXT, True), ("other/c", "default/a", False)],
        id="allow-all-egress",
    ),
    pytest.param(
        [DENY_ALL],
        [
            ("default/a", "other/c", False),
            ("other/c", "default/a", False),
            ("default/a", "default/b", False),
            ("default/a", EXT, False),
            (EXT, "default/b", False),
            ("other/c", EXT, True),
        ],
        id="default-deny-all-ingress-and-egress",
    ),
    pytest.param(
        [],
        [("default/a", "other/c", True), ("other/c", "default/a", True), (EXT, "default/a", True)],
        id="no-policies-all-allowed",
    ),
]


@pytest.mark.parametrize(("specs", "checks"), DEFAULTS)
def test_default_policies(
    check: Callable[..., None], specs: list[str], checks: list[tuple[str, str, bool]]
) -> None:
    docs = [*DEFAULT_CLUSTER, *(policy(f"default/p{i}", s) for i, s in enumerate(specs))]
    check(docs, [(s, d, pp, ok) for s, d, ok in checks for pp in ("80/TCP", "53/UDP", "9/SCTP")])


# --- "Network traffic filtering": TCP, UDP, SCTP ----------------------------------------------


@pytest.mark.parametrize("proto", ["TCP", "UDP", "SCTP"])
def test_layer4_protocols(check: Callable[..., None], proto: str) -> None:
    spec = {"podSelector": {}, "ingress": [{"ports": [{"protocol": proto, "port": 80}]}]}
    others = [p for p in ("TCP", "UDP", "SCTP") if p != proto]
    check(
        [*DEFAULT_CLUSTER, policy("default/l4", spec)],
        [("other/c", "default/a", f"80/{proto}", True)]
        + [("other/c", "default/a", f"80/{p}", False) for p in others],
    )


# --- "Targeting a range of ports": service/networking/networkpolicy-multiport-egress.yaml ------

MULTI_PORT_EGRESS = """
podSelector:
  matchLabels:
    role: db
policyTypes:
- Egress
egress:
- to:
  - ipBlock:
      cidr: 10.0.0.0/24
  ports:
  - protocol: TCP
    port: 32000
    endPort: 32768
"""

RANGE = [
    pytest.param("ext:10.0.0.5", "32000/TCP", True, id="first-port"),
    pytest.param("ext:10.0.0.5", "32384/TCP", True, id="middle-port"),
    pytest.param("ext:10.0.0.5", "32768/TCP", True, id="last-port"),
    pytest.param("ext:10.0.0.5", "31999/TCP", False, id="below-range"),
    pytest.param("ext:10.0.0.5", "32769/TCP", False, id="above-range"),
    pytest.param("ext:10.0.0.5", "32000/UDP", False, id="over-tcp-only"),
    pytest.param("ext:10.0.1.5", "32000/TCP", False, id="outside-cidr"),
    pytest.param("default/web", "32000/TCP", False, id="not-to-pods"),
]


@pytest.mark.parametrize(("dst", "pp", "ok"), RANGE)
def test_range_of_ports(check: Callable[..., None], dst: str, pp: str, ok: bool) -> None:
    docs = [
        namespace("default"),
        pod("default/db", labels={"role": "db"}),
        pod("default/web"),
        policy("default/multi-port-egress", MULTI_PORT_EGRESS),
    ]
    check(docs, [("default/db", dst, pp, ok)])


# --- "Targeting multiple namespaces by label" and "Targeting a Namespace by its name" ----------

EGRESS_NAMESPACES = """
podSelector:
  matchLabels:
    app: myapp
policyTypes:
- Egress
egress:
- to:
  - namespaceSelector:
      matchExpressions:
      - key: namespace
        operator: In
        values: ["frontend", "backend"]
"""
BY_NAME = """
podSelector:
  matchLabels:
    app: myapp
policyTypes:
- Egress
egress:
- to:
  - namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: backend
"""
NS_CLUSTER = [
    # kubectl label namespace frontend namespace=frontend; ... backend namespace=backend
    namespace("default"),
    namespace("frontend", namespace="frontend"),
    namespace("backend", namespace="backend"),
    namespace("ops"),
    pod("default/myapp", labels={"app": "myapp"}),
    pod("default/peer"),
    pod("frontend/web"),
    pod("backend/api"),
    pod("ops/tool"),
]

NAMESPACES = [
    pytest.param(
        EGRESS_NAMESPACES,
        {"frontend/web": True, "backend/api": True, "ops/tool": False, "default/peer": False},
        id="multiple-namespaces-by-label",
    ),
    pytest.param(
        BY_NAME,
        {"backend/api": True, "frontend/web": False, "ops/tool": False, "default/peer": False},
        id="namespace-by-its-name",
    ),
]


@pytest.mark.parametrize(("spec", "expected"), NAMESPACES)
def test_targeting_namespaces(
    check: Callable[..., None], spec: str, expected: dict[str, bool]
) -> None:
    docs = [*NS_CLUSTER, policy("default/egress-namespaces", spec)]
    check(docs, [("default/myapp", dst, "80/TCP", ok) for dst, ok in expected.items()])


# --- "NetworkPolicy and hostNetwork pods" and the exceptions of the introduction ---------------


def _node(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


HOST_CLUSTER = [
    _node("node-1"),
    _node("node-2"),
    namespace("default"),
    pod("default/server", labels={"app": "server"}, node="node-1"),
    pod("default/client", labels={"role": "client"}, node="node-2"),
    pod("default/agent", labels={"role": "client"}, node="node-2", host_network=True),
    pod("default/local-agent", labels={"role": "client"}, node="node-1", host_network=True),
]
SERVER_FROM_CLIENTS = "podSelector: {matchLabels: {app: server}}\ningress:\n- from:\n  - podSelector:\n      matchLabels:\n        role: client\n"
SERVER_FROM_NODES = "podSelector: {matchLabels: {app: server}}\ningress:\n- from:\n  - ipBlock:\n      cidr: 172.18.0.0/16\n"
CLIENT_DENY = "podSelector: {matchLabels: {role: client}}\npolicyTypes: [Ingress, Egress]\n"

HOSTNET = [
    pytest.param(
        # "ignores hostNetwork pods when matching podSelector and namespaceSelector"
        SERVER_FROM_CLIENTS,
        [("default/client", "default/server", True), ("default/agent", "default/server", False)],
        id="podselector-rule-does-not-match-hostnetwork-pod",
    ),
    pytest.param(
        # "you can allow traffic from a hostNetwork Pod using an ipBlock rule" (its node's IP)
        SERVER_FROM_NODES,
        [("default/agent", "default/server", True), ("default/client", "default/server", False)],
        id="ipblock-rule-matches-hostnetwork-pod",
    ),
    pytest.param(
        # a hostNetwork pod selected by spec.podSelector is not isolated by it
        CLIENT_DENY,
        [
            ("default/agent", "default/server", True),
            ("default/server", "default/agent", True),
            ("default/client", "default/server", False),
        ],
        id="spec-podselector-does-not-isolate-hostnetwork-pod",
    ),
    pytest.param(
        # "traffic to and from the node where a Pod is running is always allowed"
        "podSelector: {}\npolicyTypes: [Ingress, Egress]\n",
        [
            ("default/local-agent", "default/server", True),
            ("default/server", "default/local-agent", True),
            ("default/agent", "default/server", False),
        ],
        id="own-node-always-allowed",
    ),
    pytest.param(
        # "a pod cannot block access to itself"
        "podSelector: {}\npolicyTypes: [Ingress, Egress]\n",
        [("default/server", "default/server", True), ("default/client", "default/client", True)],
        id="pod-cannot-block-itself",
    ),
]


@pytest.mark.parametrize(("spec", "checks"), HOSTNET)
def test_host_network_pods(
    check: Callable[..., None], spec: str, checks: list[tuple[str, str, bool]]
) -> None:
    check([*HOST_CLUSTER, policy("default/p", spec)], [(s, d, "80/TCP", ok) for s, d, ok in checks])
