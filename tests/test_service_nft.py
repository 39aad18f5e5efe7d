"""The Service rules renderer (kube-proxy's nftables mode): golden text of examples/services,
and the tracer walking each node's table as the kernel would (DNAT, masquerade marks, the
no-endpoint rejects, Local policies), pure.

Regenerate the golden files with PODNET_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import dataclasses
import os
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from podnet.model.cluster import load_cluster
from podnet.nftables import text as nft_text
from podnet.nftables.model import Table
from podnet.render import kernel_names as names
from podnet.render.service_nft import merge, policy_part, render_all, render_node
from podnet.render.service_ports import service_ports
from podnet.testing import Packet, Tracer

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "nft"
UPDATE = os.environ.get("PODNET_UPDATE_GOLDEN") == "1"
CIDR = IPv4Network("10.244.0.0/16")
NODE_IP = {"node-1": IPv4Address("172.18.0.2"), "node-2": IPv4Address("172.18.0.3")}
INTERNET = "203.0.113.2"


@pytest.fixture(scope="module")
def tables() -> dict[str, Table]:
    c = load_cluster([str(ROOT / "examples" / "services")])
    ports = service_ports(c.services, c.endpoint_slices)
    rules = render_all(ports, ["node-1", "node-2"], CIDR, IPv4Network("10.96.0.0/12"))
    return {n: merge(Table("inet", names.table_name("demo")), r) for n, r in rules.items()}


def endpoints(t: Table, node: str, src: str, dst: str, port: int, proto: str = "tcp") -> set:
    return Tracer(t).endpoints(Packet(src, dst, proto, port), local=frozenset({NODE_IP[node]}))


def test_services_match_golden(tables: dict[str, Table]) -> None:
    for node, table in tables.items():
        text = nft_text.replace(table)
        path = GOLDEN / f"services-{node}.nft"
        if UPDATE:
            path.write_text(text)
        assert path.exists(), f"{path} missing: run with PODNET_UPDATE_GOLDEN=1"
        assert text == path.read_text(), f"{path} differs: review, then PODNET_UPDATE_GOLDEN=1"


def test_cluster_ip_ports_tcp_and_udp_target_by_name_per_pod(tables: dict[str, Table]) -> None:
    t = tables["node-1"]
    # targetPort "http" is 8080 on web-1 and 8081 on web-2: each slice says its number.
    assert endpoints(t, "node-1", "10.244.1.20", "10.96.1.10", 80) == {
        ("10.244.1.10", 8080),
        ("10.244.2.10", 8081),
    }
    assert endpoints(t, "node-1", "10.244.1.20", "10.96.1.10", 53, "udp") == {
        ("10.244.1.10", 5353),
        ("10.244.2.10", 5353),
    }
    assert endpoints(t, "node-1", "10.244.1.20", "10.96.1.10", 81) == set()  # not a port of it


def test_not_ready_endpoints_are_left_out(tables: dict[str, Table]) -> None:
    assert endpoints(tables["node-2"], "node-2", "10.244.2.20", "10.96.1.11", 80) == {
        ("10.244.1.10", 8080),
        ("10.244.2.10", 8081),
    }


def test_terminating_fallback_when_none_is_ready() -> None:
    c = load_cluster([str(ROOT / "examples" / "services")])
    ports = service_ports(c.services, c.endpoint_slices)
    web = next(p for p in ports if p.identity == "svc-demo/web/tcp/http")
    a, b = web.endpoints
    # none ready: the serving and terminating one is used; a not-serving one never is
    a = dataclasses.replace(a, ready=False, serving=True, terminating=True)
    b = dataclasses.replace(b, ready=False, serving=False, terminating=True)
    table = merge(
        Table("inet", "t"),
        render_node([dataclasses.replace(web, endpoints=(a, b))], "node-1", CIDR),
    )
    assert endpoints(table, "node-1", "10.244.1.20", "10.96.1.10", 80) == {("10.244.1.10", 8080)}


def test_no_endpoints_rejects_before_the_policies(tables: dict[str, Table]) -> None:
    tr = Tracer(tables["node-1"])
    pkt = Packet("10.244.1.20", "10.96.1.12", "tcp", 80)
    assert not tr.nat(pkt).dnat
    assert tr.trace(pkt) == "reject"  # forward: a pod's packet, routed by the node
    assert tr.filter("output", pkt) == "reject"  # the node itself
    assert tr.trace(Packet("10.244.1.20", "10.96.1.10", "tcp", 80)) == "accept"
    # the check runs before the policy chain (priority -110 < 0)
    hooks = [c.hook for c in tables["node-1"].chains if c.hook and c.hook.hook == "forward"]
    assert all(isinstance(h.priority, int) and h.priority < 0 for h in hooks)


def test_affinity_updates_the_endpoint_set(tables: dict[str, Table]) -> None:
    tr = Tracer(tables["node-1"])
    n = tr.nat(Packet("10.244.1.20", "10.96.1.11", "tcp", 80))  # numgen's pick 0: web-1
    assert n.packet.daddr == "10.244.1.10" and len(tr.updated) == 1
    aff = tr.updated[0]
    table = tables["node-1"]
    s = next(s for s in table.sets if s.name == aff)
    assert s.timeout == 600 and "dynamic" in s.flags
    # a client in the set goes to its endpoint whatever numgen says
    held = dataclasses.replace(s, elements=(IPv4Address("10.244.1.20"),))
    pinned = dataclasses.replace(table, sets=tuple(held if x is s else x for x in table.sets))
    assert Tracer(pinned).endpoints(Packet("10.244.1.20", "10.96.1.11", "tcp", 80)) == {
        ("10.244.1.10", 8080)
    }


def test_hairpin_is_masqueraded(tables: dict[str, Table]) -> None:
    tr = Tracer(tables["node-1"])
    own = tr.nat(Packet("10.244.1.20", "10.96.1.17", "tcp", 90))
    assert own.packet.daddr == "10.244.1.20" and own.masquerade
    other = tr.nat(Packet("10.244.2.20", "10.96.1.17", "tcp", 90))
    assert other.packet.daddr == "10.244.1.20" and not other.masquerade


@pytest.mark.parametrize("node", ["node-1", "node-2"])
def test_node_port_on_every_node_masqueraded(tables: dict[str, Table], node: str) -> None:
    tr = Tracer(tables[node])
    local = frozenset({NODE_IP[node]})
    n = tr.nat(Packet(INTERNET, str(NODE_IP[node]), "tcp", 30080), local=local)
    assert (n.packet.daddr, n.packet.dport, n.masquerade) == ("10.244.1.10", 8080, True)
    # another node's address is not this node's: no NodePort here
    other = next(ip for n2, ip in NODE_IP.items() if n2 != node)
    assert not tr.nat(Packet(INTERNET, str(other), "tcp", 30080), local=local).dnat


def test_external_local_keeps_the_client_and_drops_without_local_endpoint(
    tables: dict[str, Table],
) -> None:
    one = Tracer(tables["node-1"]).nat(Packet(INTERNET, "172.18.255.10", "tcp", 80))
    assert (one.packet.daddr, one.masquerade) == ("10.244.1.10", False)
    two = Tracer(tables["node-2"]).nat(Packet(INTERNET, "172.18.255.10", "tcp", 80))
    assert two.verdict == "drop"
    # a pod on node-2 is not an external client: every endpoint serves it
    pod = Tracer(tables["node-2"]).nat(Packet("10.244.2.20", "172.18.255.10", "tcp", 80))
    assert pod.packet.daddr == "10.244.1.10"


def test_external_cluster_load_balancer(tables: dict[str, Table]) -> None:
    for node in ("node-1", "node-2"):
        n = Tracer(tables[node]).nat(Packet(INTERNET, "172.18.255.11", "tcp", 80))
        assert (n.packet.daddr, n.packet.dport, n.masquerade) == ("10.244.2.10", 8081, True)


def test_internal_local(tables: dict[str, Table]) -> None:
    assert endpoints(tables["node-1"], "node-1", "10.244.1.20", "10.96.1.16", 80) == {
        ("10.244.1.10", 8080)
    }
    n = Tracer(tables["node-2"]).nat(Packet("10.244.2.20", "10.96.1.16", "tcp", 80))
    assert n.verdict == "drop"  # endpoints exist, none on node-2


def test_headless_has_no_rules(tables: dict[str, Table]) -> None:
    assert not any("headless" in c.name for c in tables["node-1"].chains)


def test_off_cluster_sources_of_a_cluster_ip_are_masqueraded(tables: dict[str, Table]) -> None:
    n = Tracer(tables["node-1"]).nat(
        Packet("172.18.0.2", "10.96.1.10", "tcp", 80), hook="output", local=frozenset()
    )
    assert n.dnat and n.masquerade


def test_merge_replaces_service_objects_and_keeps_the_policy_ones(
    tables: dict[str, Table],
) -> None:
    t = tables["node-1"]
    assert merge(t, None) == policy_part(t) == Table("inet", names.table_name("demo"))
    c = load_cluster([str(ROOT / "examples" / "services")])
    ports = service_ports(c.services, c.endpoint_slices)
    assert merge(t, render_node(ports, "node-1", CIDR)) == t


def test_one_service_changed_touches_only_its_objects() -> None:
    """Per-Service pieces: the objects of every other Service are equal values."""
    c = load_cluster([str(ROOT / "examples" / "services")])
    ports = service_ports(c.services, c.endpoint_slices)
    before = merge(Table("inet", "t"), render_node(ports, "node-1", CIDR))
    web = next(i for i, p in enumerate(ports) if p.identity == "svc-demo/web/tcp/http")
    changed = list(ports)
    changed[web] = dataclasses.replace(ports[web], endpoints=ports[web].endpoints[:1])
    after = merge(Table("inet", "t"), render_node(changed, "node-1", CIDR))
    b = {c.name: c for c in before.chains}
    a = {c.name: c for c in after.chains}
    differ = sorted(n for n in a.keys() | b.keys() if a.get(n) != b.get(n))
    # without affinity the endpoints are DNAT rules of the Service's own chain
    assert differ == [names.service_object(names.SERVICE_CHAIN, "svc-demo/web/tcp/http")]


def test_endpoint_chains_only_for_client_ip_affinity(tables: dict[str, Table]) -> None:
    """One chain per Service port; a chain per endpoint only where affinity records the
    client (nft 1.0.6 loads and caches chains slowly: docs/services.md)."""
    c = load_cluster([str(ROOT / "examples" / "services")])
    sticky = {p.identity for p in service_ports(c.services, c.endpoint_slices) if p.affinity}
    eps = [ch.name for ch in tables["node-1"].chains if ch.name.startswith("ep-")]
    assert sticky and eps
    assert all(any(f"-{i}__" in e for i in sticky) for e in eps)
