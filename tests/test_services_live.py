"""Services on a live cluster (examples/services: selectorless Services with their own
EndpointSlices): real packets through the kube-proxy rules of each node, answered by the
workload stand-in, whose HTTP answer names the pod and the peer address it saw.

One cluster for the module; the tests that change it (policies, slices) run last and
restore what they changed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from podnet.render import kernel_names
from podnet.testing import Live, example_docs, in_netns, live_cluster

pytestmark = pytest.mark.datapath

INTERNET = "203.0.113.2"
NODE1, NODE2 = "172.18.0.2", "172.18.0.3"

# Connects COUNT times (each a new connection from a new source port) and prints one JSON
# line per attempt: the pod that answered and the client address it saw, or the error.
CLIENT = r"""
import json, socket, sys, time
ip, port, proto, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 2.0
out = []
for _ in range(count):
    t0 = time.monotonic()
    try:
        if proto == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(timeout)
            s.connect((ip, port)); s.send(b"hi\n")
            out.append({"line": s.recv(200).decode().strip()})
        else:
            s = socket.create_connection((ip, port), timeout=timeout)
            s.sendall(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n"); data = b""
            while chunk := s.recv(65536):
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            if head.startswith(b"HTTP/1.1 200"):
                doc = json.loads(body)
                out.append({"pod": doc["pod"], "client": doc["client"].rsplit(":", 1)[0]})
            else:
                out.append({"line": data.decode().strip()})
        s.close()
    except OSError as e:
        out.append({"error": type(e).__name__, "errno": e.errno})
    out[-1]["seconds"] = round(time.monotonic() - t0, 3)
print(json.dumps(out))
"""


def docs() -> list[dict[str, Any]]:
    return example_docs("services")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("svc")
    env = {"PODNET_RESYNC_SECONDS": "2"}
    up = ("--cluster-dns", "on")  # the kube-dns Service and its pod, as `up` adds them
    with live_cluster(tmp, docs(), "svc", nodes=2, up_args=up, env=env) as lv:
        yield lv


def pod_ns(live: Live, key: str) -> str:
    return str(live.pod(key)["netns"])


def where(live: Live, src: str) -> str:
    if src == "internet":
        return str(live.runtime()["internet"]["netns"])
    if src.startswith("node/"):
        return live.node_netns()[src.removeprefix("node/")]
    return pod_ns(live, src)


def hits(
    live: Live, src: str, ip: str, port: int, proto: str = "tcp", count: int = 1, timeout: float = 2
) -> list[dict[str, Any]]:
    out = in_netns(
        where(live, src),
        sys.executable,
        "-c",
        CLIENT,
        ip,
        str(port),
        proto,
        str(count),
        str(timeout),
        timeout=60 + count * timeout,
    )
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def one(live: Live, src: str, ip: str, port: int, proto: str = "tcp", timeout: float = 2) -> dict:
    return hits(live, src, ip, port, proto, 1, timeout)[0]


def pods_of(results: list[dict[str, Any]]) -> set[str]:
    return {r.get("pod") or r.get("line", "").split(" ")[0].split("/")[-1] for r in results}


def test_cluster_ip_tcp_and_udp_target_port_by_name_per_pod(live: Live) -> None:
    # web-1 serves http on 8080, web-2 on 8081: both answer through port 80
    tcp = hits(live, "svc-demo/client", "10.96.1.10", 80, count=40)
    assert pods_of(tcp) == {"web-1", "web-2"}, tcp
    assert {r["client"] for r in tcp} == {"10.244.1.20"}  # a pod client: no SNAT
    udp = hits(live, "svc-demo/client-2", "10.96.1.10", 53, "udp", count=40)
    assert pods_of(udp) == {"web-1", "web-2"}, udp


def test_even_spread_chi_square(live: Live) -> None:
    n = 400
    got = Counter(r.get("pod") for r in hits(live, "svc-demo/client-2", "10.96.1.10", 80, count=n))
    assert set(got) == {"web-1", "web-2"}, got
    chi2 = sum((c - n / 2) ** 2 / (n / 2) for c in got.values())
    print(f"spread over {n} connections: {dict(got)}, chi2 = {chi2:.2f}")
    assert chi2 < 10.83, got  # 1 degree of freedom, p = 0.001


def test_client_ip_affinity(live: Live) -> None:
    for client in ("svc-demo/client", "svc-demo/client-2"):
        res = hits(live, client, "10.96.1.11", 80, count=30)
        assert len(pods_of(res)) == 1 and pods_of(res) <= {"web-1", "web-2"}, res
    # the not-ready endpoint (client-2 itself) is never chosen, affinity or not
    assert "client-2" not in pods_of(hits(live, "svc-demo/client-2", "10.96.1.11", 80, count=10))


@pytest.mark.parametrize("src", ["svc-demo/client", "svc-demo/client-2", "node/node-1"])
def test_no_endpoints_is_refused_at_once(live: Live, src: str) -> None:
    tcp = one(live, src, "10.96.1.12", 80)
    assert tcp["error"] == "ConnectionRefusedError" and tcp["seconds"] < 0.5, tcp


def test_hairpin(live: Live) -> None:
    r = one(live, "svc-demo/client", "10.96.1.17", 90)
    # masqueraded: the reply must come back through the node to be un-NATed
    assert (r.get("pod"), r.get("client")) == ("client", NODE1), r


@pytest.mark.parametrize("src", ["internet", "svc-demo/client", "svc-demo/client-2", "node/node-2"])
@pytest.mark.parametrize("node_ip", [NODE1, NODE2])
def test_node_port_from_everywhere(live: Live, src: str, node_ip: str) -> None:
    r = one(live, src, node_ip, 30080)
    assert r.get("pod") == "web-1", r


def test_load_balancer_from_internet(live: Live) -> None:
    res = hits(live, "internet", "172.18.255.11", 80, count=10)  # Cluster: SNATed by a node
    assert pods_of(res) == {"web-2"} and {r["client"] for r in res} <= {NODE1, NODE2}, res
    local = one(live, "internet", "172.18.255.10", 80)  # Local: the client is kept
    assert (local.get("pod"), local.get("client")) == ("web-1", INTERNET), local
    fabric = in_netns(str(live.runtime()["fabric"]["netns"]), "ip", "route").stdout
    assert f"172.18.255.10 via {NODE1}" in fabric and "nexthop via" in fabric, fabric


def test_external_traffic_policy_local_and_health_check(live: Live) -> None:
    here = one(live, "internet", NODE1, 30090)
    assert (here.get("pod"), here.get("client")) == ("web-1", INTERNET), here
    there = one(live, "internet", NODE2, 30090, timeout=1)  # no local endpoint: dropped
    assert there.get("error") == "TimeoutError", there
    # a pod on node-2 is not an external client: it uses every endpoint
    assert one(live, "svc-demo/client-2", NODE2, 30090).get("pod") == "web-1"
    health = {}
    for ip in (NODE1, NODE2):
        out = in_netns(
            where(live, "internet"),
            sys.executable,
            "-c",
            "import urllib.request, urllib.error, sys, json\n"
            "try:\n r = urllib.request.urlopen(sys.argv[1], timeout=3); code, body = r.status, r.read()\n"
            "except urllib.error.HTTPError as e:\n code, body = e.code, e.read()\n"
            "print(json.dumps([code, json.loads(body)]))",
            f"http://{ip}:32100/healthz",
        )
        health[ip] = json.loads(out.stdout)
    svc = {"namespace": "svc-demo", "name": "lb-local"}
    assert health[NODE1] == [
        200,
        {"service": svc, "localEndpoints": 1, "serviceProxyHealthy": True},
    ]
    assert health[NODE2] == [
        503,
        {"service": svc, "localEndpoints": 0, "serviceProxyHealthy": True},
    ]


def test_internal_traffic_policy_local(live: Live) -> None:
    assert pods_of(hits(live, "svc-demo/client", "10.96.1.16", 80, count=5)) == {"web-1"}
    far = one(live, "svc-demo/client-2", "10.96.1.16", 80, timeout=1)  # none on node-2
    assert far.get("error") == "TimeoutError", far


def test_headless_gets_no_rules(live: Live) -> None:
    rules = in_netns(live.node_netns()["node-1"], "nft", "list", "ruleset").stdout
    assert "svc-demo/web/tcp/http" in rules and "headless" not in rules


def test_policy_judges_the_endpoint_after_dnat(live: Live) -> None:
    """A policy admitting only namespace svc-demo to the web pods, reached through the
    ClusterIP: the endpoint's node (node-1 or node-2) judges the real source."""
    live.apply(
        [
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "only-demo", "namespace": "svc-demo"},
                "spec": {
                    "podSelector": {"matchLabels": {"app": "web"}},
                    "ingress": [
                        {
                            "from": [
                                {
                                    "namespaceSelector": {
                                        "matchLabels": {"kubernetes.io/metadata.name": "svc-demo"}
                                    }
                                }
                            ]
                        }
                    ],
                },
            }
        ]
    )
    try:
        ok = hits(live, "svc-demo/client-2", "10.96.1.10", 80, count=20)
        assert pods_of(ok) == {"web-1", "web-2"}, ok
        denied = hits(live, "other/outsider", "10.96.1.10", 80, count=20)
        # admin-prohibited: EHOSTUNREACH at once, from either endpoint's node
        assert {r.get("error") for r in denied} == {"OSError"}, denied
        assert {r["errno"] for r in denied} == {113}, denied
    finally:
        assert live.cli("delete", "networkpolicy", "only-demo", "-n", "svc-demo").returncode == 0


def test_node_port_from_internet_against_an_ipblock_policy(live: Live) -> None:
    """ipBlock 203.0.113.0/24 admitted: NodePort traffic keeps its client address where
    it is judged before SNAT (externalTrafficPolicy Local; or Cluster, with the endpoint on
    the node the client reached); through another node it arrives SNATed and is refused."""
    live.apply(
        [
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "from-internet", "namespace": "svc-demo"},
                "spec": {
                    "podSelector": {"matchLabels": {"app": "web"}},
                    "ingress": [{"from": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}],
                },
            }
        ]
    )
    try:
        assert one(live, "internet", NODE1, 30090).get("client") == INTERNET  # Local
        assert one(live, "internet", NODE1, 30080).get("pod") == "web-1"  # Cluster, same node
        snat = one(live, "internet", NODE2, 30080)  # Cluster via node-2: source is node-2
        assert snat.get("errno") == 113, snat
        assert one(live, "svc-demo/client", "10.96.1.10", 80, timeout=1).get("errno") == 113
    finally:
        assert (
            live.cli("delete", "networkpolicy", "from-internet", "-n", "svc-demo").returncode == 0
        )


UDP_HOLD = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.bind(("0.0.0.0", 41234)); s.connect(("10.96.1.10", 53))
s.send(b"hi\n"); print(s.recv(200).decode().split()[0], flush=True)
sys.stdin.readline()  # the test changes the slices meanwhile
s.send(b"hi\n"); print(s.recv(200).decode().split()[0], flush=True)
"""


def _slices(keep: str) -> list[dict[str, Any]]:
    return [d for d in docs() if d["kind"] == "EndpointSlice" and d["metadata"]["name"] == keep]


def test_stale_udp_conntrack_is_cleared(live: Live) -> None:
    """A UDP client keeps its source port: its conntrack entry would keep sending it to the
    endpoint chosen first. When that endpoint leaves the slices (the pod still answers!),
    the sync deletes the entry and the next datagram goes to the remaining endpoint."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", pod_ns(live, "svc-demo/client"), sys.executable, "-c", UDP_HOLD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        first = proc.stdout.readline().strip()  # "svc-demo/web-1" or "svc-demo/web-2"
        assert first in ("svc-demo/web-1", "svc-demo/web-2")
        gone = "web-a" if first.endswith("web-1") else "web-b"
        keep = "web-b" if gone == "web-a" else "web-a"
        assert live.cli("delete", "endpointslice", gone, "-n", "svc-demo").returncode == 0
        time.sleep(0.2)
        proc.stdin.write("\n")
        proc.stdin.flush()
        second = proc.stdout.readline().strip()
        log = (live.sdir / "daemon.log").read_text()[-1500:]
        assert second != first and second.startswith("svc-demo/web-"), (first, second, log)
        assert "stale UDP conntrack entries deleted" in log, log
    finally:
        proc.kill()
        proc.communicate()
    live.apply(_slices(gone))
    assert len(_slices(keep)) == 1


def test_a_selector_service_with_the_controllers_slices(live: Live) -> None:
    """The control plane's own slices (targetPort by name, resolved per pod) drive the rules
    as the hand-written ones do; its ClusterIP allocated; once deleted, nothing answers."""
    live.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "by-selector", "namespace": "svc-demo"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
            }
        ]
    )
    out = live.cli("get", "services", "-n", "svc-demo", "-o", "json")
    items = json.loads(out.stdout)["items"]
    ip = next(s["spec"]["clusterIP"] for s in items if s["metadata"]["name"] == "by-selector")
    assert pods_of(hits(live, "svc-demo/client", ip, 80, count=30)) == {"web-1", "web-2"}
    assert live.cli("delete", "service", "by-selector", "-n", "svc-demo").returncode == 0
    gone = one(live, "svc-demo/client", ip, 80, timeout=1)
    assert gone.get("error") in ("TimeoutError", "OSError", "ConnectionRefusedError"), gone


def test_cluster_dns_answers_through_its_cluster_ip(live: Live) -> None:
    """kube-dns (10.96.0.10, UDP and TCP 53) is a Service like any other: the query is
    DNATed to the DNS pod the control plane added (ready a few seconds after `up`)."""
    for transport in ("+notcp", "+tcp"):
        deadline = time.monotonic() + 20
        while True:
            out = in_netns(
                pod_ns(live, "svc-demo/client"),
                "dig", "+short", "+time=1", "+tries=1", transport, "@10.96.0.10",
                "web.svc-demo.svc.cluster.local",
            )  # fmt: skip
            if out.stdout.strip() == "10.96.1.10" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert out.stdout.strip() == "10.96.1.10", (transport, out.stdout, out.stderr)


def _service(name: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict:
    doc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "svc-demo"},
        "spec": spec,
    }
    return doc | ({"status": status} if status else {})


def _slice(service: str, ip: str, node: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-a",
            "namespace": "svc-demo",
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": [{"port": port}],
        "endpoints": [{"addresses": [ip], "nodeName": node}],
    }


def _fabric_route(live: Live, ip: str) -> str:
    routes = in_netns(str(live.runtime()["fabric"]["netns"]), "ip", "route", "show", f"{ip}/32")
    return routes.stdout


def test_local_load_balancer_without_endpoints_is_refused(live: Live) -> None:
    """externalTrafficPolicy Local and no endpoint anywhere: kube-proxy rejects (its
    `no-endpoint-services` verdict); every node is routed the address, so the client is
    refused at once instead of waiting for ARP on the fabric. With an endpoint on node-1
    only, only node-1 gets it again and answers with the client's address kept."""
    lb = "172.18.255.12"
    svc = _service(
        "lb-local-empty",
        {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",
            "loadBalancerIP": lb,
            "ports": [{"port": 80, "targetPort": 8080}],
        },
        {"loadBalancer": {"ingress": [{"ip": lb}]}},
    )
    live.apply([svc])
    try:
        r = one(live, "internet", lb, 80)
        assert r.get("error") == "ConnectionRefusedError" and r["seconds"] < 0.5, r
        route = _fabric_route(live, lb)
        assert NODE1 in route and NODE2 in route, route
        live.apply([_slice("lb-local-empty", "10.244.1.10", "node-1", 8080)])
        r = one(live, "internet", lb, 80)
        assert (r.get("pod"), r.get("client")) == ("web-1", INTERNET), r
        route = _fabric_route(live, lb)
        assert f"via {NODE1}" in route and NODE2 not in route, route
    finally:
        live.cli("delete", "endpointslice", "lb-local-empty-a", "-n", "svc-demo")
        assert live.cli("delete", "service", "lb-local-empty", "-n", "svc-demo").returncode == 0
    assert not _fabric_route(live, lb).strip()


@pytest.mark.parametrize("src", ["internet", "svc-demo/client-2", "node/node-2"])
def test_external_ips_are_routed_and_answered(live: Live, src: str) -> None:
    """spec.externalIPs (outside the node network): the fabric routes the address to the
    nodes, the internet and the nodes route it to the fabric, and a node's rules DNAT it
    to an endpoint (externalTrafficPolicy Cluster: any node, masqueraded)."""
    ip = "198.51.100.10"
    svc = _service(
        "ext-ip",
        {"externalIPs": [ip], "ports": [{"port": 80, "targetPort": 8080}]},
    )
    live.apply([svc, _slice("ext-ip", "10.244.1.10", "node-1", 8080)])
    try:
        route = _fabric_route(live, ip)
        assert NODE1 in route and NODE2 in route, route
        res = hits(live, src, ip, 80, count=5)
        assert pods_of(res) == {"web-1"}, res
    finally:
        live.cli("delete", "endpointslice", "ext-ip-a", "-n", "svc-demo")
        assert live.cli("delete", "service", "ext-ip", "-n", "svc-demo").returncode == 0
    assert not _fabric_route(live, ip).strip()
    inet = in_netns(where(live, "internet"), "ip", "route", "show", f"{ip}/32").stdout
    assert not inet.strip(), inet


def _affinity_clients(live: Live, node: str) -> set[str]:
    """The client addresses in node's ClientIP affinity sets."""
    out = in_netns(live.node_netns()[node], "nft", "-j", "list", "sets", "inet")
    assert out.returncode == 0, out.stderr
    return {
        e["elem"]["val"]
        for item in json.loads(out.stdout)["nftables"]
        if "set" in item and item["set"]["name"].startswith("aff-")
        for e in item["set"].get("elem", [])
        if isinstance(e, dict)
    }


def test_affinity_survives_a_full_sync(live: Live) -> None:
    """A full sync re-creates the table (one transaction); the affinity sets' clients are
    read first and written back with the time they had left, so a client keeps its
    endpoint across it (here: the drift watch sees a transaction made behind the daemon's
    back and makes the next periodic sync full)."""
    first = pods_of(hits(live, "svc-demo/client", "10.96.1.11", 80, count=5))
    assert len(first) == 1, first
    client_ip = live.pod_ips()["svc-demo/client"]
    assert client_ip in _affinity_clients(live, "node-1")
    log = live.sdir / "daemon.log"
    before = log.read_text().count("periodic full")
    table = kernel_names.table_name(live.name)
    node1 = live.node_netns()["node-1"]
    # A transaction that changes nothing in the end, but commits (the generation moves;
    # `add table` of an existing table commits nothing and would not be seen).
    probe = f"add chain inet {table} drift-probe\ndelete chain inet {table} drift-probe\n"
    done = subprocess.run(
        ["ip", "netns", "exec", node1, "nft", "-f", "-"], input=probe, text=True, check=False
    )
    assert done.returncode == 0
    deadline = time.monotonic() + 45
    while log.read_text().count("periodic full") == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert log.read_text().count("periodic full") > before, log.read_text()[-1500:]
    assert client_ip in _affinity_clients(live, "node-1")
    assert pods_of(hits(live, "svc-demo/client", "10.96.1.11", 80, count=5)) == first
