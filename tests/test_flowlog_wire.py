"""Decoding netfilter's netlink messages from bytes the kernel really sent.

tests/data/flowlog_capture.json holds datagrams read from real sockets:
- `loopback`: a scratch namespace whose output chain logged new TCP connections with
  `log prefix "pn:a:0123456789:i:1" group 7 accept` and rejected UDP with
  `log prefix "pn:d:e:abcdef0123" group 7 reject`; one TCP connect to 127.0.0.1:5555 and
  one UDP datagram to :5353, read on conntrack's NEW group and on nflog group 7;
- `nodeport_two_nodes`: conntrack NEW events of node-1 and node-2 of a live cluster (examples/shop)
  while the internet namespace fetched http://172.18.0.3:31731/ (the frontend's NodePort on
  node-2, whose endpoint on node-1 was chosen: DNAT and masquerade on node-2);
- `clusterip_udp_node_1`: a DNS query of a pod on node-1 to 10.96.0.10 (DNAT to CoreDNS).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from podnet.flowlog import nl_wire as w
from podnet.flowlog.flow_join import snat_alias, wire_tuple

CAPTURE = json.loads((Path(__file__).parent / "data" / "flowlog_capture.json").read_text())


def _messages(hexes: list[str]) -> list[w.Message]:
    return [m for h in hexes for m in w.messages(bytes.fromhex(h))]


def test_loopback_conntrack_new_event() -> None:
    events = [e for m in _messages(CAPTURE["loopback"]["ct"]) if (e := w.ct_event(m))]
    assert len(events) == 1
    ev = events[0]
    assert (ev.orig.proto, ev.orig.src, ev.orig.dst, ev.orig.dport) == (
        6,
        "127.0.0.1",
        "127.0.0.1",
        5555,
    )
    assert ev.reply == ev.orig.reversed()
    assert not ev.dnat and not ev.snat


def test_loopback_nflog_messages_carry_prefix_tuple_and_sequence() -> None:
    pkts = [p for m in _messages(CAPTURE["loopback"]["log"]) if (p := w.log_packet(m))]
    assert [p.prefix for p in pkts] == ["pn:a:0123456789:i:1", "pn:d:e:abcdef0123"]
    tcp, udp = pkts
    assert tcp.packet is not None and (tcp.packet.proto, tcp.packet.dport) == (6, 5555)
    assert udp.packet is not None and (udp.packet.proto, udp.packet.dport) == (17, 5353)
    assert [p.seq for p in pkts] == [0, 1]  # NFULNL_CFG_F_SEQ: numbered from 0
    assert tcp.hook == 3  # NF_INET_LOCAL_OUT


def test_nodeport_events_show_dnat_and_masquerade() -> None:
    by_node = {
        d["node"]: [e for m in w.messages(bytes.fromhex(d["hex"])) if (e := w.ct_event(m))]
        for d in CAPTURE["nodeport_two_nodes"]
    }
    (entry,) = by_node["node-2"]
    assert entry.dnat and entry.snat
    assert (entry.orig.src, entry.orig.dst, entry.orig.dport) == (
        "203.0.113.2",
        "172.18.0.3",
        31731,
    )
    (forwarded,) = by_node["node-1"]
    assert not forwarded.dnat and not forwarded.snat
    # node-1 sees node-2's masquerade address: the alias joins it to the client's tuple
    assert snat_alias(entry) == forwarded.orig
    assert wire_tuple(entry).src == "203.0.113.2"
    assert wire_tuple(entry).dst == forwarded.orig.dst


def test_clusterip_udp_event() -> None:
    (ev,) = [
        e
        for m in w.messages(bytes.fromhex(CAPTURE["clusterip_udp_node_1"]))
        if (e := w.ct_event(m))
    ]
    assert ev.dnat and not ev.snat
    assert (ev.orig.proto, ev.orig.dst, ev.orig.dport) == (17, "10.96.0.10", 53)
    assert ev.reply.sport == 53 and ev.reply.src != "10.96.0.10"


def test_every_prefix_of_a_datagram_decodes_or_is_ignored() -> None:
    data = bytes.fromhex(CAPTURE["loopback"]["log"][0])
    for n in range(len(data)):
        for m in w.messages(data[:n]):
            w.log_packet(m)
            w.ct_event(m)


def test_other_messages_are_not_events() -> None:
    (msg,) = list(w.messages(w.log_bind(7)))
    assert w.ct_event(msg) is None and w.log_packet(msg) is None


def test_configuration_requests() -> None:
    (bind,) = list(w.messages(w.log_bind(7)))
    assert bind.type == (w.SUBSYS_ULOG << 8 | w.NFULNL_MSG_CONFIG)
    assert bind.flags == w.NLM_F_REQUEST | w.NLM_F_ACK
    assert w.NFGEN.unpack_from(bind.body) == (0, 0, 7)
    assert w.attributes(bind.body, w.NFGEN.size) == {
        w.NFULA_CFG_CMD: bytes([w.NFULNL_CFG_CMD_BIND])
    }
    (conf,) = list(w.messages(w.log_configure(7)))
    a = w.attributes(conf.body, w.NFGEN.size)
    assert struct.unpack("!IBB", a[w.NFULA_CFG_MODE]) == (w.COPY_RANGE, w.NFULNL_COPY_PACKET, 0)
    assert struct.unpack("!H", a[w.NFULA_CFG_FLAGS]) == (w.NFULNL_CFG_F_SEQ,)


@pytest.mark.parametrize(
    ("packet", "expected"),
    [
        (
            bytes.fromhex("4500003c000040004006")
            + b"\0\0"
            + bytes([10, 0, 0, 1, 10, 0, 0, 2])
            + struct.pack("!HH", 1234, 80),
            (6, "10.0.0.1", 1234, "10.0.0.2", 80),
        ),
        (
            bytes.fromhex("4600003c000040004011")
            + b"\0\0"
            + bytes([10, 0, 0, 1, 10, 0, 0, 2])
            + b"\0" * 4
            + struct.pack("!HH", 53, 5353),
            (17, "10.0.0.1", 53, "10.0.0.2", 5353),
        ),
        (
            bytes.fromhex("4500003c000040000101")
            + b"\0\0"
            + bytes([10, 0, 0, 1, 10, 0, 0, 2])
            + b"\x08\0\0\0",
            (1, "10.0.0.1", 0, "10.0.0.2", 0),
        ),
    ],
    ids=["tcp", "udp-with-ip-options", "icmp"],
)
def test_ipv4_five_tuple(packet: bytes, expected: tuple[object, ...]) -> None:
    t = w.ipv4_five_tuple(packet)
    assert t is not None and (t.proto, t.src, t.sport, t.dst, t.dport) == expected


def test_not_ipv4() -> None:
    assert w.ipv4_five_tuple(b"\x60" + b"\0" * 39) is None
    assert w.ipv4_five_tuple(b"\x45\0") is None
