"""The Service control plane, pure: allocation as the API server does it, EndpointSlices and
Endpoints as the upstream controllers compute them."""

from __future__ import annotations

import ipaddress

import pytest

from podnet.model.errors import InputError
from podnet.state.endpoint_slices import (
    CONTROLLER,
    MAX_PER_SLICE,
    desired,
    pod_views,
    statically_ready,
)
from podnet.state.network import NetworkConfig
from podnet.state.placement import place
from podnet.state.service_alloc import allocate_services
from podnet.testing import cluster, pod, service

NET = NetworkConfig()


def _alloc(*docs, previous=None):
    return {s.key: s for s in allocate_services(cluster(*docs), NET, previous)}


def test_cluster_ips_are_allocated_in_the_upper_band_and_stable():
    docs = [service(f"a/s{i}", {"app": "x"}) for i in range(50)]
    first = _alloc(*docs)
    ips = {s.spec.cluster_ip for s in first.values()}
    assert len(ips) == 50
    for ip in ips:
        addr = ipaddress.IPv4Address(ip)
        assert addr in NET.service_cidr
        assert int(addr) - int(NET.service_cidr.network_address) >= 256  # the dynamic band
    assert first == _alloc(*docs)  # the same input, the same addresses
    assert all(s.spec.cluster_ips == (s.spec.cluster_ip,) for s in first.values())


def test_pinned_ip_is_honoured_and_kube_dns_gets_the_dns_address():
    got = _alloc(
        service("a/web", {"app": "web"}, clusterIP="10.96.0.50"),
        service(
            "kube-system/kube-dns", {"k8s-app": "kube-dns"}, ports=[{"port": 53, "protocol": "UDP"}]
        ),
    )
    assert got["a/web"].spec.cluster_ip == "10.96.0.50"
    assert got["kube-system/kube-dns"].spec.cluster_ip == NET.dns_ip


def test_previous_allocation_is_kept_on_update():
    before = _alloc(service("a/web", {"app": "web"}))
    again = _alloc(
        service("a/web", {"app": "other"}), service("a/new", {"app": "n"}), previous=before
    )
    assert again["a/web"].spec.cluster_ip == before["a/web"].spec.cluster_ip


@pytest.mark.parametrize(
    ("ip", "message"),
    [
        (
            "10.200.0.1",
            "provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12",
        ),
        ("10.96.0.0", "provided IP is not in the valid range"),
    ],
)
def test_cluster_ip_outside_the_range_is_refused(ip, message):
    with pytest.raises(InputError) as e:
        _alloc(service("a/web", {"app": "web"}, clusterIP=ip))
    assert str(e.value).count("\n") == 0
    assert "Service a/web: spec.clusterIP: Invalid value" in str(e.value)
    assert message in str(e.value)


def test_cluster_ip_conflict_is_refused_naming_the_holder():
    with pytest.raises(InputError) as e:
        _alloc(
            service("a/one", {"app": "x"}, clusterIP="10.96.1.1"),
            service("a/two", {"app": "x"}, clusterIP="10.96.1.1"),
        )
    assert "provided IP is already allocated (to Service a/one)" in str(e.value)
    assert "Service a/two: spec.clusterIP" in str(e.value)


def test_node_ports_health_port_and_load_balancer_address():
    got = _alloc(
        service("a/np", {"app": "x"}, type="NodePort"),
        service("a/pinned", {"app": "x"}, type="NodePort", ports=[{"port": 80, "nodePort": 30080}]),
        service("a/lb", {"app": "x"}, type="LoadBalancer", externalTrafficPolicy="Local"),
        service(
            "a/other-class", {"app": "x"}, type="LoadBalancer", loadBalancerClass="example.com/lb"
        ),
    )
    assert got["a/pinned"].spec.ports[0].node_port == 30080
    for key in ("a/np", "a/lb"):
        assert 30000 <= got[key].spec.ports[0].node_port <= 32767
    lb = got["a/lb"]
    assert lb.spec.health_check_node_port is not None
    assert ipaddress.IPv4Address(lb.status.load_balancer.ingress[0].ip) in NET.lb_pool
    assert got["a/other-class"].status.load_balancer.ingress == ()
    ports = [p.node_port for s in got.values() for p in s.spec.ports if p.node_port]
    assert len(ports) == len(set(ports))


def test_node_port_out_of_range_and_taken():
    with pytest.raises(
        InputError, match=r"nodePort: Invalid value: 80: provided port is not in the valid range"
    ):
        _alloc(service("a/np", {"app": "x"}, type="NodePort", ports=[{"port": 80, "nodePort": 80}]))
    with pytest.raises(InputError, match="provided port is already allocated"):
        _alloc(
            service(
                "a/one", {"app": "x"}, type="NodePort", ports=[{"port": 80, "nodePort": 30001}]
            ),
            service(
                "a/two", {"app": "x"}, type="NodePort", ports=[{"port": 81, "nodePort": 30001}]
            ),
        )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"ports": []}, "ports: Required value"),
        ({"type": "ExternalName"}, "externalName: Required value"),
        ({"clusterIP": "None", "type": "NodePort"}, "may not be set for type NodePort"),
        ({"externalTrafficPolicy": "Local"}, "externalTrafficPolicy: Invalid value"),
        (
            {"ports": [{"port": 80}, {"port": 81}]},
            "ports[0].name: Required value",
        ),
        ({"type": "Bogus"}, "spec.type"),
    ],
)
def test_invalid_services_are_refused(spec, message):
    doc = service("a/web", {"app": "web"})
    doc["spec"].update(spec)
    with pytest.raises(InputError) as e:
        cluster(doc)
    assert message in str(e.value)


# --- EndpointSlices ---------------------------------------------------------------------


def _slices(*docs, ready=statically_ready):
    c = cluster(*docs)
    p = place(c, NET)
    return desired(c, pod_views(c, p.pod_ip, p.pod_node, ready))


def test_slices_resolve_named_target_ports_per_pod_and_group_by_port_set():
    web = {"app": "web"}
    slices, endpoints = _slices(
        pod("a/one", web, ports=[{"name": "http", "containerPort": 8080}]),
        pod("a/two", web, ports=[{"name": "http", "containerPort": 9090}]),
        pod("a/none", web, ports=[]),
        pod("a/other", {"app": "db"}, ports=[{"name": "http", "containerPort": 1}]),
        service("a/web", web, ports=[{"name": "h", "port": 80, "targetPort": "http"}]),
    )
    by_port = {s.ports[0].port if s.ports else None: s for s in slices}
    assert set(by_port) == {8080, 9090, None}
    assert [e.target_ref.name for e in by_port[8080].endpoints] == ["one"]
    assert [e.target_ref.name for e in by_port[None].endpoints] == ["none"]  # resolves no port
    for s in slices:
        assert s.metadata.labels["kubernetes.io/service-name"] == "web"
        assert s.metadata.labels["endpointslice.kubernetes.io/managed-by"] == CONTROLLER
        assert s.metadata.name.startswith("web-")
        assert s.metadata.owner_references[0].kind == "Service"
    (ep,) = endpoints
    assert sorted(p.port for ss in ep.subsets for p in ss.ports) == [8080, 9090]


def test_readiness_and_publish_not_ready_addresses():
    web = {"app": "web"}
    docs = [
        pod("a/up", web, ports=[{"containerPort": 8080}]),
        pod("a/down", web, ports=[{"containerPort": 8080}]),
    ]
    ready = lambda p: p.metadata.name == "up"  # noqa: E731
    slices, endpoints = _slices(*docs, service("a/web", web), ready=ready)
    conds = {e.target_ref.name: e.conditions for s in slices for e in s.endpoints}
    assert conds["up"].ready and conds["up"].serving and conds["up"].terminating is False
    assert conds["down"].ready is False and conds["down"].serving is False
    (subset,) = endpoints[0].subsets
    assert [a.target_ref.name for a in subset.addresses] == ["up"]
    assert [a.target_ref.name for a in subset.not_ready_addresses] == ["down"]
    slices, _ = _slices(*docs, service("a/web", web, publishNotReadyAddresses=True), ready=ready)
    conds = {e.target_ref.name: e.conditions for s in slices for e in s.endpoints}
    assert conds["down"].ready is True and conds["down"].serving is False


def test_declared_unready_pod_is_not_ready_statically():
    web = {"app": "web"}
    sick = pod("a/sick", web, ports=[{"containerPort": 8080}])
    sick["status"] = {"conditions": [{"type": "Ready", "status": "False"}]}
    slices, _ = _slices(sick, service("a/web", web))
    assert slices[0].endpoints[0].conditions.ready is False


def test_at_most_100_endpoints_a_slice():
    web = {"app": "web"}
    docs = [pod(f"a/p{i:03d}", web, ports=[{"containerPort": 8080}]) for i in range(250)]
    slices, _ = _slices(*docs, service("a/web", web))
    assert [len(s.endpoints) for s in slices] == [MAX_PER_SLICE, MAX_PER_SLICE, 50] or sorted(
        len(s.endpoints) for s in slices
    ) == [50, 100, 100]
    assert len({s.metadata.name for s in slices}) == 3


def test_hostname_of_pods_whose_subdomain_names_the_service():
    web = {"app": "web"}
    p = pod("a/web-0", web, ports=[{"containerPort": 8080}])
    p["spec"].update(hostname="web-0", subdomain="web")
    q = pod("a/web-1", web, ports=[{"containerPort": 8080}])
    q["spec"].update(hostname="web-1", subdomain="other")
    slices, _ = _slices(p, q, service("a/web", web, clusterIP="None"))
    names = {e.target_ref.name: e.hostname for e in slices[0].endpoints}
    assert names == {"web-0": "web-0", "web-1": None}
    assert slices[0].metadata.labels["service.kubernetes.io/headless"] == ""


def test_selectorless_service_keeps_its_own_slices_and_empty_selection_gets_a_placeholder():
    given = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "ext-1",
            "namespace": "a",
            "labels": {"kubernetes.io/service-name": "ext"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.9.9"]}],
        "ports": [{"name": "", "port": 80, "protocol": "TCP"}],
    }
    slices, _ = _slices(
        service("a/ext", None),
        given,
        service("a/lonely", {"app": "nothing"}),
        pod("a/x", {"app": "y"}),
    )
    names = {s.metadata.name: s for s in slices}
    assert "ext-1" in names and names["ext-1"].endpoints[0].addresses == ("10.244.9.9",)
    (placeholder,) = [s for s in slices if s.service_name == "lonely"]
    assert placeholder.endpoints == () and placeholder.ports == ()


# --- the analyzer through a Service -----------------------------------------------------


def test_explain_through_a_service_judges_each_endpoint_on_its_target_port(tmp_path):
    import subprocess
    import sys

    import yaml

    from podnet.testing import policy

    web = {"app": "web"}
    docs = [
        pod("shop/web-1", web, ports=[{"name": "http", "containerPort": 8080}]),
        pod("shop/web-2", web, ports=[{"name": "http", "containerPort": 9090}]),
        pod("shop/front", {"app": "front"}),
        pod("shop/other", {"app": "other"}),
        service("shop/web", web, ports=[{"name": "h", "port": 80, "targetPort": "http"}]),
        policy(
            "shop/only-front",
            {
                "podSelector": {"matchLabels": web},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "front"}}}]}],
            },
        ),
    ]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump_all(docs))

    def explain(src: str, dst: str) -> list[dict]:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "podnet",
                "explain",
                "-f",
                str(tmp_path),
                "--from",
                src,
                "--to",
                dst,
                "--port",
                "80/TCP",
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        doc = json_load(out.stdout)
        return doc if isinstance(doc, list) else [doc]

    got = {
        (v["source"], v["destination"], v["port"]): v["allowed"]
        for v in explain("shop/front,shop/other", "svc/shop/web")
    }
    assert got == {
        ("shop/front", "shop/web-1", 8080): True,
        ("shop/front", "shop/web-2", 9090): True,
        ("shop/other", "shop/web-1", 8080): False,
        ("shop/other", "shop/web-2", 9090): False,
    }
    (first,) = explain("shop/front", "svc/shop/web")[:1]
    assert "via Service shop/web (ClusterIP 10." in first["reason"]
    assert "(targetPort 'http')" in first["reason"]
    ip = first["reason"].split("ClusterIP ")[1].split(")")[0]
    assert {v["destination"] for v in explain("shop/front", ip)} == {"shop/web-1", "shop/web-2"}


def json_load(text: str):
    import json

    return json.loads(text)
