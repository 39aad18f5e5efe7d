"""`podnet probe` against a live cluster: the JSON contract and exit codes as a user runs the
command, the 162-probe timing (printed, not asserted), a deliberate mismatch (a policy in
the store that the datapath was never told about), hostNetwork sources and destinations, a
pod with localhost-only ports (its self-probe over 127.0.0.1)."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from test_probe_cluster import HOST_POD, LOCAL_POD, LOCAL_PORTS, e2e_docs

from podnet.testing import live_cluster, podnet, policy

pytestmark = pytest.mark.datapath

PODS9 = "x/a,x/b,x/c,y/*,z/*"  # the e2e pods, without x/d (localhost-only ports)
# Upstream-style cases: x/a admits only namespace y; z/c sends only DNS-like UDP; y/b
# admits port 81 from app=web anywhere and everything from an ipBlock with an exception.
POLICIES = [
    policy(
        "x/a-from-y",
        {
            "podSelector": {"matchLabels": {"pod": "a"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}],
        },
    ),
    policy(
        "z/c-egress",
        {
            "podSelector": {"matchLabels": {"pod": "c"}},
            "policyTypes": ["Egress"],
            "egress": [{"ports": [{"protocol": "UDP", "port": "dns"}]}],
        },
    ),
]


def y_b_policy(live) -> dict:
    ips = live.pod_ips()
    return policy(
        "y/b",
        {
            "podSelector": {"matchLabels": {"pod": "b"}},
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {},
                            "podSelector": {
                                "matchExpressions": [
                                    {"key": "app", "operator": "In", "values": ["web"]}
                                ]
                            },
                        }
                    ],
                    "ports": [{"port": 80, "endPort": 81}],
                },
                {"from": [{"ipBlock": {"cidr": "10.244.0.0/16", "except": [f"{ips['x/c']}/32"]}}]},
            ],
        },
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    with live_cluster(tmp, e2e_docs(host_pod=True, local=True), "plive") as lc:
        f = tmp / "policies.yaml"
        f.write_text(yaml.safe_dump_all([*POLICIES, y_b_policy(lc)]))
        out = podnet("apply", "-f", str(f), "--cluster", lc.name, env=lc.env)
        assert out.returncode == 0, out.stderr
        yield lc


def probe(live, *args: str):
    return podnet("probe", "--cluster", live.name, *args, env=live.env)


def test_json_contract_and_exit_0(live):
    out = probe(live, "-o", "json", "--ports", "80/TCP,81/TCP", "--from", PODS9, "--to", PODS9)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr
    doc = json.loads(out.stdout)
    assert doc["pods"] == sorted(f"{ns}/{p}" for ns in "xyz" for p in "abc")
    assert len(doc["results"]) == 162
    for r in doc["results"]:
        assert {"from", "to", "port", "protocol", "allowed", "expected"} <= r.keys()
        assert r["allowed"] == r["expected"], r
    verdicts = {(r["from"], r["to"], r["port"]): r["allowed"] for r in doc["results"]}
    assert verdicts[("y/c", "x/a", 80)] is True
    assert verdicts[("z/a", "x/a", 80)] is False
    assert verdicts[("z/c", "x/b", 80)] is False  # z/c egress: UDP dns only
    assert verdicts[("x/a", "y/b", 81)] is True  # app=web, in the port range
    assert verdicts[("x/c", "y/b", 81)] is False  # the except
    print(f"\n162 probes (CLI, JSON): {doc['summary']['seconds']:.3f}s of probing")


def test_162_probes_timing(live):
    """Printed for the record (the issue asks ≤ 3 s); not asserted, the host is shared."""
    from podnet.cli.probe import collect
    from podnet.policy.ports import parse_ports
    from podnet.render import runtime as rt

    times = []
    for _ in range(3):
        started = time.monotonic()
        report = collect(live.sdir, rt.load(live.sdir), PODS9, PODS9, parse_ports("80/TCP,81/TCP"))
        times.append(time.monotonic() - started)
        assert len(report.results) == 162 and report.ok
    outcomes = report.counts()
    print(
        f"\n162 probes, engine included: {', '.join(f'{t:.3f}s' for t in times)}; "
        f"probing alone {report.seconds:.3f}s; outcomes {outcomes}"
    )


def test_table_output(live):
    out = probe(live, "--from", PODS9, "--to", PODS9)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "324 probes in" in out.stdout
    assert "all as the engine expects" in out.stdout
    for port in ("80/TCP", "81/TCP", "80/UDP", "81/UDP"):
        assert f"port {port}: " in out.stdout


def test_a_policy_the_datapath_never_saw_is_a_mismatch(live):
    """Store a deny-all policy behind the cluster's back: the engine expects x/b blocked, the
    kernel still lets it through; probe must say so and exit 1."""
    from podnet.state.store import Store

    deny = policy("x/sneaky", {"podSelector": {"matchLabels": {"pod": "b"}}})
    with Store.open(live.sdir) as store:
        store.put("NetworkPolicy", "x", "sneaky", deny)
    try:
        out = probe(live, "--to", "x/b", "--from", "y/a", "--ports", "80/TCP")
        js = probe(live, "--to", "x/b", "--from", "y/a", "--ports", "80/TCP", "-o", "json")
    finally:
        with Store.open(live.sdir) as store:
            store.delete("NetworkPolicy", "x", "sneaky")
    assert out.returncode == 1
    assert "MISMATCH y/a -> x/b 80/TCP: passed (x/b c); the engine says blocked" in out.stdout
    assert "✓!" in out.stdout
    assert js.returncode == 1
    [r] = json.loads(js.stdout)["results"]
    assert (r["allowed"], r["expected"], r["outcome"]) == (True, False, "reply")
    assert probe(live, "--to", "x/b", "--from", "y/a", "--ports", "80/TCP").returncode == 0


def test_host_network_pod_as_source_and_destination(live):
    out = probe(live, "-o", "json", "--from", "h/host")
    assert out.returncode == 0, out.stdout[-3000:]
    doc = json.loads(out.stdout)
    assert len(doc["results"]) == 9 * 4 + 1 + 3  # x/d declares 3 ports
    out = probe(live, "-o", "json", "--to", "h/host")
    assert out.returncode == 0, out.stdout[-3000:]
    doc = json.loads(out.stdout)
    assert len(doc["results"]) == 11
    # z/c may only send UDP dns: the host pod's 8080/TCP is blocked from it, unless z/c runs
    # on node-1, the host pod's node ("traffic to and from the node ... is always allowed").
    node = {p["namespace"] + "/" + p["name"]: p["node"] for p in live.runtime()["pods"]}
    z_c = {r["from"]: r["allowed"] for r in doc["results"]}["z/c"]
    assert z_c is (node["z/c"] == "node-1")


def test_every_pod_to_every_pod_exits_0(live):
    """The whole cluster, hostNetwork pod and localhost-only ports included."""
    out = probe(live, "-o", "json")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr
    doc = json.loads(out.stdout)
    assert HOST_POD in doc["pods"] and LOCAL_POD in doc["pods"]
    assert doc["summary"]["mismatches"] == 0


def test_a_pod_reaches_its_own_localhost_only_ports_and_nobody_else_does(live):
    """podnet.io/localhost-ports binds x/d's 9000/TCP and 5353/UDP to 127.0.0.1: its
    self-probe goes there (the path its own containers take) and passes; every other pod,
    the hostNetwork one included, is blocked (the stand-in refuses the pod IP)."""
    out = probe(live, "-o", "json", "--to", LOCAL_POD)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr
    results = json.loads(out.stdout)["results"]
    sources = {r["from"] for r in results}
    assert len(sources) == 11
    for port, proto in LOCAL_PORTS:
        on = [r for r in results if (r["port"], r["protocol"]) == (port, proto)]
        assert {r["from"] for r in on} == sources
        [own] = [r for r in on if r["from"] == LOCAL_POD]
        assert own["loopback"] is True
        assert (own["allowed"], own["expected"], own["outcome"]) == (True, True, "reply")
        for r in on:
            if r["from"] != LOCAL_POD:
                assert (r["allowed"], r["expected"]) == (False, False), r
                assert "loopback" not in r
        # Nothing but x/d's own containers: refused at x/d, or rejected by a policy first.
        assert {r["outcome"] for r in on if r["from"] != LOCAL_POD} <= {"refused", "rejected"}
        assert sum(r["outcome"] == "refused" for r in on) >= 8
    # Its ordinary port: the self-probe goes to its IP, as every other probe does.
    [own80] = [r for r in results if r["from"] == LOCAL_POD and r["port"] == 80]
    assert (own80["allowed"], own80.get("loopback")) == (True, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--via", "service", "--to", "svc/x/none"], "no Service", id="via-service"),
        pytest.param(["--from", "nope/x"], "matches no pod", id="bad-selection"),
        pytest.param(["--to", "10.0.0.1"], "between pods only", id="outside-peer"),
        pytest.param(["--ports", "80/XTP"], "protocol must be", id="bad-port"),
    ],
)
def test_bad_input_exits_2(live, args, message):
    out = probe(live, *args)
    assert out.returncode == 2
    assert message in out.stderr
