"""/etc/resolv.conf as kubelet writes it (enter.resolv): every dnsPolicy, dnsConfig merged,
kubelet's limits; and the API server's dnsConfig validation (model.pod)."""

from __future__ import annotations

import pytest

from podnet.enter.resolv import OUTSIDE_RESOLV, PodDNS, kubelet_resolv
from podnet.model.errors import InputError

CLUSTER = (
    "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
    "nameserver 10.96.0.10\n"
    "options ndots:5\n"
)


def resolv(**kw) -> str:
    return kubelet_resolv(PodDNS(**kw), "shop", "10.96.0.10", "cluster.local")


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, CLUSTER),
        ({"policy": "ClusterFirstWithHostNet"}, CLUSTER),
        ({"policy": "ClusterFirstWithHostNet", "host_network": True}, CLUSTER),
        ({"policy": "ClusterFirst", "host_network": True}, OUTSIDE_RESOLV),  # falls to Default
        ({"policy": "Default"}, OUTSIDE_RESOLV),
        (
            {
                "policy": "None",
                "configured": True,
                "nameservers": ("10.244.0.2",),
                "searches": ("a.example",),
                "options": (("ndots", "2"), ("edns0", None)),
            },
            "search a.example\nnameserver 10.244.0.2\noptions ndots:2 edns0\n",
        ),
        (
            {
                "configured": True,
                "nameservers": ("10.96.0.10", "1.2.3.4"),
                "searches": ("svc.cluster.local", "x.example"),
                "options": (("ndots", "1"),),
            },
            "search shop.svc.cluster.local svc.cluster.local cluster.local x.example\n"
            "nameserver 10.96.0.10\nnameserver 1.2.3.4\noptions ndots:1\n",
        ),
        (
            {"policy": "Default", "configured": True, "searches": ("x.example",)},
            "# podnet: dnsPolicy Default: no nameserver inside the sealed fabric\n"
            "search x.example\n",
        ),
    ],
    ids=[
        "ClusterFirst",
        "WithHostNet",
        "WithHostNet-hostNetwork",
        "ClusterFirst-hostNetwork",
        "Default",
        "None",
        "ClusterFirst+dnsConfig",
        "Default+dnsConfig",
    ],
)
def test_kubelet_resolv(kw, expected):
    assert resolv(**kw) == expected


def test_limits_three_nameservers_and_32_searches():
    text = resolv(
        configured=True,
        nameservers=("1.1.1.1", "2.2.2.2", "3.3.3.3"),
        searches=tuple(f"s{i}.example" for i in range(40)),
    )
    assert text.count("nameserver") == 3  # the cluster's first, then two of the pod's
    assert len(text.splitlines()[0].split()) - 1 == 32


def pod_doc(spec: dict) -> str:
    import yaml

    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "shop"},
            "spec": {"containers": [{"name": "c", "image": "x"}], **spec},
        }
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"dnsPolicy": "None"}, "must provide `dnsConfig` when `dnsPolicy` is None"),
        ({"dnsPolicy": "None", "dnsConfig": {"searches": ["a"]}}, "at least one DNS nameserver"),
        (
            {"dnsConfig": {"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"]}},
            "more than 3 nameservers",
        ),
        ({"dnsConfig": {"nameservers": ["not-an-ip"]}}, "nameservers[0]: Invalid value"),
        ({"dnsConfig": {"searches": ["Bad_Domain"]}}, "searches[0]"),
    ],
    ids=["None-without-config", "None-without-nameserver", "4-nameservers", "bad-ip", "bad-search"],
)
def test_dns_config_rejected_as_the_api_server_does(tmp_path, spec, message):
    from podnet.model.cluster import build
    from podnet.model.load import load

    f = tmp_path / "pod.yaml"
    f.write_text(pod_doc(spec))
    with pytest.raises(InputError) as e:
        build(load([str(f)]))
    assert message in str(e.value) and "pod.yaml" in str(e.value)
