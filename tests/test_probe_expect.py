"""The pure parts of `podnet probe` (no root): the live snapshot from stored objects, the plan
and its expectations (the engine's, nothing else), judging observations, the outputs, and
the command's refusals."""

from __future__ import annotations

import dataclasses
import errno
import json

import pytest

from podnet.cli import probe as probe_cli
from podnet.cli.main import main
from podnet.model.errors import InputError
from podnet.policy.expectations import (
    Observation,
    Probe,
    ProbePlan,
    judge,
    live_placement,
    plan,
)
from podnet.policy.ports import PortProto
from podnet.probing.send import _failure, _line
from podnet.state.changes import body_of
from podnet.state.placement import place
from podnet.state.stored_kinds import STORED_KINDS
from podnet.testing import cluster, engine, namespace, pod, pod_entry, policy, runtime_doc

WEB = [{"name": "http", "containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}]
DOCS = [
    namespace("shop", team="a"),
    namespace("ops", team="b"),
    pod("shop/web", labels={"app": "web"}, ports=WEB),
    pod("shop/db", labels={"app": "db"}, ports=[{"name": "pg", "containerPort": 5432}]),
    pod("ops/mon", labels={"app": "mon"}, ports=[{"containerPort": 9090}]),
    pod("ops/agent", ports=[{"containerPort": 9100}], node="node-1", host_network=True),
    policy(
        "shop/db",
        {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}],
        },
    ),
    policy(
        "shop/web-egress",
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Egress"],
            "egress": [{"ports": [{"port": "pg"}]}],
        },
    ),
]


def stored_bodies(docs):
    """What `podnet up` stores: each object as the API returns it (state.changes.store_cluster)."""
    c = cluster(*docs, nodes=2)
    return c, [(kind, o, body_of(o)) for kind, attr in STORED_KINDS for o in getattr(c, attr)]


def test_stored_objects_give_back_the_same_cluster(tmp_path):
    """probe builds its engine from the store with the reconciler's snapshot: what up stored
    must come back as the same cluster."""
    from podnet.state.snapshot import snapshot
    from podnet.state.store import Store

    c, bodies = stored_bodies(DOCS)
    with Store.open(tmp_path) as store:
        for kind, o, body in bodies:
            store.put(kind, o.metadata.namespace, o.metadata.name, body)
        again = snapshot(store)
    for attr in ("namespaces", "nodes", "pods", "policies"):
        assert getattr(again, attr) == getattr(c, attr), attr


def test_live_placement_is_the_served_one():
    c, _ = stored_bodies(DOCS)
    real = place(c)
    nodes = {n: (real.node_ip[n], str(real.node_cidr[n])) for n in real.node_ip}
    served = {k: (real.pod_node[k], real.pod_ip[k]) for k in real.pod_ip}
    served[("shop", "web")] = ("node-1", "10.244.0.77")  # whatever the cluster really runs
    got = live_placement(c, nodes, served)
    assert got.pod_ip[("shop", "web")] == "10.244.0.77"
    assert got.pod_node[("shop", "web")] == "node-1"
    assert got.pod_ip[("ops", "agent")] == real.node_ip["node-1"]


def test_a_pod_not_served_yet_is_an_error_not_a_guess():
    c, _ = stored_bodies(DOCS)
    real = place(c)
    nodes = {n: (real.node_ip[n], str(real.node_cidr[n])) for n in real.node_ip}
    served = {k: (real.pod_node[k], real.pod_ip[k]) for k in real.pod_ip if k[1] != "db"}
    with pytest.raises(InputError, match="change is being applied"):
        live_placement(c, nodes, served)


def test_expectations_are_the_engines_answers():
    e = engine(*DOCS, nodes=2)
    q = plan(e, e.pods, e.pods, None)
    assert q.probes
    for p in q.probes:
        want = e.allowed(e.by_key[p.source], e.by_key[p.destination], PortProto(p.port, p.protocol))
        assert p.expected == want, p
    by = {(p.source, p.destination, p.port): p.expected for p in q.probes}
    assert by[("shop/web", "shop/db", 5432)] is True
    assert by[("ops/mon", "shop/db", 5432)] is False
    assert by[("shop/web", "ops/mon", 9090)] is False  # egress only to named port pg
    assert by[("shop/db", "shop/db", 5432)] is True  # itself, over loopback
    # The hostNetwork pod's node is always allowed to reach its own pods.
    assert all(p.expected for p in q.probes if p.source == "ops/agent")


def test_ports_given_skip_destinations_that_do_not_declare_them_and_sctp():
    e = engine(*DOCS, nodes=2)
    q = plan(e, e.pods, e.pods, [PortProto(5432, "TCP"), PortProto(7, "SCTP")])
    assert {p.destination for p in q.probes} == {"shop/db"}
    assert len(q.probes) == 4
    assert any("SCTP is not probed" in s for s in q.skipped)
    assert any("3 destination/port combinations not probed" in s for s in q.skipped)
    assert q.ports == [PortProto(5432, "TCP")]


def _with_local(node: str = "node-2", host_network: bool = False):
    """DOCS plus shop/cache: 6379 bound to 127.0.0.1 by annotation, 6380 on its IP. On
    node-2 by default: not the node of the hostNetwork pod ops/agent (the hostNetwork case is tested below)."""
    cache = pod(
        "shop/cache",
        labels={"app": "cache"},
        ports=[{"name": "redis", "containerPort": 6379}, {"containerPort": 6380}],
        node=node,
        host_network=host_network,
    )
    cache["metadata"]["annotations"] = {"podnet.io/localhost-ports": "redis"}
    return engine(*DOCS, cache, nodes=2)


def test_a_pod_reaches_its_own_localhost_port_over_loopback_and_nobody_else_does():
    e = _with_local()
    q = plan(e, e.pods, [e.by_key["shop/cache"]], None)
    local = [p for p in q.probes if p.port == 6379]
    assert len(local) == len(e.pods)
    [own] = [p for p in local if p.source == "shop/cache"]
    assert own.loopback and own.expected
    others = [p for p in local if p.source != "shop/cache"]
    assert not any(p.loopback or p.expected for p in others)
    # Its other port: the self-probe goes to its IP as every other probe does.
    assert not any(p.loopback for p in q.probes if p.port == 6380)
    assert [p.source for p in q.probes if p.port == 6380 and not p.expected] == ["shop/web"]


def test_loopback_probes_target_127_0_0_1_in_the_pods_own_namespace():
    from podnet.render import runtime as rt

    e = _with_local()
    q = plan(e, [e.by_key["shop/cache"], e.by_key["shop/web"]], [e.by_key["shop/cache"]], None)
    runtime = rt.parse(
        runtime_doc(
            "t",
            pods=[
                pod_entry("shop", n, "node-1", ip, f"ns-{n}", {})
                for n, ip in (("cache", "10.244.1.7"), ("web", "10.244.1.8"))
            ],
        )
    )
    got = {
        (p.source, p.port): (t.netns, t.host)
        for p, t in zip(q.probes, probe_cli.targets_of(q, runtime), strict=True)
    }
    assert got == {
        ("shop/cache", 6379): ("ns-cache", "127.0.0.1"),
        ("shop/cache", 6380): ("ns-cache", "10.244.1.7"),
        ("shop/web", 6379): ("ns-web", "10.244.1.7"),
        ("shop/web", 6380): ("ns-web", "10.244.1.7"),
    }
    doc = judge(q, [Observation("reply", "shop/cache c")] * len(q.probes)).to_json()
    marked = [(r["from"], r["port"]) for r in doc["results"] if r.get("loopback")]
    assert marked == [("shop/cache", 6379)]


@pytest.mark.parametrize(
    ("source", "host_network"),
    [
        pytest.param("ops/agent", False, id="hostnetwork-source-same-node"),
        pytest.param("shop/web", True, id="hostnetwork-destination-same-node"),
    ],
)
def test_nobody_on_the_same_node_reaches_a_localhost_port_either(source, host_network):
    e = _with_local(node="node-1", host_network=host_network)
    assert e.by_key[source].node == e.by_key["shop/cache"].node == "node-1"
    [p] = plan(e, [e.by_key[source]], [e.by_key["shop/cache"]], [PortProto(6379, "TCP")]).probes
    assert p.expected is False


PROBE = Probe("a/x", "b/y", 80, "TCP", True, "b/y app")


@pytest.mark.parametrize(
    ("expected", "seen", "verdict", "ok", "mismatch"),
    [
        pytest.param(True, Observation("reply", "b/y app"), "passed", True, False, id="pass"),
        pytest.param(False, Observation("rejected"), "blocked", True, False, id="blocked"),
        pytest.param(False, Observation("reply", "b/y app"), "passed", False, True, id="leak"),
        pytest.param(True, Observation("rejected"), "blocked", False, True, id="over-blocked"),
        # A reset means the packets went through every policy to a closed port: a policy
        # that should have blocked them did not, and an allowed probe did not pass.
        pytest.param(False, Observation("refused"), "refused", False, True, id="refused-leak"),
        pytest.param(True, Observation("refused"), "refused", False, True, id="nothing-listens"),
        pytest.param(True, Observation("reply", "b/z app"), "wrong pod", False, True, id="wrong"),
        pytest.param(True, Observation("error", detail="x"), "error", False, True, id="error"),
        # Silence is no verdict: neither agreement nor a mismatch, whatever the engine says.
        pytest.param(False, Observation("no-answer"), "no answer", False, False, id="silent-1"),
        pytest.param(True, Observation("no-answer"), "no answer", False, False, id="silent-2"),
    ],
)
def test_judging_one_probe(expected, seen, verdict, ok, mismatch):
    q = ProbePlan(["a/x", "b/y"], [PortProto(80, "TCP")], [_with(expected)], [])
    r = judge(q, [seen]).results[0]
    assert (r.verdict, r.ok, r.mismatch) == (verdict, ok, mismatch)
    assert r.allowed == (seen.outcome == "reply")


def test_a_refusal_is_expected_on_another_pods_localhost_only_port():
    p = dataclasses.replace(_with(False), refusal_expected=True)
    q = ProbePlan(["a/x", "b/y"], [PortProto(80, "TCP")], [p], [])
    for outcome in ("refused", "rejected"):  # a policy may reject it before the pod refuses
        assert judge(q, [Observation(outcome)]).results[0].ok


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        (["reply", "rejected"], 0),
        (["reply", "no-answer"], 3),
        (["reply", "refused"], 1),
        (["no-answer", "refused"], 1),  # a definite mismatch outweighs silence
    ],
    ids=["agree", "silent", "mismatch", "both"],
)
def test_exit_status_tells_mismatch_from_no_answer(outcomes, status):
    probes = [_with(True), _with(False)]
    q = ProbePlan(["a/x", "b/y"], [PortProto(80, "TCP")], probes, [])
    report = judge(q, [Observation(o, "b/y app") for o in outcomes])
    assert report.exit_status == status


def test_summary_keeps_refused_blocked_and_no_answer_apart():
    probes = [_with(False), _with(False), _with(True), _with(True)]
    q = ProbePlan(["a/x", "b/y"], [PortProto(80, "TCP")], probes, [])
    seen = [
        Observation("rejected"),
        Observation("refused"),
        Observation("no-answer", detail="no answer in 3 attempts of 1s", attempts=3),
        Observation("reply", "b/y app", attempts=2),
    ]
    report = judge(q, seen)
    c = report.counts()
    assert (c["blocked"], c["refused"], c["no answer"], c["passed"]) == (1, 1, 1, 1)
    assert c["retried"] == 2 and c["mismatches"] == 1
    assert [r["verdict"] for r in report.to_json()["results"]] == [
        "blocked",
        "refused",
        "no answer",
        "passed",
    ]
    text = probe_cli.to_table(report, color=False)
    assert "1 passed, 1 blocked, 1 refused, 1 no answer; 1 differ from the engine" in text
    assert "NO ANSWER a/x -> b/y 80/TCP: no answer in 3 attempts of 1s" in text


def _with(expected: bool) -> Probe:
    return Probe(PROBE.source, PROBE.destination, 80, "TCP", expected, PROBE.identity)


def _report():
    probes = [
        Probe("a/x", "b/y", 80, "TCP", True, "b/y app"),
        Probe("a/x", "b/y", 53, "UDP", False, "b/y app"),
        Probe("b/y", "b/y", 80, "TCP", True, "b/y app"),
        Probe("b/y", "a/x", 80, "TCP", True, "a/x app"),
    ]
    seen = [
        Observation("reply", "b/y app"),
        Observation("reply", "b/y app"),  # leak
        Observation("reply", "b/y app"),
        Observation("reply", "c/z app"),  # wrong pod
    ]
    q = ProbePlan(["a/x", "b/y"], [PortProto(53, "UDP"), PortProto(80, "TCP")], probes, [])
    return judge(q, seen, 0.25)


def test_json_is_the_analyze_contract_plus_expected():
    doc = _report().to_json()
    json.dumps(doc)
    assert doc["pods"] == ["a/x", "b/y"]
    first = doc["results"][0]
    assert {k: first[k] for k in ("from", "to", "port", "protocol", "allowed", "expected")} == {
        "from": "a/x",
        "to": "b/y",
        "port": 80,
        "protocol": "TCP",
        "allowed": True,
        "expected": True,
    }
    assert doc["results"][1]["allowed"] is True and doc["results"][1]["expected"] is False
    assert doc["results"][3]["identity"] == "c/z app"
    assert doc["results"][3]["expectedIdentity"] == "a/x app"
    assert doc["summary"]["mismatches"] == 2
    assert doc["summary"]["wrong identity"] == 1


def test_table_highlights_mismatches():
    text = probe_cli.to_table(_report(), color=False)
    assert "port 80/TCP: 3 of 3 probes passed, 1 mismatch" in text
    assert "port 53/UDP: 1 of 1 probes passed, 1 mismatch" in text
    assert "MISMATCH a/x -> b/y 53/UDP: passed (b/y app); the engine says blocked" in text
    assert "MISMATCH b/y -> a/x 80/TCP: answered by 'c/z app', expected 'a/x app'" in text
    assert "4 probes in 0.25s: 3 passed, 0 blocked, 1 wrong pod; 2 differ from the engine" in text
    assert "✓!" in text and "?!" in text


def test_judge_refuses_a_short_list():
    with pytest.raises(ValueError):
        judge(_report().plan, [])


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        pytest.param(ConnectionRefusedError(errno.ECONNREFUSED, "x"), "refused", id="rst"),
        pytest.param(OSError(errno.EHOSTUNREACH, "x"), "rejected", id="admin-prohibited"),
        pytest.param(OSError(errno.EACCES, "x"), "rejected", id="eacces"),
        pytest.param(OSError(errno.EMFILE, "x"), "error", id="emfile"),
    ],
)
def test_socket_errors_map_to_outcomes(error, outcome):
    assert _failure(error, 0.0).outcome == outcome


def test_a_source_namespace_that_is_our_own_is_refused(monkeypatch, tmp_path):
    """probe enters namespaces only through podnet.datapath.netns's guard: a namespace file
    that is the caller's own namespace (the host's) ends the run before any socket exists,
    and the command says so (exit 2) instead of probing from the host."""
    import os

    from podnet.datapath import netns
    from podnet.probing import send as dprobe

    def ours(name: str) -> int:
        return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

    made = []
    real_socket = dprobe.socket.socket

    def socket(*a):  # the loop's own socketpair is AF_UNIX; a probe's socket is AF_INET
        made.append(a[0])
        return real_socket(*a)

    monkeypatch.setattr(netns, "open_fd", ours)
    monkeypatch.setattr(dprobe.socket, "socket", socket)
    with pytest.raises(netns.WrongNamespace, match=r"namespace podnet\.t\.pod\.x\.a: refusing"):
        dprobe.probe([dprobe.Target("podnet.t.pod.x.a", "127.0.0.1", 9, "TCP")])
    assert dprobe.socket.AF_INET not in made


def test_the_command_turns_a_refused_namespace_into_bad_input(monkeypatch, tmp_path):
    from podnet.datapath import netns
    from podnet.probing import send as dprobe
    from podnet.render import runtime as rt

    e = engine(*DOCS, nodes=2)
    runtime = rt.parse(
        runtime_doc(
            "t",
            pods=[pod_entry(p.namespace, p.name, p.node, p.ip, f"ns-{p.name}", {}) for p in e.pods],
        )
    )

    def refuse(*a, **k):
        raise netns.WrongNamespace("network namespace ns-web: refusing to enter namespace 1")

    monkeypatch.setattr(probe_cli, "live_engine", lambda sdir, runtime: e)
    monkeypatch.setattr(dprobe, "probe", refuse)
    with pytest.raises(InputError, match="cluster t: network namespace ns-web: refusing"):
        probe_cli.collect(tmp_path, runtime)


def test_reply_line():
    assert _line(b"x/a app\n") == "x/a app"
    assert _line(b"x/a app\nmore") == "x/a app"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--timeout", "0"], "--timeout must be", id="timeout"),
        pytest.param([], "not found", id="no-cluster"),
    ],
)
def test_refusals_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PODNET_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(probe_cli.os, "geteuid", lambda: 0)
    assert main(["probe", "--cluster", "nope", *argv]) == 2
    assert message in capsys.readouterr().err


def test_needs_root(capsys, monkeypatch):
    monkeypatch.setattr(probe_cli.os, "geteuid", lambda: 1000)
    assert main(["probe"]) == 2
    assert "needs root" in capsys.readouterr().err
