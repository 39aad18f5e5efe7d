"""The DNS zone renderer (render.dns_zone): one case per rule of the Kubernetes DNS-Based
Service Discovery specification 1.1.0 (section numbers are the spec's), and a golden zone.

Regenerate the golden file with PODNET_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from podnet.model.service import EndpointSlice, Service
from podnet.render.dns_zone import PodAddress, Record, render_zone, reverse_name

GOLDEN = Path(__file__).parent / "golden" / "dns" / "shop.zone"
Z = "cluster.local."


def svc(key: str, **spec: Any) -> Service:
    ns, name = key.split("/")
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if "annotations" in spec:
        meta["annotations"] = spec.pop("annotations")
    spec.setdefault("ports", [{"name": "http", "port": 80}])
    return Service.model_validate({"metadata": meta, "spec": spec})


def eps(
    key: str, *endpoints: dict[str, Any], ports: Any = None, family: str = "IPv4"
) -> EndpointSlice:
    ns, service = key.split("/")
    return EndpointSlice.model_validate(
        {
            "metadata": {
                "name": f"{service}-abc",
                "namespace": ns,
                "labels": {"kubernetes.io/service-name": service},
            },
            "addressType": family,
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}] if ports is None else ports,
            "endpoints": list(endpoints),
        }
    )


def ep(ip: str, hostname: str | None = None, ready: bool | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"addresses": [ip]}
    if hostname:
        out["hostname"] = hostname
    if ready is not None:
        out["conditions"] = {"ready": ready}
    return out


def records(*objs: Service | EndpointSlice, pods: tuple[PodAddress, ...] = ()) -> set[str]:
    services = [o for o in objs if isinstance(o, Service)]
    slices = [o for o in objs if isinstance(o, EndpointSlice)]
    return {r.line() for r in render_zone(services, slices, pods).records}


def at(lines: set[str], name: str) -> set[str]:
    return {line for line in lines if line.split()[0] == name}


def test_dns_version_txt_2_2():
    assert f'dns-version.{Z} 5 IN TXT "1.1.0"' in records()


def test_cluster_ip_a_srv_ptr_2_3():
    lines = records(
        svc(
            "shop/web",
            clusterIP="10.96.0.20",
            ports=[
                {"name": "http", "port": 80},
                {"name": "dns", "port": 53, "protocol": "UDP"},
            ],
        )
    )
    base = f"web.shop.svc.{Z}"
    assert at(lines, base) == {f"{base} 5 IN A 10.96.0.20"}  # 2.3.1
    assert at(lines, f"_http._tcp.{base}") == {f"_http._tcp.{base} 5 IN SRV 0 100 80 {base}"}
    assert at(lines, f"_dns._udp.{base}") == {f"_dns._udp.{base} 5 IN SRV 0 100 53 {base}"}
    assert at(lines, "20.0.96.10.in-addr.arpa.") == {f"20.0.96.10.in-addr.arpa. 5 IN PTR {base}"}


def test_unnamed_port_has_no_srv_2_3_2():
    lines = records(svc("shop/web", clusterIP="10.96.0.20", ports=[{"port": 80}]))
    assert not [line for line in lines if " SRV " in line]


def test_service_without_allocated_address_has_no_record():
    assert records(svc("shop/web")) == records()


def test_headless_a_per_ready_endpoint_and_hostname_2_4_1():
    lines = records(
        svc("shop/db", clusterIP="None"),
        eps(
            "shop/db",
            ep("10.244.1.5", "db-0"),
            ep("10.244.2.6", "db-1"),
            ep("10.244.2.7", ready=False),
        ),
    )
    base = f"db.shop.svc.{Z}"
    assert at(lines, base) == {f"{base} 5 IN A 10.244.1.5", f"{base} 5 IN A 10.244.2.6"}
    assert at(lines, f"db-0.{base}") == {f"db-0.{base} 5 IN A 10.244.1.5"}
    assert not [line for line in lines if "10.244.2.7" in line]  # not ready: no record


def test_headless_endpoint_without_hostname_gets_a_system_assigned_one_2_1():
    lines = records(svc("shop/db", clusterIP="None"), eps("shop/db", ep("10.244.1.5")))
    assert f"10-244-1-5.db.shop.svc.{Z} 5 IN A 10.244.1.5" in lines


def test_headless_without_ready_endpoint_has_no_name_2_4_1():
    """ "If there are no ready endpoints for the headless Service, the answer should be
    NXDOMAIN": no record at all at or below the name."""
    lines = records(svc("shop/db", clusterIP="None"), eps("shop/db", ep("10.244.1.5", ready=False)))
    assert not [line for line in lines if "db.shop" in line]


@pytest.mark.parametrize(
    "how",
    [
        {"publishNotReadyAddresses": True},
        {"annotations": {"service.alpha.kubernetes.io/tolerate-unready-endpoints": "true"}},
    ],
    ids=["publishNotReadyAddresses", "tolerate-unready-annotation"],
)
def test_not_ready_endpoints_published_when_the_service_says_so(how):
    lines = records(
        svc("shop/db", clusterIP="None", **how), eps("shop/db", ep("10.244.1.5", ready=False))
    )
    assert f"db.shop.svc.{Z} 5 IN A 10.244.1.5" in lines


def test_unknown_ready_condition_counts_as_ready():
    lines = records(svc("shop/db", clusterIP="None"), eps("shop/db", ep("10.244.1.5")))
    assert f"db.shop.svc.{Z} 5 IN A 10.244.1.5" in lines


def test_headless_srv_per_endpoint_and_named_port_2_4_2():
    lines = records(
        svc(
            "shop/db",
            clusterIP="None",
            ports=[{"name": "pg", "port": 5432}, {"name": "m", "port": 9}],
        ),
        eps(
            "shop/db",
            ep("10.244.1.5", "db-0"),
            ep("10.244.2.6"),
            ports=[{"name": "pg", "port": 5432}, {"name": "m", "port": 9}, {"port": 7}],
        ),
    )
    base = f"db.shop.svc.{Z}"
    assert at(lines, f"_pg._tcp.{base}") == {
        f"_pg._tcp.{base} 5 IN SRV 0 100 5432 db-0.{base}",
        f"_pg._tcp.{base} 5 IN SRV 0 100 5432 10-244-2-6.{base}",
    }
    assert len([line for line in lines if " SRV " in line]) == 4  # N x M, unnamed port none


def test_headless_ptr_per_ready_endpoint_2_4_3():
    lines = records(svc("shop/db", clusterIP="None"), eps("shop/db", ep("10.244.1.5", "db-0")))
    assert f"5.1.244.10.in-addr.arpa. 5 IN PTR db-0.db.shop.svc.{Z}" in lines


def test_headless_ipv6_endpoints_aaaa_and_nibble_ptr():
    lines = records(
        svc("shop/db", clusterIP="None"), eps("shop/db", ep("2001:db8::1", "db-0"), family="IPv6")
    )
    assert f"db-0.db.shop.svc.{Z} 5 IN AAAA 2001:db8::1" in lines
    ptr = reverse_name("2001:db8::1")
    assert (
        ptr.endswith(".8.b.d.0.1.0.0.2.ip6.arpa.")
        and f"{ptr} 5 IN PTR db-0.db.shop.svc.{Z}" in lines
    )


def test_fqdn_slices_and_slices_of_other_services_are_ignored():
    other = eps("shop/other", ep("10.244.1.9"))
    fqdn = EndpointSlice.model_validate(
        {
            "metadata": {
                "name": "x",
                "namespace": "shop",
                "labels": {"kubernetes.io/service-name": "db"},
            },
            "addressType": "FQDN",
            "endpoints": [{"addresses": ["example.com"]}],
        }
    )
    lines = records(svc("shop/db", clusterIP="None"), other, fqdn)
    assert not [line for line in lines if "db.shop" in line]


def test_external_name_is_a_cname_2_5():
    lines = records(svc("shop/ext", type="ExternalName", externalName="www.example.com.", ports=[]))
    assert at(lines, f"ext.shop.svc.{Z}") == {f"ext.shop.svc.{Z} 5 IN CNAME www.example.com."}


def test_pod_records_for_pods_that_hold_the_address():
    lines = records(pods=(PodAddress("shop", "10.244.1.5"),))
    assert f"10-244-1-5.shop.pod.{Z} 5 IN A 10.244.1.5" in lines
    assert not [line for line in lines if "10-244-1-5.other" in line]


def test_names_are_lowercase_and_absolute():
    zone = render_zone([svc("shop/web", clusterIP="10.96.0.20")], [], [], domain="Cluster.Local")
    assert zone.domain == "cluster.local."
    assert all(r.name == r.name.lower() and r.name.endswith(".") for r in zone.all_records())


def test_soa_and_ns_of_every_apex_and_the_ns_glue():
    zone = render_zone([], [], [], dns_ip="10.96.0.10", serial=7)
    text = zone.text()
    for apex in (Z, "in-addr.arpa.", "ip6.arpa."):
        assert f"{apex} 5 IN SOA ns.dns.{Z} hostmaster.{Z} 7 7200 1800 86400 5\n" in text
        assert f"{apex} 5 IN NS ns.dns.{Z}\n" in text
    assert f"ns.dns.{Z} 5 IN A 10.96.0.10\n" in text


def test_serial_does_not_change_the_records():
    a = render_zone([svc("shop/web", clusterIP="10.96.0.20")], [], [], serial=1)
    b = render_zone([svc("shop/web", clusterIP="10.96.0.20")], [], [], serial=2)
    assert a.records == b.records and a.text() != b.text()


def test_record_line():
    assert Record("a.", "A", "1.2.3.4").line() == "a. 5 IN A 1.2.3.4"


def shop_zone() -> str:
    objs = [
        svc(
            "shop/web",
            clusterIP="10.96.0.20",
            ports=[{"name": "http", "port": 80, "targetPort": 8080}],
        ),
        svc("shop/db", clusterIP="None", ports=[{"name": "pg", "port": 5432}]),
        eps(
            "shop/db",
            ep("10.244.1.5", "db-0"),
            ep("10.244.2.6", "db-1"),
            ep("10.244.2.7", "db-2", ready=False),
            ports=[{"name": "pg", "port": 5432}],
        ),
        svc("shop/empty", clusterIP="None"),
        svc("shop/ext", type="ExternalName", externalName="api.example.com", ports=[]),
        svc(
            "kube-system/kube-dns",
            clusterIP="10.96.0.10",
            ports=[
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            ],
        ),
    ]
    pods = (PodAddress("shop", "10.244.1.5"), PodAddress("kube-system", "10.244.1.2"))
    services = [o for o in objs if isinstance(o, Service)]
    slices = [o for o in objs if isinstance(o, EndpointSlice)]
    return render_zone(services, slices, pods, serial=42).text()


def test_shop_zone_matches_golden():
    text = shop_zone()
    if os.environ.get("PODNET_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
