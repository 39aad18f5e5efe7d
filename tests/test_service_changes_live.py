"""Changes on a running cluster reach Services at once: `apply` of a Service, `label` of a
pod out of a selector, `delete` of a Service; and cluster DNS under NetworkPolicy (a
default-deny egress that admits UDP and TCP 53 to the DNS pods keeps names resolving; without
that admission they stop)."""

from __future__ import annotations

import json
import time

import pytest

from podnet.testing import Live, connect, live_cluster, namespace, pod, policy, service

pytestmark = pytest.mark.datapath

WEB = {"app": "web"}
DOCS = [
    namespace("chg"),
    pod("chg/web-1", WEB, ports=[{"name": "http", "containerPort": 8080}]),
    pod("chg/web-2", WEB, ports=[{"name": "http", "containerPort": 8080}]),
    pod("chg/client", {"app": "client"}, ports=[{"containerPort": 9000}]),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    up = ["--cluster-dns", "on"]
    with live_cluster(tmp_path_factory.mktemp("chg"), DOCS, "pchg", nodes=2, up_args=up) as c:
        yield c


def _cluster_ip(live: Live, name: str) -> str:
    out = live.cli("get", "services", name, "-n", "chg", "-o", "json")
    assert out.returncode == 0, out.stderr
    return str(json.loads(out.stdout)["spec"]["clusterIP"])


def _answer(live: Live, ip: str, port: int) -> str:
    with connect(live.pod("chg/client")["netns"], ip, port) as s:
        s.sendall(b"\n")
        return s.recv(4096).decode().split(" ")[0]


def _until(check, timeout: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"not within {timeout}s"
        time.sleep(0.02)
    return time.monotonic() - started


def test_apply_label_delete_reach_the_service_within_a_second(live: Live) -> None:
    live.apply(
        [service("chg/web", WEB, ports=[{"name": "http", "port": 80, "targetPort": "http"}])]
    )
    ip = _cluster_ip(live, "web")
    # apply returns once the sync holds the Service: its endpoints answer at once.
    assert _until(lambda: _answer(live, ip, 80) in ("chg/web-1", "chg/web-2"), 1.0) < 1.0
    started = time.monotonic()
    out = live.cli("label", "pod", "web-1", "-n", "chg", "app=other", "--overwrite")
    assert out.returncode == 0, out.stderr
    # Out of the selector: within a second no connection reaches it any more.
    _until(lambda: all(_answer(live, ip, 80) == "chg/web-2" for _ in range(20)), 1.0)
    assert time.monotonic() - started < 1.0 + 2.0  # the label command's own start-up included
    out = live.cli("delete", "service", "web", "-n", "chg")
    assert out.returncode == 0, out.stderr
    assert "web" not in live.cli("get", "services", "-n", "chg").stdout


def _resolves(live: Live) -> bool:
    out = live.cli("exec", "chg/client", "--", "getent", "hosts", "kube-dns.kube-system")
    return out.returncode == 0 and "10.96.0.10" in out.stdout


def test_dns_under_default_deny_egress(live: Live) -> None:
    deny = policy("chg/deny", {"podSelector": {}, "policyTypes": ["Egress"]})
    allow_dns = policy(
        "chg/allow-dns",
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                            },
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                }
            ],
        },
    )
    assert _resolves(live)
    live.apply([deny, allow_dns])
    assert _resolves(live)  # judged after DNAT: 10.96.0.10 -> the DNS pod, admitted
    out = live.cli("delete", "networkpolicy", "allow-dns", "-n", "chg")
    assert out.returncode == 0, out.stderr
    started = time.monotonic()
    assert not _resolves(live)
    assert time.monotonic() - started < 15  # rejected, not a hang per query
    assert live.cli("delete", "networkpolicy", "deny", "-n", "chg").returncode == 0
    assert _resolves(live)
