"""Port 53 changes hands when the set of DNS pods changes (root): a second kube-dns pod
applied to a running cluster is answered by the DNS server over UDP and TCP (not by the
workload stand-in, which serves the pod's other ports); the first one deleted, the second
keeps answering and the server lets go of the gone namespace; the first re-created (a new
namespace under the same name) is served again."""

from __future__ import annotations

import json
import sys
import time

import pytest

from podnet.testing import in_netns, live_cluster, namespace, pod

pytestmark = pytest.mark.datapath

FIRST, SECOND = "10.244.0.53", "10.244.0.56"


def dns_pod(name: str, ip: str) -> dict:
    return pod(
        f"kube-system/{name}",
        labels={"k8s-app": "kube-dns"},
        ports=[
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9153},
        ],
        ip=ip,
    )


DOCS = [
    namespace("kube-system"),
    namespace("shop"),
    dns_pod("coredns", FIRST),
    pod("shop/client", ports=[{"containerPort": 8080}]),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with live_cluster(tmp_path_factory.mktemp("dnsto"), DOCS, "pdto", nodes=1) as cluster:
        yield cluster


def version(live, server: str, *opts: str) -> str:
    """dns-version's TXT from `server`, asked from the client pod (dig's output)."""
    args = ["dig", f"@{server}", "dns-version.cluster.local", "TXT", "+short", "+time=1"]
    out = in_netns(live.pod("shop/client")["netns"], *args, "+tries=1", *opts)
    return out.stdout.strip()


def metrics_port(live, server: str) -> str:
    code = (
        f"import socket;s=socket.create_connection(('{server}',9153),2);s.sendall(b'x\\n');"
        "print(s.recv(100).decode().split()[0])"
    )
    return in_netns(live.pod("shop/client")["netns"], sys.executable, "-c", code).stdout.strip()


def serving(live) -> list[str]:
    return list(json.loads((live.sdir / "dns-server.json").read_text())["serving"])


def wait(what: str, check, timeout: float = 10.0) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"not within {timeout} s: {what}"
        time.sleep(0.05)
    return time.monotonic() - started


def answered(live, server: str) -> bool:
    return version(live, server) == '"1.1.0"' and version(live, server, "+tcp") == '"1.1.0"'


def test_dns_pods_added_deleted_and_recreated(live):
    wait("the first DNS pod answers", lambda: answered(live, FIRST), 20.0)

    live.apply([dns_pod("coredns-2", SECOND)])
    took = wait("the second DNS pod answers UDP and TCP", lambda: answered(live, SECOND))
    second_ns = live.pod("kube-system/coredns-2")["netns"]
    assert sorted(serving(live)) == sorted([live.pod("kube-system/coredns")["netns"], second_ns])
    assert metrics_port(live, SECOND) == "kube-system/coredns-2"  # the stand-in's port
    print(f"second DNS pod answered {took:.2f}s after apply returned")

    r = live.cli("delete", "pod", "coredns", "-n", "kube-system")
    assert r.returncode == 0, r.stderr
    wait("the server lets go of the deleted pod", lambda: serving(live) == [second_ns])
    assert answered(live, SECOND)
    assert "no servers could be reached" in version(live, FIRST)  # nothing there any more

    live.apply([dns_pod("coredns", FIRST)])
    took = wait("the re-created first DNS pod answers again", lambda: answered(live, FIRST))
    assert len(serving(live)) == 2
    assert metrics_port(live, FIRST) == "kube-system/coredns"
    print(f"re-created DNS pod answered {took:.2f}s after apply returned")
