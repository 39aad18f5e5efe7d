"""`podnet probe --via service` and `podnet curl` on a live cluster (examples/services with
the DNS add-on): real connections to ClusterIPs, NodePorts and LoadBalancer addresses,
answered by the pods kube-proxy's rules picked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from podnet.testing import Live, example_docs, live_cluster, policy

pytestmark = pytest.mark.datapath

NODE1 = "172.18.0.2"


def docs() -> list[dict[str, Any]]:
    return example_docs("services")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("viasvc")
    with live_cluster(tmp, docs(), "pvs", nodes=2, up_args=("--cluster-dns", "on")) as lv:
        yield lv


def probe(live: Live, *args: str) -> tuple[int, dict[str, Any], str]:
    out = live.cli("probe", "--via", "service", "-o", "json", *args)
    return out.returncode, json.loads(out.stdout or "{}"), out.stderr


def curl(live: Live, *args: str) -> tuple[int, dict[str, Any]]:
    out = live.cli("curl", "-o", "json", *args)
    return out.returncode, json.loads(out.stdout)


def test_every_clusterip_port_from_every_pod_as_the_engine_expects(live: Live) -> None:
    status, doc, err = probe(live)
    assert status == 0, (doc.get("summary"), err)
    results = doc["results"]
    by = {(r["to"], r["port"], r["protocol"]) for r in results}
    assert ("svc/svc-demo/web", 80, "TCP") in by and ("svc/svc-demo/web", 53, "UDP") in by
    assert ("svc/kube-system/kube-dns", 9153, "TCP") in by
    # kube-dns on 53: the DNS server answers a DNS question (UDP and TCP), through the Service
    dns = [r for r in results if r["to"] == "svc/kube-system/kube-dns" and r["port"] == 53]
    assert len(dns) == 2 * len({r["from"] for r in results}), dns[:2]
    assert all(r["verdict"] == "passed" for r in dns)
    assert not any(r["to"] == "svc/svc-demo/headless" for r in results)  # no virtual IP
    empty = [r for r in results if r["to"] == "svc/svc-demo/empty"]
    assert empty and all(r["verdict"] == "refused" and r["endpoints"] == [] for r in empty)
    web = [r for r in results if r["to"] == "svc/svc-demo/web" and r["port"] == 80]
    assert all(r["verdict"] == "passed" for r in web)
    # The reply names the endpoint, on the target port its slice gives the named port.
    assert {(r["endpoint"], r["targetPort"]) for r in web} <= {
        ("svc-demo/web-1", 8080),
        ("svc-demo/web-2", 8081),
    }
    hairpin = [r for r in web if r["from"] == r.get("endpoint")]
    assert all(r["verdict"] == "passed" for r in hairpin)
    assert doc["summary"]["mismatches"] == 0 and doc["summary"].get("no answer", 0) == 0


def test_a_policy_is_judged_on_the_endpoint_behind_the_service(live: Live, tmp_path) -> None:
    only_demo = policy(
        "svc-demo/only-demo",
        {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]},
    )
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(only_demo))
    assert live.cli("apply", "-f", str(f)).returncode == 0
    try:
        status, doc, err = probe(live, "--from", "other/outsider,svc-demo/client")
        assert status == 0, (doc.get("summary"), err)
        for r in doc["results"]:
            if r["to"].startswith("svc/svc-demo/") and r["endpoints"]:
                want = "passed" if r["from"] == "svc-demo/client" else "blocked"
                assert r["verdict"] == want, r
        # Through `--to` a pod selection means the Services it is an endpoint of.
        status, doc, _ = probe(live, "--from", "other/outsider", "--to", "svc-demo/web-2")
        assert status == 0
        assert {r["to"] for r in doc["results"]} >= {"svc/svc-demo/web", "svc/svc-demo/sticky"}
    finally:
        live.cli("delete", "networkpolicy", "only-demo", "-n", "svc-demo")


def test_curl_from_a_pod_resolves_service_names_through_the_cluster_dns(live: Live) -> None:
    status, doc = curl(live, "--from", "svc-demo/client", "http://web/path")  # search list
    assert status == 0, doc
    assert doc["status"] == 200 and doc["address"] == "10.96.1.10" and doc["port"] == 80
    body = json.loads(doc["body"])
    assert body["pod"] in ("web-1", "web-2") and body["path"] == "/path"
    assert body["client"].startswith("10.244.")  # the pod's own address: no NAT
    assert doc["headers"]["Content-Type"] == "application/json"
    assert doc["from"] == "svc-demo/client" and doc["seconds"] > 0
    status, doc = curl(live, "--from", "other/outsider", "http://web.svc-demo.svc.cluster.local/")
    assert status == 0 and doc["address"] == "10.96.1.10"


def test_curl_from_the_internet_to_nodeport_and_load_balancer(live: Live) -> None:
    status, doc = curl(live, f"http://{NODE1}:30080/")
    assert status == 0 and doc["status"] == 200 and json.loads(doc["body"])["pod"] == "web-1"
    lb = json.loads(live.cli("get", "services", "-n", "svc-demo", "-o", "json").stdout)
    (ip,) = [
        i["ip"]
        for s in lb["items"]
        if s["metadata"]["name"] == "lb"
        for i in s["status"]["loadBalancer"]["ingress"]
    ]
    status, doc = curl(live, f"http://{ip}/")
    assert status == 0 and doc["from"] == "internet" and doc["address"] == ip


def test_curl_to_a_pod_ip_from_a_node_and_the_failures(live: Live) -> None:
    status, doc = curl(live, "--from", "node/node-1", "http://10.244.2.10:8081/")
    assert status == 0 and json.loads(doc["body"])["pod"] == "web-2"
    status, doc = curl(live, "--from", "svc-demo/client", "http://empty/")  # no endpoint
    assert status == 7 and doc["status"] is None and "connect" in doc["error"]
    status, doc = curl(live, "--from", "svc-demo/client", "http://nothing-here/")
    assert status == 6 and "resolve" in doc["error"]
    out = live.cli("curl", "--from", "svc-demo/nope", "http://web/")
    assert out.returncode == 2 and "no pod svc-demo/nope" in out.stderr


def test_curl_text_output_with_headers(live: Live) -> None:
    out = live.cli("curl", "-i", "--from", "svc-demo/client", "http://web.svc-demo/")
    assert out.returncode == 0, out.stderr
    head, _, body = out.stdout.partition("\n\n")
    assert head.startswith("HTTP/1.1 200") and "Content-Type: application/json" in head
    assert json.loads(body)["namespace"] == "svc-demo"
