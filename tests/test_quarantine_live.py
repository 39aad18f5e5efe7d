"""`podnet quarantine` on a live cluster, as a security team uses it: connections open
before it (TCP both ways, a UDP flow) die at once; nothing new passes either way (pods,
the Service, DNS); the other pods are undisturbed and the Service answers through its
other endpoint; `--undo` brings back the very same policies, labels, endpoints and probe
matrix; `--keep-ingress-from` lets the debug pod in and nothing else; bad input is one
line, exit 2, nothing changed.

One cluster for the module; every test leaves it unquarantined.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from podnet.testing import Live, connect, live_cluster, namespace, pod, policy, service, udp_socket

pytestmark = pytest.mark.datapath

Q = "app/web-1"  # the compromised pod
ECHO = 7000  # a port no manifest declares: our own echo server, TCP and UDP
WEB = [{"name": "http", "containerPort": 8080}]
DOCS = [
    namespace("app"),
    namespace("dbg"),
    pod("app/web-1", labels={"app": "web"}, ports=WEB, node="node-1"),
    pod("app/web-2", labels={"app": "web"}, ports=WEB, node="node-2"),
    pod("app/client", labels={"app": "client"}, ports=WEB, node="node-2"),
    pod("app/other", labels={"app": "other"}, ports=WEB, node="node-1"),
    pod("dbg/tools", labels={"app": "tools"}, ports=WEB, node="node-2"),
    service("app/web", selector={"app": "web"}, ports=[{"port": 80, "targetPort": "http"}]),
    # An allow of everything for the web pods, and an isolation of `other` that admits
    # only the clients: quarantine must win over the first and leave the second alone.
    policy("app/allow-web", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]}),
    policy(
        "app/other",
        {
            "podSelector": {"matchLabels": {"app": "other"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}],
        },
    ),
]

# Echoes every TCP line and every UDP datagram back, keeping connections open.
SERVER = r"""
import socket, sys, threading
port = int(sys.argv[1])
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", port)); t.listen(16)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", port))
def tcp(c):
    try:
        while data := c.recv(4096):
            c.sendall(data)
    except OSError:
        pass
def udp():
    while True:
        data, peer = u.recvfrom(4096)
        u.sendto(data, peer)
def accept():
    while True:
        c, _ = t.accept()
        threading.Thread(target=tcp, args=(c,), daemon=True).start()
threading.Thread(target=udp, daemon=True).start()
threading.Thread(target=accept, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("quarantine")
    env = {"PODNET_RESYNC_SECONDS": "2"}
    with live_cluster(tmp, DOCS, "qr", nodes=2, up_args=("--cluster-dns", "on"), env=env) as lv:
        yield lv


@contextmanager
def echo_server(netns: str) -> Iterator[None]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", SERVER, str(ECHO)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield
    finally:
        proc.kill()
        proc.wait()
        for f in (proc.stdin, proc.stdout):
            if f:
                f.close()


def netns(live: Live, key: str) -> str:
    return str(live.pod(key)["netns"])


def ip(live: Live, key: str) -> str:
    return str(live.pod(key)["ip"])


def run(live: Live, *args: str) -> subprocess.CompletedProcess[str]:
    return live.cli(*args)


def state(live: Live) -> dict[str, Any]:
    """Policies, pods and EndpointSlices as `get -o json` shows them, without the fields a
    rewrite changes by itself (resourceVersion, creationTimestamp)."""
    out = {}
    for kind in ("networkpolicies", "pods", "endpointslices", "endpoints"):
        got = run(live, "get", kind, "-A", "-o", "json")
        assert got.returncode == 0, got.stderr
        doc = json.loads(got.stdout)
        for item in doc.get("items", []):
            item.get("metadata", {}).pop("resourceVersion", None)
            item.get("metadata", {}).pop("creationTimestamp", None)
        out[kind] = doc
    return out


def matrix(live: Live, *args: str) -> dict[tuple[str, str, int, str], bool]:
    got = run(live, "probe", "-o", "json", *args)
    assert got.returncode in (0, 1), got.stderr
    doc = json.loads(got.stdout)
    return {(r["from"], r["to"], r["port"], r["protocol"]): r["allowed"] for r in doc["results"]}


def quarantine(live: Live, *args: str) -> subprocess.CompletedProcess[str]:
    return run(live, "quarantine", *args)


def test_quarantine_cuts_isolates_and_undo_restores(live: Live) -> None:
    before_state, before = state(live), matrix(live)
    client, q = netns(live, "app/client"), netns(live, Q)
    with echo_server(q), echo_server(client):
        inbound = connect(client, ip(live, Q), ECHO)  # client -> Q, TCP
        outbound = connect(q, ip(live, "app/client"), ECHO)  # Q -> client, TCP
        flow = udp_socket(client, timeout=2.0)  # client -> Q, UDP
        flow.connect((ip(live, Q), ECHO))
        for s in (inbound, outbound):
            s.sendall(b"before\n")
            assert s.recv(100) == b"before\n"
        flow.send(b"before")
        assert flow.recv(100) == b"before"

        done = quarantine(live, Q)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"{Q} is quarantined: every attempt blocked" in done.stdout
        assert "service app/web: web-1 not ready; ready endpoints: web-2" in done.stdout

        # Open connections die at once: a reset (TCP) or an ICMP error (UDP), no hang.
        for s in (inbound, outbound):
            started = time.monotonic()
            with pytest.raises(OSError) as err:
                s.sendall(b"after\n")
                if not s.recv(100):
                    raise ConnectionResetError("closed")
            assert err.value.errno in (errno.ECONNRESET, errno.EPIPE, None), err.value
            assert time.monotonic() - started < 1.0
            s.close()
        started = time.monotonic()
        with pytest.raises(OSError) as err:
            flow.send(b"after")
            flow.recv(100)
        assert err.value.errno in (errno.EHOSTUNREACH, errno.ECONNREFUSED, errno.EACCES)
        assert time.monotonic() - started < 1.0
        flow.close()
        # ... and new ones do not open, either way.
        with pytest.raises(OSError):
            connect(client, ip(live, Q), ECHO, timeout=1.0).close()
        with pytest.raises(OSError):
            connect(q, ip(live, "app/client"), ECHO, timeout=1.0).close()

    during = matrix(live)
    assert during.keys() == before.keys()
    for (src, dst, port, proto), allowed in during.items():
        if src == dst:
            continue
        if Q in (src, dst):
            assert not allowed, (src, dst, port, proto)  # DNS (the coredns pod) included
        else:
            assert allowed == before[(src, dst, port, proto)], (src, dst, port, proto)
    # DNS through its Service, and the Service of the pod: blocked from Q, served by web-2.
    dns = matrix(live, "--via", "service", "--from", Q, "--to", "svc/kube-system/kube-dns")
    assert dns and not any(dns.values())
    via = run(live, "probe", "-o", "json", "--via", "service", "--from", "app/client")
    served = [r for r in json.loads(via.stdout)["results"] if r["to"] == "svc/app/web"]
    assert served and all(r["allowed"] and r["outcome"] == "reply" for r in served), served
    web = run(live, "exec", "app/client", "--", "python3", "-c", CURL_SERVICE)
    assert web.returncode == 0, web.stderr
    assert set(web.stdout.split()) == {"web-2"}

    undone = quarantine(live, Q, "--undo")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert state(live) == before_state
    assert matrix(live) == before


# Ten new connections to the Service's ClusterIP by name (cluster DNS), each answered by the
# stand-in's HTTP JSON naming its pod.
CURL_SERVICE = r"""
import json, socket
for _ in range(10):
    s = socket.create_connection(("web.app.svc.cluster.local", 80), timeout=2)
    s.sendall(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n"); data = b""
    while chunk := s.recv(65536):
        data += chunk
    print(json.loads(data.partition(b"\r\n\r\n")[2])["pod"])
"""


def test_keep_ingress_from_lets_the_debug_pod_in_and_nothing_else(live: Live) -> None:
    before = matrix(live)
    done = quarantine(live, Q, "--keep-ingress-from", "dbg/tools")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kept: dbg/tools -> app/web-1 8080/TCP: passed" in done.stdout
    try:
        during = matrix(live)
        for (src, dst, _, _), allowed in during.items():
            if src != dst and Q in (src, dst):
                assert allowed == (src == "dbg/tools"), (src, dst)
    finally:
        undone = quarantine(live, Q, "--undo")
    assert undone.returncode == 0, undone.stderr
    assert matrix(live) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("app/nope",), 'Pod "nope" not found in namespace app'),
        ((Q, "--undo"), "not quarantined"),
        (("web-1",), "expected namespace/pod"),
        ((Q, "--keep-ingress-from", "dbg/nope"), "pod 'dbg/nope' not found"),
    ],
    ids=["unknown-pod", "undo-not-quarantined", "no-namespace", "unknown-debug-pod"],
)
def test_bad_input_is_one_line_exit_2_nothing_changed(
    live: Live, args: tuple[str, ...], message: str
) -> None:
    before = state(live)
    got = quarantine(live, *args)
    assert got.returncode == 2, got.stdout + got.stderr
    assert got.stderr.count("\n") == 1 and message in got.stderr, got.stderr
    assert state(live) == before


def test_quarantine_twice_is_refused(live: Live) -> None:
    assert quarantine(live, Q).returncode == 0
    try:
        held = state(live)
        again = quarantine(live, Q)
        assert again.returncode == 2
        assert again.stderr.count("\n") == 1 and "already quarantined" in again.stderr
        assert state(live) == held
    finally:
        assert quarantine(live, Q, "--undo").returncode == 0


def test_flows_attributes_the_reset_of_an_open_connection_to_the_quarantine(
    live: Live,
) -> None:
    """The reset that cuts a connection open before the quarantine is logged with the
    flow log's reject tag: `flows` names the quarantine policy as the one that blocked it,
    and no other policy selecting the pod (allow-web admits everything into it)."""
    from podnet.flowlog import history
    from podnet.flowlog.flow_record import Flow

    def flows_of(port: int, after: int) -> list[Flow]:
        """This connection's flows numbered after `after`, waited for (the collector runs
        at nice 10: on a loaded machine its records come late)."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            found = [
                r
                for r in history.recent(live.sdir)
                if isinstance(r, Flow)
                and r.seq > after
                and (r.src.name, r.src.port, r.dst.name, r.dst.port)
                == ("app/client", port, Q, ECHO)
            ]
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"no flow of port {port}: {history.recent(live.sdir)[-10:]}")

    client, q = netns(live, "app/client"), netns(live, Q)
    with echo_server(q):
        s = connect(client, ip(live, Q), ECHO)
        s.sendall(b"before\n")
        assert s.recv(100) == b"before\n"
        port = s.getsockname()[1]
        opened = flows_of(port, 0)  # the connection itself, admitted by allow-web
        assert opened[-1].ingress is not None and opened[-1].ingress.policy == "app/allow-web"
        assert quarantine(live, Q).returncode == 0
        try:
            with pytest.raises(OSError):
                s.sendall(b"after\n")
                if not s.recv(100):
                    raise ConnectionResetError("closed")
            s.close()
            later = flows_of(port, opened[-1].seq)
            time.sleep(1.0)  # and whatever else the collector writes of it
            later = flows_of(port, opened[-1].seq)
            blocked = [f for f in later if f.verdict == "blocked"]
            assert blocked, later
            for f in blocked:
                assert f.ingress is not None and f.ingress.verdict == "blocked", f
                assert f.ingress.policies == ("app/quarantine-web-1",), f
            for f in later:  # nothing after the cut says a policy admitted it
                assert f.ingress is None or f.ingress.policy is None, f
            shown = run(live, "flows", "--from", "app/client", "--to", Q, "--limit", "0")
            assert shown.returncode == 0, shown.stderr
            line = [ln for ln in shown.stdout.splitlines() if f":{port})" in ln]
            assert line and "in: BLOCKED by app/quarantine-web-1" in line[-1], shown.stdout
        finally:
            assert quarantine(live, Q, "--undo").returncode == 0
