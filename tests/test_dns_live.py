"""Cluster DNS on a real cluster (`podnet up`): dig and getent inside pods, against the DNS
server the daemon runs in the kube-dns pod's namespace. Until kube-proxy's rules land, the
queries go to the DNS pod's own address (10.96.0.10 needs the Service's DNAT). Needs root."""

from __future__ import annotations

import os
import signal
import time

import pytest

from podnet.testing import in_netns, live_cluster, namespace, pod

pytestmark = pytest.mark.datapath

DNS_IP = "10.244.0.53"  # pinned (a dump's status.podIP is honoured)
WEB_IP = "10.244.0.60"
Z = "cluster.local"


def dns_pod() -> dict:
    doc = pod(
        "kube-system/coredns",
        labels={"k8s-app": "kube-dns"},
        ports=[
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9153},
        ],
        ip=DNS_IP,
    )
    return doc


def resolver_pod() -> dict:
    doc = pod("shop/resolver", ports=[{"containerPort": 8080}])
    doc["spec"]["dnsPolicy"] = "None"
    doc["spec"]["dnsConfig"] = {
        "nameservers": [DNS_IP],
        "searches": [f"shop.svc.{Z}", f"svc.{Z}", Z],
        "options": [{"name": "ndots", "value": "5"}],
    }
    return doc


def service(name: str, **spec) -> dict:
    spec.setdefault("ports", [{"name": "http", "port": 80, "targetPort": 8080}])
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
    }


DOCS = [
    namespace("kube-system"),
    namespace("shop"),
    dns_pod(),
    pod("shop/client", ports=[{"containerPort": 8080}]),
    pod("shop/web-0", ports=[{"name": "http", "containerPort": 8080}], ip=WEB_IP),
    resolver_pod(),
    service("web", clusterIP="10.96.0.20"),
    service("db", clusterIP="None", ports=[{"name": "http", "port": 8080}]),
    service("empty", clusterIP="None", ports=[{"name": "http", "port": 8080}]),
    service("ext", type="ExternalName", externalName="web.shop.svc.cluster.local", ports=[]),
    {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "db-1",
            "namespace": "shop",
            "labels": {"kubernetes.io/service-name": "db"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": [WEB_IP], "hostname": "db-0", "conditions": {"ready": True}},
            {"addresses": ["10.244.0.99"], "conditions": {"ready": False}},
        ],
    },
]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with live_cluster(tmp_path_factory.mktemp("dns"), DOCS, "pdns", nodes=1) as cluster:
        wait_serving(cluster)
        yield cluster


def wait_serving(live, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dig(live, "dns-version.cluster.local", "TXT", short=True).strip() == '"1.1.0"':
            return
        time.sleep(0.1)
    raise AssertionError(
        "the DNS server did not answer: " + (live.sdir / "daemon.log").read_text()[-2000:]
    )


def dig(
    live, name: str, rdtype: str = "A", *opts: str, short: bool = False, src: str = "shop/client"
) -> str:
    args = ["dig", f"@{DNS_IP}", name, rdtype, "+time=1", "+tries=1", *opts]
    if short:
        args.append("+short")
    out = in_netns(live.pod(src)["netns"], *args)
    return out.stdout


def status(text: str) -> str:
    return text.split("status: ", 1)[1].split(",", 1)[0] if "status: " in text else text


@pytest.mark.parametrize(
    ("name", "rdtype", "expected"),
    [
        (f"web.shop.svc.{Z}", "A", "10.96.0.20"),
        (f"WEB.Shop.svc.{Z}", "A", "10.96.0.20"),
        (f"_http._tcp.web.shop.svc.{Z}", "SRV", f"0 100 80 web.shop.svc.{Z}."),
        ("20.0.96.10.in-addr.arpa", "PTR", f"web.shop.svc.{Z}."),
        (f"db.shop.svc.{Z}", "A", WEB_IP),
        (f"db-0.db.shop.svc.{Z}", "A", WEB_IP),
        (f"_http._tcp.db.shop.svc.{Z}", "SRV", f"0 100 8080 db-0.db.shop.svc.{Z}."),
        ("60.0.244.10.in-addr.arpa", "PTR", f"db-0.db.shop.svc.{Z}."),
        (f"ext.shop.svc.{Z}", "CNAME", f"web.shop.svc.{Z}."),
        (f"10-244-0-60.shop.pod.{Z}", "A", WEB_IP),
        (f"dns-version.{Z}", "TXT", '"1.1.0"'),
    ],
)
@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
def test_records_over_udp_and_tcp(live, name, rdtype, expected, transport):
    assert dig(live, name, rdtype, transport, short=True).split("\n")[0] == expected


@pytest.mark.parametrize(
    ("name", "rdtype", "expected"),
    [
        (f"nope.shop.svc.{Z}", "A", "NXDOMAIN"),
        (f"empty.shop.svc.{Z}", "A", "NXDOMAIN"),  # headless, no ready endpoint
        (f"web.shop.svc.{Z}", "AAAA", "NOERROR"),  # NODATA
        (f"shop.svc.{Z}", "A", "NOERROR"),
        ("example.com", "A", "REFUSED"),
    ],
)
def test_negative_answers(live, name, rdtype, expected):
    out = dig(live, name, rdtype)
    assert status(out) == expected
    assert ("ANSWER: 0" in out) and (("AUTHORITY: 1" in out) == (expected != "REFUSED"))


def test_getent_through_resolv_conf_search_path(live):
    """dnsPolicy None, nameserver the DNS pod: glibc's resolver with the kubelet search path."""
    netns = live.pod("shop/resolver")["netns"]
    r = live.cli("exec", "shop/resolver", "--", "getent", "hosts", "web")
    assert r.returncode == 0 and r.stdout.split()[:2] == ["10.96.0.20", f"web.shop.svc.{Z}"], r
    r = live.cli("exec", "shop/resolver", "--", "getent", "hosts", "db-0.db")
    assert r.stdout.split()[0] == WEB_IP, r
    started = time.monotonic()
    r = live.cli("exec", "shop/resolver", "--", "getent", "hosts", "example.com")
    # Fails at once: a hang would be the resolver's 5 s timeout (podnet exec itself takes
    # up to a second or two on a loaded machine).
    assert r.returncode == 2 and time.monotonic() - started < 4.5
    assert netns


def test_dig_uses_the_pods_resolv_conf(live):
    r = live.cli("exec", "shop/resolver", "--", "dig", "+short", "+search", "web")
    assert r.stdout.strip() == "10.96.0.20", r


def test_stand_in_leaves_port_53_and_serves_the_other_ports(live):
    import sys

    netns = live.pod("shop/client")["netns"]
    code = (
        f"import socket;s=socket.create_connection(('{DNS_IP}',9153),2);s.sendall(b'x\\n');"
        "print(s.recv(100).decode())"
    )
    out = in_netns(netns, sys.executable, "-c", code)
    assert out.stdout.startswith("kube-system/coredns"), out
    ready = (live.sdir / "ready.json").read_text()
    assert '"kube-system/coredns": true' in ready


def test_answers_follow_a_change_within_a_second(live):
    started = time.monotonic()
    live.apply([service("late", clusterIP="10.96.0.77")])
    applied = time.monotonic()
    while dig(live, f"late.shop.svc.{Z}", short=True).strip() != "10.96.0.77":
        assert time.monotonic() - applied < 1.0, "not answered 1 s after apply returned"
        time.sleep(0.02)
    answered = time.monotonic()
    print(
        f"apply took {applied - started:.3f}s; answered {answered - applied:.3f}s after it returned"
    )


def test_server_killed_is_restarted(live):
    pid = int((live.sdir / "dns-server.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if dig(live, f"web.shop.svc.{Z}", short=True).strip() == "10.96.0.20":
            try:
                new = int((live.sdir / "dns-server.pid").read_text())
            except (FileNotFoundError, ValueError):
                new = pid
            if new != pid:
                return
        time.sleep(0.1)
    raise AssertionError("the DNS server was not restarted")
