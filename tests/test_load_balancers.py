"""render/load_balancers: which nodes the fabric routes each external address to
(LoadBalancer ingress IPs and spec.externalIPs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from podnet.model.cluster import load_cluster
from podnet.render.load_balancers import external_routes

ROOT = Path(__file__).resolve().parent.parent
NODE_IP = {"node-1": "172.18.0.2", "node-2": "172.18.0.3"}
BOTH = ("172.18.0.2", "172.18.0.3")


def routes(tmp_path: Path, *extra: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    (tmp_path / "extra.yaml").write_text(yaml.safe_dump_all(list(extra)))
    paths = [str(ROOT / "examples" / "services"), str(tmp_path / "extra.yaml")]
    return external_routes(load_cluster(paths if extra else paths[:1]), NODE_IP)


def service(name: str, spec: dict[str, Any], lb: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "svc-demo"},
        "spec": {"ports": [{"port": 80}], **spec},
    }
    if lb:
        doc["spec"] |= {"type": "LoadBalancer", "loadBalancerIP": lb}
        doc["status"] = {"loadBalancer": {"ingress": [{"ip": lb}]}}
    return doc


def test_local_goes_to_the_nodes_with_an_endpoint_cluster_to_every_node(tmp_path: Path) -> None:
    got = routes(tmp_path)
    assert got["172.18.255.10"] == ("172.18.0.2",)  # lb-local: its endpoint is on node-1
    assert got["172.18.255.11"] == BOTH


def test_local_without_any_endpoint_goes_to_every_node_which_rejects(tmp_path: Path) -> None:
    """Without a route the client waited for ARP until it timed out; kube-proxy's verdict
    for a Service without endpoints is a reject, which every node's rules give."""
    empty = service("empty-lb", {"externalTrafficPolicy": "Local"}, lb="172.18.255.30")
    assert routes(tmp_path, empty)["172.18.255.30"] == BOTH


def test_external_ips_are_routed_to_every_node_or_the_local_ones(tmp_path: Path) -> None:
    plain = service("ext", {"externalIPs": ["198.51.100.7"]})
    local = service(
        "ext-local",
        {"type": "NodePort", "externalTrafficPolicy": "Local", "externalIPs": ["198.51.100.8"],
         "selector": {"app": "nothing"}},
    )  # fmt: skip
    headless = service("ext-headless", {"clusterIP": "None", "externalIPs": ["198.51.100.9"]})
    got = routes(tmp_path, plain, local, headless)
    assert got["198.51.100.7"] == BOTH
    assert got["198.51.100.8"] == BOTH  # no endpoint at all: every node rejects
    assert "198.51.100.9" not in got  # headless: no rules, no route
