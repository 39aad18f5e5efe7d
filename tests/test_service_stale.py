"""Which UDP conntrack entries are stale after a sync (kube-proxy's conntrack reconciler),
from `conntrack -L` text and the Service ports in force; pure."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv4Network

from podnet.render.service_ports import Endpoint, ServicePort
from podnet.render.service_stale import Entry, parse, stale

CIDR = IPv4Network("10.96.0.0/12")
LINES = """\
udp      17 29 src=10.244.1.20 dst=10.96.1.10 sport=41234 dport=53 src=10.244.1.10 dst=10.244.1.20 sport=5353 dport=41234 mark=0 use=1
udp      17 28 src=10.244.1.21 dst=10.96.1.10 sport=40000 dport=53 src=10.244.2.10 dst=10.244.1.21 sport=5353 dport=40000 [ASSURED] mark=0 use=1
udp      17 27 src=10.244.1.22 dst=10.96.1.10 sport=40001 dport=53 src=10.96.1.10 dst=10.244.1.22 sport=53 dport=40001 mark=0 use=1
udp      17 26 src=203.0.113.2 dst=172.18.0.2 sport=5000 dport=30053 src=10.244.1.10 dst=172.18.0.2 sport=5353 dport=5000 mark=0 use=1
udp      17 25 src=10.244.1.23 dst=10.96.9.9 sport=40002 dport=53 src=10.244.3.3 dst=10.244.1.23 sport=53 dport=40002 mark=0 use=1
udp      17 24 src=10.244.1.24 dst=8.8.8.8 sport=40003 dport=53 src=8.8.8.8 dst=10.244.1.24 sport=53 dport=40003 mark=0 use=1
"""


def port(*eps: str, node_port: int | None = 30053) -> ServicePort:
    return ServicePort(
        "ns", "dns", "", "udp", 53, IPv4Address("10.96.1.10"), (), node_port, None, False, False,
        tuple(Endpoint(IPv4Address(e), 5353, "n", True, True, False) for e in eps),
    )  # fmt: skip


def test_parse_reads_original_and_reply() -> None:
    e = parse(LINES)[0]
    assert e == Entry("10.244.1.20", "10.96.1.10", 41234, 53, "10.244.1.10", 5353)
    assert len(parse(LINES)) == 6
    assert e.delete_argv()[:3] == ["-D", "-p", "udp"]


def test_an_endpoint_that_left_and_an_entry_never_dnatted_are_stale() -> None:
    gone = stale(parse(LINES), [port("10.244.1.10")], CIDR)
    # toward 10.244.2.10 (left), never DNATed (the Service had no endpoint), a ClusterIP
    # no Service has; the NodePort entry to a current endpoint and outside traffic stay
    assert [e.src for e in gone] == ["10.244.1.21", "10.244.1.22", "10.244.1.23"]


def test_node_port_entries_follow_the_endpoints() -> None:
    gone = stale(parse(LINES), [port("10.244.2.10")], CIDR)
    assert "203.0.113.2" in [e.src for e in gone]


def test_terminating_serving_endpoints_are_not_stale() -> None:
    p = port("10.244.2.10")
    ep = dataclasses.replace(p.endpoints[0], ready=False, serving=True, terminating=True)
    gone = stale(parse(LINES), [dataclasses.replace(p, endpoints=(ep,))], CIDR)
    assert "10.244.1.21" not in [e.src for e in gone]
