"""datapath.nftrace.decode: NFT_MSG_TRACE messages as the kernel sends them (attributes of
enum nft_trace_attributes, big-endian numbers, a nested verdict), built byte by byte."""

from __future__ import annotations

import socket
import struct

from podnet.datapath import nftrace


def _attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _message(*attrs: bytes) -> bytes:
    body = struct.pack("=BBH", socket.AF_INET, 0, 0) + b"".join(attrs)
    kind = (nftrace.NFNL_SUBSYS_NFTABLES << 8) | nftrace.NFT_MSG_TRACE
    return struct.pack("=LHHLL", 16 + len(body), kind, 0, 0, 0) + body


def _ip_tcp(src: str, dst: str, sport: int, dport: int) -> tuple[bytes, bytes]:
    ip = bytes([0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0, 0])
    ip += socket.inet_aton(src) + socket.inet_aton(dst)
    return ip, struct.pack("!HH", sport, dport) + b"\0" * 16


def test_a_rule_with_a_jump_and_the_packet() -> None:
    network, transport = _ip_tcp("10.244.0.2", "10.244.1.3", 45123, 5432)
    verdict = _attr(nftrace.NFTA_VERDICT_CODE, struct.pack("!i", -3))
    verdict += _attr(nftrace.NFTA_VERDICT_CHAIN, b"in-65d0c28a51\0")
    data = _message(
        _attr(nftrace.A_TABLE, b"podnet_c\0"),
        _attr(nftrace.A_CHAIN, b"forward\0"),
        _attr(nftrace.A_RULE_HANDLE, struct.pack("!Q", 34)),
        _attr(nftrace.A_TYPE, struct.pack("!I", 3)),
        _attr(nftrace.A_VERDICT | 0x8000, verdict),  # NLA_F_NESTED
        _attr(nftrace.A_ID, struct.pack("!I", 908131470)),
        _attr(nftrace.A_NETWORK_HEADER, network),
        _attr(nftrace.A_TRANSPORT_HEADER, transport),
        _attr(nftrace.A_IIF, struct.pack("!I", 2)),
        _attr(nftrace.A_OIF, struct.pack("!I", 4)),
    )
    (e,) = nftrace.decode(data + data[:0], "ns")
    assert (e.netns, e.id, e.kind, e.table, e.chain, e.handle) == (
        "ns", 908131470, "rule", "podnet_c", "forward", 34
    )  # fmt: skip
    assert (e.verdict, e.target, e.iif, e.oif) == ("jump", "in-65d0c28a51", 2, 4)
    assert e.header == nftrace.Header("10.244.0.2", "10.244.1.3", 6, 45123, 5432)


def test_a_policy_event_and_other_messages_in_one_datagram() -> None:
    policy = _message(
        _attr(nftrace.A_TABLE, b"podnet_c\0"),
        _attr(nftrace.A_CHAIN, b"forward\0"),
        _attr(nftrace.A_TYPE, struct.pack("!I", 1)),
        _attr(nftrace.A_POLICY, struct.pack("!I", 1)),
        _attr(nftrace.A_ID, struct.pack("!I", 7)),
    )
    other = struct.pack("=LHHLL", 20, 3, 0, 0, 0) + b"\0" * 4  # NLMSG_DONE
    events = nftrace.decode(other + policy, "ns")
    assert [(e.kind, e.verdict, e.handle, e.header) for e in events] == [
        ("policy", "accept", None, None)
    ]


def test_a_drop_verdict() -> None:
    data = _message(
        _attr(nftrace.A_TABLE, b"podnet_c\0"),
        _attr(nftrace.A_CHAIN, b"in-65d0c28a51\0"),
        _attr(nftrace.A_RULE_HANDLE, struct.pack("!Q", 30)),
        _attr(nftrace.A_TYPE, struct.pack("!I", 3)),
        _attr(nftrace.A_VERDICT, _attr(nftrace.NFTA_VERDICT_CODE, struct.pack("!i", 0))),
    )
    (e,) = nftrace.decode(data, "ns")
    assert (e.verdict, e.handle, e.target) == ("drop", 30, None)
