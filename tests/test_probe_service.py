"""`probe --via service`, pure: which probes, which endpoints kube-proxy may pick, the
engine's verdict per endpoint on its resolved target port, and how each outcome is judged."""

from __future__ import annotations

import dataclasses

import pytest

from podnet.model.errors import InputError
from podnet.policy.engine import Engine
from podnet.policy.expectations import DNS_IDENTITY, Observation, Result, judge
from podnet.policy.ports import PortProto
from podnet.policy.service_probes import select_services, service_plan
from podnet.state.endpoint_slices import desired, pod_views
from podnet.state.network import NetworkConfig
from podnet.state.placement import place
from podnet.state.service_alloc import with_services
from podnet.testing import cluster, namespace, pod, policy, service

NET = NetworkConfig()
WEB = {"app": "web"}


def _live(*docs, ready=lambda p: p.metadata.name != "down", nodes=2):
    """The cluster as a live control plane stores it: Services allocated, slices computed
    with `ready` as the pods' readiness."""
    c = with_services(cluster(*docs, nodes=nodes), NET)
    p = place(c, NET)
    slices, _ = desired(c, pod_views(c, p.pod_ip, p.pod_node, ready))
    c = dataclasses.replace(c, endpoint_slices=slices)
    return c, Engine(c, p)


DOCS = [
    namespace("shop"),
    namespace("other"),
    pod(
        "shop/web-1",
        {**WEB, "tier": "one"},
        ports=[{"name": "http", "containerPort": 8080}],
        node="node-1",
    ),
    pod("shop/web-2", WEB, ports=[{"name": "http", "containerPort": 9090}], node="node-2"),
    pod("shop/down", WEB, ports=[{"name": "http", "containerPort": 8080}], node="node-2"),
    pod("shop/front", {"app": "front"}, node="node-1"),
    pod("other/x", {"app": "x"}, node="node-2"),
    service("shop/web", WEB, ports=[{"name": "h", "port": 80, "targetPort": "http"}]),
    service("shop/nobody", {"app": "nobody"}, ports=[{"port": 81}]),
    service("shop/headless", WEB, clusterIP="None"),
    # web-1 admits only shop/front; web-2 admits everyone: other/x gets a mixed Service
    policy(
        "shop/web-1-front-only",
        {
            "podSelector": {"matchLabels": {"tier": "one"}},
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "front"}}}]},
            ],
        },
    ),
]


def _plan(*docs, src="*", dst="*", ports=None):
    c, e = _live(*docs)
    srcs = [p for p in e.pods if src == "*" or p.key == src]
    return service_plan(e, c, srcs, select_services(c, dst, e.pods, "--to"), ports), e


def _probe(plan, src, dst, port):
    (p,) = [
        p for p in plan.probes if (p.source, p.destination, p.port) == (src, f"svc/{dst}", port)
    ]
    return p


def test_every_source_to_every_clusterip_port_with_the_ready_endpoints_on_target_ports():
    plan, e = _plan(*DOCS)
    dests = {p.destination for p in plan.probes}
    assert dests == {"svc/shop/web", "svc/shop/nobody"}  # headless has no virtual IP
    assert len(plan.probes) == 2 * len(e.pods)
    p = _probe(plan, "shop/front", "shop/web", 80)
    assert p.address.startswith("10.")  # the ClusterIP
    assert {(c.endpoint, c.target) for c in p.choices} == {
        ("shop/web-1", 8080),
        ("shop/web-2", 9090),
    }  # the unready pod is never picked
    assert {c.identity for c in p.choices} == {"shop/web-1 c", "shop/web-2 c"}


def test_each_endpoint_verdict_is_the_engines_on_the_resolved_target_port():
    plan, e = _plan(*DOCS)
    pods = {p.key: p for p in e.pods}
    for p in plan.probes:
        for c in p.choices:
            pp = PortProto(c.target, p.protocol)
            assert c.expected == e.allowed(pods[p.source], pods[c.endpoint], pp), (p, c)
    x = _probe(plan, "other/x", "shop/web", 80)
    assert {c.endpoint: c.expected for c in x.choices} == {"shop/web-1": False, "shop/web-2": True}
    front = _probe(plan, "shop/front", "shop/web", 80)
    assert all(c.expected for c in front.choices) and front.expected


def _judged(p, outcome, reply=""):
    return Result(p, Observation(outcome, reply=reply))


def test_a_reply_is_judged_on_the_endpoint_that_answered():
    plan, _ = _plan(*DOCS)
    x = _probe(plan, "other/x", "shop/web", 80)
    good = _judged(x, "reply", "shop/web-2 c")
    assert good.ok and good.expected is True and good.chosen.endpoint == "shop/web-2"
    bad = _judged(x, "reply", "shop/web-1 c")  # a policy should have blocked web-1
    assert bad.mismatch and bad.expected is False and bad.verdict == "passed"
    stranger = _judged(x, "reply", "shop/down c")  # not a ready endpoint
    assert stranger.wrong_identity and stranger.mismatch and stranger.verdict == "wrong pod"


def test_a_rejection_agrees_only_when_some_pickable_endpoint_is_blocked():
    plan, _ = _plan(*DOCS)
    mixed = _judged(_probe(plan, "other/x", "shop/web", 80), "rejected")
    assert mixed.ok and mixed.expected is None  # which one was picked, the ICMP error hides
    allowed = _judged(_probe(plan, "shop/front", "shop/web", 80), "rejected")
    assert allowed.mismatch and allowed.expected is True
    assert _judged(_probe(plan, "other/x", "shop/web", 80), "refused").mismatch


def test_a_service_without_ready_endpoints_is_expected_refused():
    plan, _ = _plan(*DOCS)
    p = _probe(plan, "shop/front", "shop/nobody", 81)
    assert p.choices == () and not p.expected
    assert _judged(p, "refused").ok
    assert _judged(p, "rejected").mismatch
    assert _judged(p, "reply", "shop/web-1 c").wrong_identity
    assert not _judged(p, "no-answer").mismatch  # silence is no verdict, as ever


def test_json_names_the_address_and_the_endpoint_that_answered():
    plan, _ = _plan(*DOCS, src="other/x", dst="svc/shop/web")
    (p,) = plan.probes
    report = judge(plan, [Observation("reply", reply="shop/web-2 c")])
    (doc,) = report.to_json()["results"]
    assert doc["to"] == "svc/shop/web" and doc["address"] == p.address
    assert doc["endpoint"] == "shop/web-2" and doc["targetPort"] == 9090
    assert doc["expected"] is True and doc["verdict"] == "passed"
    assert {d["pod"] for d in doc["endpoints"]} == {"shop/web-1", "shop/web-2"}
    assert report.exit_status == 0
    assert judge(plan, [Observation("reply", reply="shop/web-1 c")]).exit_status == 1


def test_selections_by_service_namespace_and_endpoint_pod():
    c, e = _live(*DOCS)

    def keys(text):
        return [s.key for s in select_services(c, text, e.pods, "--to")]

    assert keys("svc/shop/web") == ["shop/web"]
    assert keys("shop/*") == ["shop/nobody", "shop/web"]
    assert keys("shop/web-2") == ["shop/web"]
    assert keys("shop/down") == ["shop/web"]  # an endpoint, though not ready
    assert keys("other/*") == []
    with pytest.raises(InputError, match="no Service shop/headless"):
        keys("svc/shop/headless")
    with pytest.raises(InputError, match="matches no pod"):
        keys("nowhere/pod")


def test_ports_select_service_ports():
    plan, _ = _plan(*DOCS, ports=[PortProto(81, "TCP")])
    assert {p.destination for p in plan.probes} == {"svc/shop/nobody"}


def test_the_dns_service_is_answered_by_the_dns_server():
    dns = {"k8s-app": "kube-dns"}
    docs = [
        *DOCS,
        namespace("kube-system"),
        pod("kube-system/coredns", dns, ports=[{"containerPort": 53, "protocol": "UDP"}]),
        service("kube-system/kube-dns", dns, ports=[{"port": 53, "protocol": "UDP"}]),
    ]
    plan, _ = _plan(*docs, src="shop/front", dst="svc/kube-system/kube-dns")
    (p,) = plan.probes
    assert p.identity == DNS_IDENTITY and [c.identity for c in p.choices] == [DNS_IDENTITY]
    assert _judged(p, "reply", DNS_IDENTITY).ok


def test_internal_traffic_policy_local_picks_only_the_sources_node():
    docs = [*DOCS, service("shop/near", WEB, internalTrafficPolicy="Local")]
    docs[2] = pod("shop/web-1", WEB, ports=[{"containerPort": 8080}], node="node-1")
    docs[3] = pod("shop/web-2", WEB, ports=[{"containerPort": 8080}], node="node-1")
    plan, _ = _plan(*docs, dst="svc/shop/near")
    froms = {p.source for p in plan.probes}
    assert froms == {"shop/web-1", "shop/web-2", "shop/front"}  # the pods of node-1
    assert any("internalTrafficPolicy Local" in s for s in plan.skipped)


def test_a_target_port_the_pod_does_not_serve_is_expected_refused_when_allowed():
    docs = [
        namespace("a"),
        pod("a/srv", WEB, ports=[{"containerPort": 8080}]),
        pod("a/cli", {"app": "cli"}),
        service("a/web", WEB, ports=[{"port": 80, "targetPort": 7777}]),
    ]
    plan, _ = _plan(*docs, src="a/cli")
    (p,) = plan.probes
    (c,) = p.choices
    assert c.expected and not c.listens
    assert _judged(p, "refused").ok and _judged(p, "rejected").mismatch


def test_the_plan_works_out_each_endpoint_once_not_once_per_probe(monkeypatch):
    """At 5,000 pods, 15,072 probes of ~10 endpoints each: what does not depend on the
    source (an endpoint's answer line, whether it listens) is computed per endpoint."""
    from podnet.policy import service_probes

    calls: list[str] = []
    real = service_probes.identity

    def counted(dst, pp):
        calls.append(dst.key)
        return real(dst, pp)

    monkeypatch.setattr(service_probes, "identity", counted)
    plan, _ = _plan(*DOCS)
    picks = sum(len(p.choices) for p in plan.probes)
    assert picks > 2 * len(calls) > 0  # five sources share each endpoint's work
    assert sorted(set(calls)) == sorted(calls)  # one Service port: each endpoint once
