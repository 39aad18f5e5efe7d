"""`podnet exec` into the namespaces of a real cluster (`podnet up`): the pod's resolv.conf,
/etc/hosts and hostname, exit statuses, the container-to-container path over localhost, nodes and the
internet client. Needs root."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from podnet.testing import live_cluster, namespace, pod, podnet

pytestmark = pytest.mark.datapath

KUBELET_RESOLV = (
    "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
    "nameserver 10.96.0.10\n"
    "options ndots:5\n"
)
# A stand-in for another container's client: connect over loopback and print the answer.
LOCALHOST_CLIENT = (
    "import socket; s = socket.create_connection(('127.0.0.1', 9000), 2);"
    "print(s.recv(100).decode(), end='')"
)
DOCS = [
    namespace("shop"),
    pod(
        "shop/web",
        containers={"app": [{"containerPort": 8080}], "side": [{"containerPort": 9000}]},
        annotations={"podnet.io/localhost-ports": "9000"},
    ),
]
# A StatefulSet-like pod: hostname and subdomain (kubelet: FQDN in /etc/hosts), an alias.
DB = pod("shop/db-0", ports=[{"containerPort": 5432}])
DB["spec"] |= {
    "hostname": "primary",
    "subdomain": "db",
    "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["legacy.example", "legacy"]}],
}
DOCS.append(DB)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with live_cluster(tmp_path_factory.mktemp("exec"), DOCS, "pex", nodes=1) as cluster:
        yield cluster


def podnet_exec(live, *args: str):
    return live.cli("exec", *args)


def test_pod_sees_kubelets_resolv_conf_and_host_files_stay_untouched(live):
    host_resolv = Path("/etc/resolv.conf").read_text()
    r = podnet_exec(live, "shop/web", "--", "cat", "/etc/resolv.conf")
    assert (r.returncode, r.stdout, r.stderr) == (0, KUBELET_RESOLV, "")
    assert Path("/etc/resolv.conf").read_text() == host_resolv
    assert not Path(f"/etc/netns/{live.pod('shop/web')['netns']}").exists()
    assert (live.sdir / "exec" / "pod-shop.resolv.conf").read_text() == KUBELET_RESOLV


def test_pod_sees_its_own_ip_and_hostname(live):
    r = podnet_exec(
        live, "shop/web", "-c", "app", "--", "sh", "-c", "hostname; ip -4 -o addr show eth0"
    )
    assert r.returncode == 0, r.stderr
    hostname, addr = r.stdout.splitlines()
    assert hostname == "web"
    assert f"inet {live.pod_ips()['shop/web']}/32" in addr


def test_pod_sees_kubelets_hosts_file_and_fqdn(live):
    host_hosts = Path("/etc/hosts").read_text()
    ip = live.pod_ips()["shop/db-0"]
    script = "hostname; hostname -f; getent hosts legacy; getent hosts primary; tail -4 /etc/hosts"
    r = podnet_exec(live, "shop/db-0", "--", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "primary",
        "primary.db.shop.svc.cluster.local",  # the FQDN, from /etc/hosts
        "10.1.2.3        legacy.example legacy",
        f"{ip}{' ' * max(1, 16 - len(ip))}primary.db.shop.svc.cluster.local primary",
        f"{ip}\tprimary.db.shop.svc.cluster.local\tprimary",
        "",
        "# Entries added by HostAliases.",
        "10.1.2.3\tlegacy.example\tlegacy",
    ]
    r = podnet_exec(live, "shop/web", "--", "sh", "-c", "hostname -f; grep -c . /etc/hosts")
    assert (r.returncode, r.stdout) == (0, "web\n8\n"), r.stderr
    assert Path("/etc/hosts").read_text() == host_hosts  # the host's file is untouched


def test_exit_status_is_the_commands(live):
    assert podnet_exec(live, "shop/web", "--", "sh", "-c", "exit 7").returncode == 7
    assert podnet_exec(live, "shop/web", "--", "true").returncode == 0
    r = podnet_exec(live, "shop/web", "--", "no-such-command-podnet")
    assert (r.returncode, r.stderr) == (127, "error: no-such-command-podnet: command not found\n")


def test_container_to_container_over_localhost(live):
    r = podnet_exec(live, "shop/web", "-c", "app", "--", sys.executable, "-c", LOCALHOST_CLIENT)
    assert (r.returncode, r.stdout) == (0, "shop/web side\n"), r.stderr


def test_node_and_internet(live):
    r = podnet_exec(live, "node/node-1", "--", "sh", "-c", "hostname; ip -4 -o addr show")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("node-1\n")
    assert f"inet {live.node_ips()['node-1']}/" in r.stdout
    r = podnet_exec(live, "internet", "--", "cat", "/etc/resolv.conf")
    assert r.returncode == 0 and "nameserver" not in r.stdout.replace("no nameserver", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("shop/nope", "--", "true"), "error: no pod shop/nope in cluster {cluster}\n"),
        (
            ("shop/web", "-c", "nope", "--", "true"),
            "error: pod shop/web has no container nope (containers: app, side)\n",
        ),
        (("node/n9", "--", "true"), "error: no node n9 in cluster {cluster} (nodes: node-1)\n"),
        (("shop/web",), "error: give the command after --: "),
        (("shop/web", "--"), "error: no command after --: "),
    ],
    ids=["no-pod", "no-container", "no-node", "no-dashdash", "no-command"],
)
def test_errors_are_one_line_exit_2(live, args, message):
    r = podnet_exec(live, *args)
    assert r.returncode == 2
    assert r.stderr.startswith(message.format(cluster=live.name))
    assert r.stderr.count("\n") == 1


def test_no_such_cluster(live):
    r = podnet("exec", "--cluster", "nonexistent", "a/b", "--", "true", env=live.env)
    assert r.returncode == 2
    assert r.stderr.startswith("error: no cluster nonexistent: ")
