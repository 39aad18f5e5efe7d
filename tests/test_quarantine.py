"""Quarantine without root: a policy labelled podnet.io/quarantine wins over every allow in
the engine, the matrix and the rendered rules alike; the pod leaves its Services' ready
endpoints; the store change and its undo are one transaction each, and bad input changes
nothing."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_matrix_property import cluster_docs
from test_policy_nft import check_all_pairs, rulesets

from podnet.model.cluster import load_cluster
from podnet.model.errors import InputError
from podnet.model.quarantine_label import (
    QUARANTINE_LABEL,
    label_value,
    policy_body,
    policy_name,
)
from podnet.nftables import text as nft_text
from podnet.policy.engine import Engine
from podnet.policy.matrix import compute
from podnet.policy.ports import PortProto
from podnet.render.policy_nft import render_nodes
from podnet.render.policy_scope import affected
from podnet.state import endpoint_slices as es
from podnet.state.allocations import Allocations
from podnet.state.changes import store_cluster
from podnet.state.network import NetworkConfig
from podnet.state.placement import place
from podnet.state.quarantine_change import quarantine, release
from podnet.state.store import Store
from podnet.testing import engine, namespace, pod, policy, service

HTTP = PortProto(80, "TCP")
WEB = [{"name": "http", "containerPort": 80}]


def quarantined(docs: list[dict[str, Any]], key: str, keep: tuple[dict[str, Any], ...] = ()):
    """`docs` with `key` (ns/pod) labelled and its quarantine policy added, as the store
    change writes them."""
    ns, name = key.split("/")
    out = copy.deepcopy(docs)
    for d in out:
        m = d["metadata"]
        if d["kind"] == "Pod" and (m.get("namespace"), m["name"]) == (ns, name):
            m.setdefault("labels", {})[QUARANTINE_LABEL] = label_value(name)
    return [*out, policy_body(ns, name, keep)]


OPEN = [
    namespace("a"),
    namespace("dbg"),
    pod("a/web", labels={"app": "web"}, ports=WEB),
    pod("a/web2", labels={"app": "web"}, ports=WEB),
    pod("a/client", labels={"app": "client"}, ports=WEB),
    pod("dbg/tools", labels={"app": "tools"}, ports=WEB),
    # Allows that quarantine must override: everything in and out of the web pods.
    policy("a/allow-all", {"podSelector": {}, "ingress": [{}], "egress": [{}]}),
]


@pytest.mark.parametrize("docs", [OPEN, OPEN[:-1]], ids=["allowed-by-a-policy", "no-policy"])
def test_quarantine_denies_both_ways_whatever_else_allows(docs: list[dict[str, Any]]) -> None:
    e = engine(*quarantined(docs, "a/web"))
    web = e.by_key["a/web"]
    for other in e.pods:
        if other.key == "a/web":
            continue
        assert not e.allowed(other, web, HTTP), other.key
        assert not e.allowed(web, other, HTTP), other.key
    # Everyone else is as before.
    before = engine(*docs)
    for s in before.pods:
        for d in before.pods:
            if "a/web" not in (s.key, d.key):
                assert e.allowed(e.by_key[s.key], e.by_key[d.key], HTTP) == before.allowed(
                    s, d, HTTP
                )


def test_kept_path_lets_the_debug_pod_in_and_nothing_else() -> None:
    ip = engine(*OPEN).by_key["dbg/tools"].ip
    e = engine(*quarantined(OPEN, "a/web", ({"ipBlock": {"cidr": f"{ip}/32"}},)))
    web = e.by_key["a/web"]
    assert e.allowed(e.by_key["dbg/tools"], web, HTTP)
    assert not e.allowed(web, e.by_key["dbg/tools"], HTTP)  # ingress only
    assert not e.allowed(e.by_key["a/client"], web, HTTP)


def test_explain_names_the_quarantine_and_what_it_overrides() -> None:
    e = engine(*quarantined(OPEN, "a/web"))
    v = e.explain(e.by_key["a/client"], e.by_key["a/web"], HTTP)
    assert not v.allowed and v.ingress is not None
    assert v.ingress.policies == [f"a/{policy_name('web')}"]
    assert "quarantined" in v.ingress.note and "a/allow-all" in v.ingress.note


def test_a_long_pod_name_gets_a_label_value_that_fits() -> None:
    name = "x" * 70
    value = label_value(name)
    assert len(value) <= 63 and value != label_value("x" * 71)


QUARANTINE_PICK = st.integers(0, 8)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(docs=cluster_docs(), pick=QUARANTINE_PICK, keep=st.booleans())
def test_matrix_and_ruleset_agree_with_the_engine_under_quarantine(
    docs: list[dict[str, Any]], pick: int, keep: bool
) -> None:
    pods = [d for d in docs if d["kind"] == "Pod"]
    target = pods[pick % len(pods)]["metadata"]
    ns = target.get("namespace", "default")
    peers = ({"namespaceSelector": {}},) if keep else ()
    e = engine(*quarantined(docs, f"{ns}/{target['name']}", peers))
    ports = [HTTP, PortProto(53, "UDP"), PortProto(8080, "TCP")]
    m = compute(e, ports, declared_only=False)
    for k, pp in enumerate(ports):
        dense = m.dense(k)
        for i, s in enumerate(e.pods):
            for j, d in enumerate(e.pods):
                assert bool(dense[i, j]) == e.allowed(s, d, pp), (s.key, d.key, pp)
    assert not check_all_pairs(e, ports)


def test_only_the_quarantined_chain_resets_tcp() -> None:
    e = engine(*quarantined(OPEN, "a/web"), nodes=1)
    table = rulesets(e)["node-1"].table
    chains = {c.name: [nft_text.rule(r) for r in c.rules] for c in table.chains}
    resetting = [n for n, rules in chains.items() if any("tcp reset" in r for r in rules)]
    web_chains = {
        v.chain  # type: ignore[union-attr]
        for m in table.maps
        for ip, v in m.elements
        if str(ip) == e.by_key["a/web"].ip
    }
    assert set(resetting) == web_chains and len(web_chains) == 2  # ingress and egress
    for name in web_chains:
        rules = chains[name]
        # the reset (packets of connections already open), then the ICMP reject (new ones)
        assert "tcp flags & syn == 0" in rules[-2] and rules[-2].endswith("reject with tcp reset")
        assert rules[-1].endswith("reject with icmpx admin-prohibited")


def test_incremental_render_follows_quarantine_and_undo() -> None:
    """The scope of a change (render/policy_scope) covers what quarantine changes: the
    patched render equals a whole one, both ways."""
    plain = Engine(load_cluster_docs(OPEN))
    held = Engine(load_cluster_docs(quarantined(OPEN, "a/web")))
    for old, new in ((plain, held), (held, plain)):
        before = render_nodes(old, "t")
        scope = affected(old, new)
        whole = render_nodes(new, "t")
        if scope is None:
            continue
        reuse = {n: r.pods for n, r in before.items()}
        patched = render_nodes(new, "t", reuse=reuse, dirty=scope.pods)
        for node in whole:
            assert nft_text.replace(patched[node].table) == nft_text.replace(whole[node].table)


def load_cluster_docs(docs: list[dict[str, Any]]):
    from podnet.testing import cluster

    return cluster(*docs, nodes=2)


# --- endpoints ---------------------------------------------------------------------------


@pytest.mark.parametrize("publish", [False, True], ids=["ready-only", "publishNotReady"])
def test_a_quarantined_pod_leaves_the_ready_endpoints(publish: bool) -> None:
    svc = service("a/web", selector={"app": "web"}, publishNotReadyAddresses=publish)
    c = load_cluster_docs([*quarantined(OPEN, "a/web"), svc])
    pl = place(c)
    views = es.pod_views(c, pl.pod_ip, pl.pod_node, lambda p: True)
    slices, endpoints = es.desired(c, views)
    (sl,) = [s for s in slices if s.service_name == "web"]
    cond = {e.target_ref.name: e.conditions for e in sl.endpoints if e.target_ref}
    assert (cond["web"].ready, cond["web"].serving) == (False, False)
    assert (cond["web2"].ready, cond["web2"].serving) == (True, True)
    (ep,) = [e for e in endpoints if e.metadata.name == "web"]
    assert [a.ip for s in ep.subsets for a in s.addresses] == [pl.pod_ip[("a", "web2")]]


# --- the store change --------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "in.yaml"
    path.write_text(
        yaml.safe_dump_all([*OPEN, pod("a/host", ports=WEB, host_network=True, node="node-1")])
    )
    cluster = load_cluster([str(path)], node_count=2)
    net = NetworkConfig()
    placement = place(cluster, net, strict=True)
    with Store.open(tmp_path / "state") as s:
        store_cluster(s, cluster, placement, "c1", "host-gw", net)
        with s.transaction():
            Allocations.between({}, placement, cluster).record(s)
        yield s


def _bodies(s: Store) -> dict[tuple[str, str, str], dict[str, Any]]:
    out = {}
    for kind in ("Pod", "NetworkPolicy"):
        for o in s.list(kind):
            body = copy.deepcopy(o.body)
            body.get("metadata", {}).pop("resourceVersion", None)
            out[(kind, o.namespace or "", o.name)] = body
    return out


def test_quarantine_then_undo_is_exactly_as_before(store: Store) -> None:
    before = _bodies(store)
    quarantine(store, "a", "web")
    now = _bodies(store)
    assert now[("Pod", "a", "web")]["metadata"]["labels"][QUARANTINE_LABEL] == "web"
    pol = now[("NetworkPolicy", "a", "quarantine-web")]
    assert pol["metadata"]["labels"] == {QUARANTINE_LABEL: "web"}
    assert pol["spec"]["podSelector"] == {"matchLabels": {QUARANTINE_LABEL: "web"}}
    release(store, "a", "web")
    assert _bodies(store) == before


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (lambda s: quarantine(s, "a", "nope"), 'Pod "nope" not found in namespace a'),
        (lambda s: quarantine(s, "b", "web"), 'Pod "web" not found in namespace b'),
        (lambda s: release(s, "a", "web"), "not quarantined"),
        (lambda s: quarantine(s, "a", "host"), "spec.hostNetwork"),
        (
            lambda s: quarantine(s, "a", "web", ({"ipBlock": {"cidr": "10.0.0.0/33"}},)),
            "cidr",
        ),
    ],
    ids=["unknown-pod", "unknown-namespace", "undo-not-quarantined", "host-network", "bad-peer"],
)
def test_bad_input_changes_nothing(store: Store, step: Any, message: str) -> None:
    revision, before = store.revision(), _bodies(store)
    with pytest.raises(InputError) as err:
        step(store)
    assert message in str(err.value.problems[0])
    assert len(err.value.problems) == 1
    assert (store.revision(), _bodies(store)) == (revision, before)


def test_quarantine_twice_is_refused_and_changes_nothing(store: Store) -> None:
    quarantine(store, "a", "web")
    revision, before = store.revision(), _bodies(store)
    with pytest.raises(InputError, match="already quarantined"):
        quarantine(store, "a", "web")
    assert (store.revision(), _bodies(store)) == (revision, before)


def test_the_stored_quarantine_means_the_same_read_back(store: Store) -> None:
    from podnet.state.snapshot import snapshot

    quarantine(store, "a", "web")
    e = Engine(snapshot(store))
    assert not e.allowed(e.by_key["a/client"], e.by_key["a/web"], HTTP)
    assert e.allowed(e.by_key["a/client"], e.by_key["a/web2"], HTTP)
    assert np.array_equal(
        compute(e, [HTTP], declared_only=False).dense(0),
        np.array([[e.allowed(s, d, HTTP) for d in e.pods] for s in e.pods]),
    )


# --- --keep-ingress-from -----------------------------------------------------------------


def _runtime():
    from podnet.render.runtime import parse
    from podnet.testing import pod_entry, runtime_doc

    return parse(
        runtime_doc(
            "c",
            nodes=[{"name": "node-1", "ip": "172.18.0.2", "netns": "n1"}],
            pods=[
                pod_entry("dbg", "tools", "node-1", "10.244.0.9", "p1", {"c": []}),
                pod_entry(
                    "kube-system", "h", "node-1", "172.18.0.2", "n1", {"c": []}, host_network=True
                ),
            ],
        )
    )


@pytest.mark.parametrize(
    ("sel", "peers"),
    [
        ("dbg/tools", [{"ipBlock": {"cidr": "10.244.0.9/32"}}]),
        ("dbg/*", [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dbg"}}}]),
        ("203.0.113.7", [{"ipBlock": {"cidr": "203.0.113.7/32"}}]),
        (
            "dbg/tools,198.51.100.0/24",
            [{"ipBlock": {"cidr": "10.244.0.9/32"}}, {"ipBlock": {"cidr": "198.51.100.0/24"}}],
        ),
    ],
)
def test_keep_ingress_from_becomes_peers(sel: str, peers: list[dict[str, Any]]) -> None:
    from podnet.cli.quarantine import keep_peers

    assert list(keep_peers(sel, _runtime())) == peers


@pytest.mark.parametrize(
    ("sel", "message"),
    [
        ("dbg/nope", "pod 'dbg/nope' not found"),
        ("kube-system/h", "uses its node's network"),
        ("tools", "expected ns/pod, ns/* or an IP/CIDR"),
        ("10.0.0.300", "is not an IP address or CIDR"),
        ("2001:db8::1", "only IPv4 is modelled"),
    ],
)
def test_keep_ingress_from_bad_input(sel: str, message: str) -> None:
    from podnet.cli.quarantine import keep_peers

    with pytest.raises(InputError) as err:
        keep_peers(sel, _runtime())
    assert message in str(err.value.problems[0]) and len(err.value.problems) == 1
