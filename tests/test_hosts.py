"""enter.hosts: /etc/hosts as kubelet writes it (managedHostsFileContent), and what
`podnet exec` resolves for a pod: pure."""

from __future__ import annotations

import pytest

from podnet.enter.hosts import (
    PodHosts,
    host_network_hosts,
    hosts_file,
    kubelet_hosts,
    pod_hostname,
)
from podnet.enter.targets import resolve
from podnet.model.cluster import build
from podnet.model.errors import InputError
from podnet.model.load import load
from podnet.render.runtime import parse
from podnet.testing import pod_entry, runtime_doc

LOCAL = (
    "# Kubernetes-managed hosts file.\n"
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)


def test_a_plain_pod_maps_its_address_to_its_name():
    text = kubelet_hosts(PodHosts("web-7d9f"), ["10.244.1.5"], "shop", "cluster.local")
    assert text == LOCAL + "10.244.1.5\tweb-7d9f\n"


def test_hostname_and_subdomain_give_the_fqdn_first():
    pod = PodHosts("db-0", hostname="db-0", subdomain="db")
    text = kubelet_hosts(pod, ["10.244.1.5"], "shop", "cluster.local")
    assert text == LOCAL + "10.244.1.5\tdb-0.db.shop.svc.cluster.local\tdb-0\n"


def test_hostname_without_subdomain_and_a_custom_domain():
    assert kubelet_hosts(PodHosts("x", hostname="box"), ["10.0.0.1"], "a", "c.example").endswith(
        "10.0.0.1\tbox\n"
    )
    pod = PodHosts("x", subdomain="grp")  # the pod's name is the hostname
    assert kubelet_hosts(pod, ["10.0.0.1"], "a", "c.example").endswith(
        "10.0.0.1\tx.grp.a.svc.c.example\tx\n"
    )


def test_host_aliases_one_line_per_address_under_kubelets_heading():
    pod = PodHosts("web", aliases=(("10.1.2.3", ("foo.local", "bar.local")), ("::1", ("v6",))))
    text = kubelet_hosts(pod, ["10.244.1.5"], "shop", "cluster.local")
    assert text.endswith(
        "10.244.1.5\tweb\n"
        "\n"
        "# Entries added by HostAliases.\n"
        "10.1.2.3\tfoo.local\tbar.local\n"
        "::1\tv6\n"
    )


@pytest.mark.parametrize(
    ("name", "hostname"),
    [
        ("a" * 63, "a" * 63),
        ("a" * 64, "a" * 63),
        ("a" * 62 + "-b", "a" * 62),  # the cut leaves a dash at the end: dropped
        ("a" * 61 + ".-bc", "a" * 61),
    ],
    ids=["63", "64", "dash", "dot-dash"],
)
def test_long_pod_names_are_cut_to_one_label(name, hostname):
    assert pod_hostname(PodHosts(name)) == hostname


def test_host_network_pods_get_the_nodes_file_under_kubelets_heading():
    pod = PodHosts("agent", aliases=(("10.1.2.3", ("foo",)),))
    assert host_network_hosts(pod, "127.0.0.1 localhost\n") == (
        "# Kubernetes-managed hosts file (host network).\n"
        "127.0.0.1 localhost\n"
        "\n# Entries added by HostAliases.\n10.1.2.3\tfoo\n"
    )


RUNTIME = parse(
    runtime_doc(
        "c",
        [{"name": "node-1", "ip": "172.18.0.2", "netns": "c-node-1"}],
        [
            pod_entry("shop", "db-0", "node-1", "10.244.0.5", "c-db-0", {"pg": []}),
            pod_entry(
                "kube-system", "agent", "node-1", "172.18.0.2", "c-node-1", {"a": []}, None, True
            ),
        ],
    )
)


def test_exec_target_carries_the_hosts_file_and_kubelets_hostname():
    names = PodHosts("db-0", hostname="primary", subdomain="db")
    t = resolve(RUNTIME, "shop/db-0", naming=names)
    assert t.hostname == "primary"
    assert t.hosts_name == "pod-shop.db-0"
    assert t.hosts == LOCAL + "10.244.0.5\tprimary.db.shop.svc.cluster.local\tprimary\n"
    assert resolve(RUNTIME, "shop/db-0").hosts == LOCAL + "10.244.0.5\tdb-0\n"
    agent = resolve(RUNTIME, "kube-system/agent", node_hosts="127.0.0.1 localhost\n")
    assert agent.hostname == "node-1"
    assert agent.hosts == "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n"
    assert resolve(RUNTIME, "node/node-1").hosts is None  # nodes and internet: left alone
    assert resolve(RUNTIME, "internet").hosts is None


def test_hosts_file_lives_in_the_state_dir(tmp_path):
    path = hosts_file(tmp_path, "pod-shop.db-0", "x\n")
    assert path == tmp_path / "exec" / "pod-shop.db-0.hosts" and path.read_text() == "x\n"
    mtime = path.stat().st_mtime_ns
    assert hosts_file(tmp_path, "pod-shop.db-0", "x\n").stat().st_mtime_ns == mtime


POD = """apiVersion: v1
kind: Pod
metadata: {name: a, namespace: default}
spec:
  containers: [{name: c, image: x}]
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  hostname: Bad_Name\n", "spec.hostname: invalid hostname 'Bad_Name'"),
        ("  subdomain: a.b\n", "spec.subdomain: invalid subdomain 'a.b'"),
        (
            "  hostAliases: [{ip: 1.2.3.400, hostnames: [foo]}]\n",
            "spec.hostAliases[0].ip: '1.2.3.400' does not appear",
        ),
        (
            "  hostAliases: [{ip: 1.2.3.4, hostnames: [Foo_]}]\n",
            "spec.hostAliases[0].hostnames: invalid hostAliases hostname 'Foo_'",
        ),
    ],
    ids=["hostname", "subdomain", "alias-ip", "alias-name"],
)
def test_bad_naming_fields_are_one_line_errors(tmp_path, extra, message):
    f = tmp_path / "pod.yaml"
    f.write_text(POD + extra)
    with pytest.raises(InputError) as e:
        build(load([str(f)]))
    assert message in str(e.value) and "pod.yaml" in str(e.value)
    assert len(str(e.value).strip().splitlines()) == 1


def test_host_aliases_load(tmp_path):
    f = tmp_path / "pod.yaml"
    f.write_text(POD + "  hostAliases: [{ip: 10.1.2.3, hostnames: [foo.local]}]\n")
    (pod,) = build(load([str(f)])).pods
    assert [(a.ip, a.hostnames) for a in pod.spec.host_aliases] == [("10.1.2.3", ("foo.local",))]
