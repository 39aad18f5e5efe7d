"""The workload stand-in answering from real pod namespaces: TCP line, HTTP JSON (no NAT),
UDP, localhost-only ports, hostNetwork pods, SCTP reported. Needs root."""

from __future__ import annotations

import json
import socket
import time

import pytest

from podnet.daemon import supervisor
from podnet.datapath.netns import entered
from podnet.testing import Live, Topology, connect, live_cluster, read_all, udp_socket
from podnet.workload.listeners import sctp_unsupported

pytestmark = pytest.mark.datapath

WEB, CLIENT, NODE_IP = "10.244.0.5", "10.244.0.6", "172.18.0.2"


def build(t: Topology) -> None:
    t.add_node("n1", NODE_IP)
    t.add_pod(
        "n1",
        "shop",
        "web",
        WEB,
        {
            "app": [(8080, "TCP", "http"), (5353, "UDP")],
            "side": [(9000, "TCP"), (9001, "UDP")],
            "tel": [(7777, "SCTP")],
        },
        {"podnet.io/localhost-ports": "9000, 9001/UDP"},
    )
    t.add_pod("n1", "shop", "client", CLIENT)
    t.add_host_network_pod("n1", "kube-system", "agent", {"agent": [(10250, "TCP")]})


@pytest.fixture(scope="module")
def live():
    with live_cluster(build) as cluster:
        yield cluster


def ns(live: Live, pod: str) -> str:
    return live.topology.netns(f"shop-{pod}")


def test_every_pod_is_ready(live):
    ready = json.loads((live.root / "ready.json").read_text())
    assert ready == {"shop/web": True, "shop/client": True, "kube-system/agent": True}


def test_silent_tcp_client_gets_the_identity_line_fast(live):
    started = time.monotonic()
    with connect(ns(live, "client"), WEB, 8080) as s:
        assert read_all(s) == b"shop/web app\n"
    assert time.monotonic() - started < 0.5


def test_non_http_bytes_get_the_line_at_once(live):
    with connect(ns(live, "client"), WEB, 8080) as s:
        s.sendall(b"hello\n")
        assert read_all(s) == b"shop/web app\n"


def test_http_json_shows_the_client_ip_unchanged(live):
    with connect(ns(live, "client"), WEB, 8080) as s:
        me = "{}:{}".format(*s.getsockname())
        s.sendall(b"GET /hello?x=1 HTTP/1.1\r\nHost: web.shop\r\nUser-Agent: t\r\n\r\n")
        head, body = read_all(s).split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK")
    doc = json.loads(body)
    assert me.startswith(CLIENT + ":")
    assert doc == {
        "namespace": "shop",
        "pod": "web",
        "container": "app",
        "node": "n1",
        "podIP": WEB,
        "client": me,  # no NAT: the server sees the client pod's own address and port
        "host": "web.shop",
        "path": "/hello?x=1",
        "headers": {"Host": "web.shop", "User-Agent": "t"},
    }


def test_udp_datagram_gets_the_line(live):
    with udp_socket(ns(live, "client")) as u:
        u.sendto(b"ping", (WEB, 5353))
        data, peer = u.recvfrom(100)
    assert (data, peer) == (b"shop/web app\n", (WEB, 5353))


def test_localhost_port_reachable_from_the_pod_over_loopback(live):
    with connect(ns(live, "web"), "127.0.0.1", 9000) as s:
        assert read_all(s) == b"shop/web side\n"
    with udp_socket(ns(live, "web")) as u:
        u.sendto(b"ping", ("127.0.0.1", 9001))
        assert u.recvfrom(100)[0] == b"shop/web side\n"


def test_localhost_port_refused_from_outside_the_pod(live):
    with pytest.raises(ConnectionRefusedError):
        connect(ns(live, "client"), WEB, 9000)
    with pytest.raises(ConnectionRefusedError):
        connect(ns(live, "web"), WEB, 9000)  # not even from the pod, via its own IP
    with udp_socket(ns(live, "client"), timeout=0.5) as u:
        u.connect((WEB, 9001))
        u.send(b"ping")
        with pytest.raises((ConnectionRefusedError, TimeoutError)):  # ICMP port unreachable
            u.recv(100)


def test_host_network_pod_is_served_in_the_node_namespace(live):
    with connect(ns(live, "client"), NODE_IP, 10250) as s:
        assert read_all(s) == b"kube-system/agent agent\n"


def test_undeclared_port_is_refused(live):
    with pytest.raises(ConnectionRefusedError):
        connect(ns(live, "client"), WEB, 8081)


@pytest.mark.skipif(sctp_unsupported() is None, reason="this kernel has SCTP")
def test_sctp_is_reported_once_and_the_rest_is_served(live):
    lines = [w for w in supervisor.warnings(live.root) if "SCTP" in w]
    assert len(lines) == 1
    assert "not supported by this kernel" in lines[0]
    assert "shop/web tel 7777/SCTP" in lines[0]


def test_many_connections_per_second(live):
    n = 300
    started = time.monotonic()
    with entered(ns(live, "client")):
        socks = [socket.socket() for _ in range(n)]
    for s in socks:
        with s:
            s.settimeout(2)
            s.connect((WEB, 8080))
            s.sendall(b"x")
            assert s.recv(100) == b"shop/web app\n"
    rate = n / (time.monotonic() - started)
    assert rate > 200, f"{rate:.0f} connections/s"


def test_the_daemon_logs_what_it_does(live):
    log = (live.root / "daemon.log").read_text()
    assert "serving 3 pod(s) with" in log
    assert "all 3 ready" in log
