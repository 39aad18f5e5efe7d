"""Services on a live cluster: ClusterIPs and EndpointSlices in the store, readiness as the
kubelet decides it (probes run against the pods), endpoints following a pod that stops and
starts serving (`podnet serve`)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from podnet.testing import Live, live_cluster, namespace, pod, service

pytestmark = pytest.mark.datapath


def _probed(key: str, probe: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    doc = pod(key, labels, ports=[{"name": "http", "containerPort": 8080}])
    doc["spec"]["containers"][0]["readinessProbe"] = {
        "periodSeconds": 1,
        "failureThreshold": 1,
        **probe,
    }
    return doc


WEB = {"app": "web"}
DOCS = [
    namespace("svc"),
    _probed("svc/tcp", {"tcpSocket": {"port": "http"}}, WEB),
    _probed("svc/http", {"httpGet": {"port": 8080, "path": "/healthz"}}, WEB),
    _probed("svc/never", {"tcpSocket": {"port": 9999}}, WEB),  # nothing serves 9999
    _probed("svc/exec-ok", {"exec": {"command": ["true"]}}, WEB),
    _probed("svc/exec-bad", {"exec": {"command": ["false"]}}, WEB),
    pod("svc/plain", WEB, ports=[{"name": "http", "containerPort": 8080}]),
    {
        **pod("svc/sick", WEB, ports=[{"name": "http", "containerPort": 8080}]),
        "status": {"conditions": [{"type": "Ready", "status": "False"}]},
    },
    service("svc/web", WEB, ports=[{"name": "http", "port": 80, "targetPort": "http"}]),
    service("svc/all", WEB, publishNotReadyAddresses=True),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    with live_cluster(
        tmp_path_factory.mktemp("svcready"), DOCS, "psvc", nodes=2, up_args=["--cluster-dns", "on"]
    ) as c:
        yield c


def _slices(live: Live, svc: str) -> dict[str, dict[str, Any]]:
    out = live.cli("get", "endpointslices", "-n", "svc", "-o", "json")
    assert out.returncode == 0, out.stderr
    items = json.loads(out.stdout)["items"]
    return {
        e["targetRef"]["name"]: e["conditions"]
        for s in items
        if s["metadata"]["labels"]["kubernetes.io/service-name"] == svc
        for e in s.get("endpoints", [])
    }


def _ready(live: Live, svc: str = "web") -> set[str]:
    return {name for name, c in _slices(live, svc).items() if c["ready"]}


def test_readiness_decides_the_ready_endpoints(live: Live) -> None:
    assert _ready(live) == {"tcp", "http", "exec-ok", "plain"}
    conds = _slices(live, "all")
    assert set(conds) == {"tcp", "http", "never", "exec-ok", "exec-bad", "plain", "sick"}
    assert all(c["ready"] for c in conds.values())  # publishNotReadyAddresses
    assert not conds["never"]["serving"]
    out = live.cli("get", "pods", "-n", "svc")
    rows = {line.split()[0]: line.split()[1] for line in out.stdout.splitlines()[1:]}
    assert rows["never"] == "0/1" and rows["tcp"] == "1/1" and rows["sick"] == "0/1"


def test_service_gets_a_cluster_ip_and_kube_dns_exists(live: Live) -> None:
    out = live.cli("get", "services", "-A")
    lines = {tuple(line.split()[:2]): line.split() for line in out.stdout.splitlines()[1:]}
    assert lines[("kube-system", "kube-dns")][3] == "10.96.0.10"
    assert lines[("svc", "web")][3].startswith("10.")
    eps = live.cli("get", "endpoints", "web", "-n", "svc").stdout
    assert ":8080" in eps


def _until(check, timeout: float = 10.0) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_pod_that_stops_serving_leaves_the_endpoints_and_comes_back(live: Live) -> None:
    out = live.cli("serve", "svc/tcp", "--stop", "8080/TCP")
    assert out.returncode == 0, out.stderr
    left = _until(lambda: "tcp" not in _ready(live))
    out = live.cli("serve", "svc/tcp", "--start", "8080")
    assert out.returncode == 0, out.stderr
    back = _until(lambda: "tcp" in _ready(live))
    # periodSeconds 1, failureThreshold 1: the kubelet notices within about a second.
    assert left < 4 and back < 4, (left, back)
    bad = live.cli("serve", "svc/tcp", "--stop", "1234/TCP")
    assert bad.returncode == 2 and "declares no containerPort 1234/TCP" in bad.stderr
