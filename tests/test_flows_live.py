"""`podnet flows` on a live cluster: real connections and blocked attempts, each recorded
by the daemon's collector with its pods, its Service and the policy that decided it.

Two nodes. web (node-1) is isolated for ingress by two policies, allow-a (which admits a
on 8080 and the outside on 8080) and allow-b-9090 (which admits b, on 9090 only), and for
egress by web-egress (which allows all). c may send nothing (c-egress). a, b, c live on
node-2: b is rejected by web's ingress on node-1, c by its own egress on node-2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from podnet.flowlog import history
from podnet.flowlog.flow_record import Flow
from podnet.testing import Live, live_cluster, namespace, pod, policy, service

pytestmark = pytest.mark.datapath

NODE2 = "172.18.0.3"
NODE_PORT = 30080
WAIT = 10.0


def docs() -> list[dict[str, Any]]:
    web_sel = {"matchLabels": {"app": "web"}}
    return [
        namespace("app"),
        pod(
            "app/web",
            {"app": "web"},
            [{"containerPort": 8080}, {"containerPort": 9090}],
            node="node-1",
        ),
        pod("app/a", {"role": "a"}, [{"containerPort": 8080}], node="node-2"),
        pod("app/b", {"role": "b"}, [{"containerPort": 8080}], node="node-2"),
        pod("app/c", {"role": "c"}, [{"containerPort": 8080}], node="node-2"),
        policy(
            "app/allow-b-9090",
            {
                "podSelector": web_sel,
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"role": "b"}}}],
                        "ports": [{"port": 9090}],
                    }
                ],
            },
        ),
        policy(
            "app/allow-a",
            {
                "podSelector": web_sel,
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"role": "a"}}}],
                        "ports": [{"port": 8080}],
                    },
                    {
                        "from": [
                            {"ipBlock": {"cidr": "203.0.113.0/24"}},
                            {"ipBlock": {"cidr": "172.18.0.0/16"}},
                        ],
                        "ports": [{"port": 8080}],
                    },
                ],
            },
        ),
        policy(
            "app/web-egress", {"podSelector": web_sel, "policyTypes": ["Egress"], "egress": [{}]}
        ),
        policy(
            "app/c-egress",
            {"podSelector": {"matchLabels": {"role": "c"}}, "policyTypes": ["Egress"]},
        ),
        service("app/web", {"app": "web"}, [{"name": "http", "port": 80, "targetPort": 8080}]),
        service(
            "app/web-np",
            {"app": "web"},
            [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": NODE_PORT}],
            type="NodePort",
        ),
    ]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_cluster(tmp_path_factory.mktemp("flows"), docs(), "pfl", nodes=2) as lv:
        _wait_collector(lv)
        yield lv


def _wait_collector(lv: Live) -> None:
    """The collector has opened its sockets in both nodes (daemon.log says so)."""
    deadline = time.monotonic() + 30
    log = lv.sdir / "daemon.log"
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        if text.count("reading conntrack and nflog") >= 2:
            return
        time.sleep(0.1)
    raise AssertionError("the flow collector did not start:\n" + text[-3000:])


def wait_flow(lv: Live, match: Callable[[Flow], bool], since: float) -> Flow:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = [
            r
            for r in history.recent(lv.sdir)
            if isinstance(r, Flow) and r.time >= since and match(r)
        ]
        if found:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError(
        "no such flow; recent:\n" + "\n".join(map(str, history.recent(lv.sdir)[-15:]))
    )


def probe(lv: Live, src: str, dst: str, port: str, *extra: str) -> dict[str, Any]:
    out = lv.cli("probe", "--from", src, "--to", dst, "--ports", port, "-o", "json", *extra)
    assert out.returncode == 0, out.stdout + out.stderr  # as the engine expects
    return dict(json.loads(out.stdout))


def _between(src: str, dst: str, port: int) -> Callable[[Flow], bool]:
    return lambda f: (f.src.name, f.dst.name, f.dst.port) == (src, dst, port)


def test_an_allowed_connection_names_the_admitting_policy_and_rule(live: Live) -> None:
    t = time.time()
    doc = probe(live, "app/a", "app/web", "8080/TCP")
    assert doc["results"][0]["allowed"] is True
    f = wait_flow(live, _between("app/a", "app/web", 8080), t)
    assert f.verdict == "allowed" and f.service is None
    assert f.ingress is not None and (f.ingress.policy, f.ingress.rule, f.ingress.node) == (
        "app/allow-a",
        0,
        "node-1",
    )
    assert f.egress is not None and (f.egress.verdict, f.egress.reason) == (
        "allowed",
        "not isolated",
    )
    assert set(f.nodes) == {"node-1", "node-2"}


def test_blocked_by_ingress_on_the_destination_node(live: Live) -> None:
    t = time.time()
    probe(live, "app/b", "app/web", "8080/TCP")
    f = wait_flow(live, _between("app/b", "app/web", 8080), t)
    assert f.verdict == "blocked"
    assert f.ingress is not None and f.ingress.verdict == "blocked" and f.ingress.node == "node-1"
    # both policies isolating web for ingress, not web-egress (egress only), not c-egress
    assert f.ingress.policies == ("app/allow-a", "app/allow-b-9090")
    assert f.egress is not None and f.egress.reason == "not isolated"


def test_blocked_by_egress_on_the_source_node(live: Live) -> None:
    t = time.time()
    probe(live, "app/c", "app/web", "8080/TCP")
    f = wait_flow(live, _between("app/c", "app/web", 8080), t)
    assert f.verdict == "blocked"
    assert (
        f.egress is not None
        and f.egress.policies == ("app/c-egress",)
        and f.egress.node == "node-2"
    )
    assert f.ingress is not None and f.ingress.verdict == "not reached"
    assert f.nodes == ("node-2",)


def test_through_a_clusterip_the_service_is_attributed(live: Live) -> None:
    t = time.time()
    probe(live, "app/a", "svc/app/web", "80/TCP", "--via", "service")
    f = wait_flow(
        live,
        lambda f: f.src.name == "app/a" and f.service is not None and f.service.name == "app/web",
        t,
    )
    assert f.verdict == "allowed" and (f.dst.name, f.dst.port) == ("app/web", 8080)
    assert f.service is not None and f.service.port == "http" and f.service.address.endswith(":80")
    assert f.ingress is not None and f.ingress.policy == "app/allow-a"


def test_from_the_internet_through_a_nodeport_on_the_other_node(live: Live) -> None:
    t = time.time()
    out = live.cli("curl", "--from", "internet", "--max-time", "5", f"http://{NODE2}:{NODE_PORT}/")
    assert out.returncode == 0, out.stdout + out.stderr
    f = wait_flow(live, lambda f: f.src.kind == "internet" and f.dst.name == "app/web", t)
    assert f.service is not None and (f.service.name, f.service.address) == (
        "app/web-np",
        f"{NODE2}:{NODE_PORT}",
    )
    assert f.snat is not None and f.snat.startswith(NODE2 + ":")  # node-2 masqueraded
    assert f.ingress is not None and (f.ingress.policy, f.ingress.rule) == ("app/allow-a", 1)
    assert f.egress is None and set(f.nodes) == {"node-1", "node-2"}


def test_follow_shows_a_flow_made_after_it_started(live: Live) -> None:
    cmd = [
        sys.executable,
        "-m",
        "podnet",
        "flows",
        "--cluster",
        live.name,
        "-f",
        "-o",
        "json",
        "--from",
        "app/a",
        "--to",
        "app/web",
        "--verdict",
        "allowed",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, **live.env})
    try:
        time.sleep(2.0)  # it has read the history and follows
        started = time.time()
        probe(live, "app/a", "app/web", "8080/TCP")
        assert proc.stdout is not None
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            rec = json.loads(line)
            if rec["time"] >= started:
                assert rec["src"]["name"] == "app/a" and rec["dst"]["name"] == "app/web"
                assert rec["verdict"] == "allowed"
                break
        else:
            raise AssertionError("flows -f printed no new flow")
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_the_cli_filters_and_tables(live: Live) -> None:
    probe(live, "app/c", "app/web", "8080/TCP")
    time.sleep(0.6)
    out = live.cli("flows", "--verdict", "blocked", "--from", "app/c", "-o", "json", "--limit", "0")
    assert out.returncode == 0, out.stderr
    recs = [json.loads(x) for x in out.stdout.splitlines()]
    assert recs and all(
        r["verdict"] == "blocked" and r["src"]["name"] == "app/c"
        for r in recs
        if r["type"] == "flow"
    )
    table = live.cli("flows", "--to", "svc/app/web")
    assert table.returncode == 0 and "app/web:http" in table.stdout
    bad = live.cli("flows", "--to", "svc/app/nope")
    assert bad.returncode == 2 and "svc/app/nope" in bad.stderr
