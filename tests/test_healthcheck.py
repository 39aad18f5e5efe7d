"""kube-proxy's healthCheckNodePort answer, as bytes; and its entries in runtime.json."""

from __future__ import annotations

import json
from pathlib import Path

from podnet.model.cluster import load_cluster
from podnet.render import runtime as rt
from podnet.render.runtime import HealthCheck
from podnet.state.placement import place
from podnet.workload.healthcheck import response

ROOT = Path(__file__).resolve().parent.parent


def test_response_200_with_local_endpoints_503_without() -> None:
    for n, status in ((2, b"HTTP/1.1 200 OK"), (0, b"HTTP/1.1 503 Service Unavailable")):
        raw = response(HealthCheck("ns", "web", "node-1", "x", "172.18.0.2", 32000, n))
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(status)
        assert f"X-Load-Balancing-Endpoint-Weight: {n}".encode() in head
        assert b"Content-Type: application/json" in head
        assert json.loads(body) == {
            "service": {"namespace": "ns", "name": "web"},
            "localEndpoints": n,
            "serviceProxyHealthy": True,
        }


def test_runtime_lists_each_node_with_its_local_endpoints() -> None:
    c = load_cluster([str(ROOT / "examples" / "services")])
    r = rt.build(c, place(c), "demo", "host-gw")
    got = {(h.name, h.node, h.port, h.local_endpoints) for h in r.health_checks}
    assert got == {("lb-local", "node-1", 32100, 1), ("lb-local", "node-2", 32100, 0)}
    assert rt.parse(json.loads(rt.dumps(r))).health_checks == r.health_checks
