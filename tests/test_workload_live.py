"""The workload stand-in answering from the pod namespaces of a real cluster (`podnet up`):
TCP line, HTTP JSON (no NAT), UDP, localhost-only ports, hostNetwork pods, SCTP reported.
Needs root."""

from __future__ import annotations

import json
import socket
import time

import pytest

from podnet.daemon import supervisor
from podnet.datapath.netns import entered
from podnet.testing import Live, connect, live_cluster, namespace, pod, read_all, udp_socket
from podnet.workload.listeners import sctp_unsupported

pytestmark = pytest.mark.datapath

DOCS = [
    namespace("shop"),
    namespace("kube-system"),
    pod(
        "shop/web",
        containers={
            "app": [
                {"containerPort": 8080, "name": "http"},
                {"containerPort": 5353, "protocol": "UDP"},
            ],
            "side": [{"containerPort": 9000}, {"containerPort": 9001, "protocol": "UDP"}],
            "tel": [{"containerPort": 7777, "protocol": "SCTP"}],
        },
        annotations={"podnet.io/localhost-ports": "9000, 9001/UDP"},
    ),
    pod("shop/client"),  # no ports at all
    pod(
        "kube-system/agent",
        containers={"agent": [{"containerPort": 10250}]},
        node="node-1",
        host_network=True,
    ),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with live_cluster(tmp_path_factory.mktemp("workload"), DOCS, "pwl", nodes=1) as cluster:
        yield cluster


def ns(live: Live, pod: str) -> str:
    return live.pod(f"shop/{pod}")["netns"]


def web_ip(live: Live) -> str:
    return live.pod_ips()["shop/web"]


def test_every_pod_is_ready(live):
    ready = json.loads((live.sdir / "ready.json").read_text())
    assert ready == {"shop/web": True, "shop/client": True, "kube-system/agent": True}


def test_silent_tcp_client_gets_the_identity_line_fast(live):
    started = time.monotonic()
    with connect(ns(live, "client"), web_ip(live), 8080) as s:
        assert read_all(s) == b"shop/web app\n"
    assert time.monotonic() - started < 0.5


def test_non_http_bytes_get_the_line_at_once(live):
    with connect(ns(live, "client"), web_ip(live), 8080) as s:
        s.sendall(b"hello\n")
        assert read_all(s) == b"shop/web app\n"


def test_http_json_shows_the_client_ip_unchanged(live):
    web, client = web_ip(live), live.pod_ips()["shop/client"]
    with connect(ns(live, "client"), web, 8080) as s:
        me = "{}:{}".format(*s.getsockname())
        s.sendall(b"GET /hello?x=1 HTTP/1.1\r\nHost: web.shop\r\nUser-Agent: t\r\n\r\n")
        head, body = read_all(s).split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK")
    doc = json.loads(body)
    assert me.startswith(client + ":")
    assert doc == {
        "namespace": "shop",
        "pod": "web",
        "container": "app",
        "node": "node-1",
        "podIP": web,
        "client": me,  # no NAT: the server sees the client pod's own address and port
        "host": "web.shop",
        "path": "/hello?x=1",
        "headers": {"Host": "web.shop", "User-Agent": "t"},
    }


def test_udp_datagram_gets_the_line(live):
    web = web_ip(live)
    with udp_socket(ns(live, "client")) as u:
        u.sendto(b"ping", (web, 5353))
        data, peer = u.recvfrom(100)
    assert (data, peer) == (b"shop/web app\n", (web, 5353))


def test_localhost_port_reachable_from_the_pod_over_loopback(live):
    with connect(ns(live, "web"), "127.0.0.1", 9000) as s:
        assert read_all(s) == b"shop/web side\n"
    with udp_socket(ns(live, "web")) as u:
        u.sendto(b"ping", ("127.0.0.1", 9001))
        assert u.recvfrom(100)[0] == b"shop/web side\n"


def test_localhost_port_refused_from_outside_the_pod(live):
    web = web_ip(live)
    with pytest.raises(ConnectionRefusedError):
        connect(ns(live, "client"), web, 9000)
    with pytest.raises(ConnectionRefusedError):
        connect(ns(live, "web"), web, 9000)  # not even from the pod, via its own IP
    with udp_socket(ns(live, "client"), timeout=0.5) as u:
        u.connect((web, 9001))
        u.send(b"ping")
        with pytest.raises((ConnectionRefusedError, TimeoutError)):  # ICMP port unreachable
            u.recv(100)


def test_host_network_pod_is_served_in_the_node_namespace(live):
    agent = live.pod("kube-system/agent")
    assert agent["netns"] == live.node_netns()["node-1"]
    assert agent["ip"] == live.node_ips()["node-1"]
    with connect(ns(live, "client"), agent["ip"], 10250) as s:
        assert read_all(s) == b"kube-system/agent agent\n"


def test_undeclared_port_is_refused(live):
    with pytest.raises(ConnectionRefusedError):
        connect(ns(live, "client"), web_ip(live), 8081)


@pytest.mark.skipif(sctp_unsupported() is None, reason="this kernel has SCTP")
def test_sctp_is_reported_once_and_the_rest_is_served(live):
    lines = [w for w in supervisor.warnings(live.sdir) if "SCTP" in w]
    assert len(lines) == 1
    assert "not supported by this kernel" in lines[0]
    assert "shop/web tel 7777/SCTP" in lines[0]


def test_many_connections_one_after_another(live):
    """300 connections in a row, each answered (the rate is printed, not bounded: a figure
    belongs in bench/, and a loaded machine would make a bound flaky)."""
    n, web = 300, web_ip(live)
    started = time.monotonic()
    with entered(ns(live, "client")):
        socks = [socket.socket() for _ in range(n)]
    for s in socks:
        with s:
            s.settimeout(2)
            s.connect((web, 8080))
            s.sendall(b"x")
            assert s.recv(100) == b"shop/web app\n"
    print(f"{n / (time.monotonic() - started):.0f} connections/s")


def test_the_daemon_logs_what_it_does(live):
    log = (live.sdir / "daemon.log").read_text()
    assert "serving 3 pod(s) with" in log
    assert "all 3 ready" in log
