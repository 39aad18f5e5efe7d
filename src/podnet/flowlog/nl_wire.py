"""Netfilter's netlink messages, decoded from bytes (sans-io): ctnetlink events
(linux/netfilter/nfnetlink_conntrack.h) and nfnetlink_log packets
(linux/netfilter/nfnetlink_log.h), and the nfnetlink_log configuration requests.

A netlink message is `struct nlmsghdr` (length, type, flags, seq, pid), then for
nfnetlink `struct nfgenmsg` (family, version, res_id big-endian), then attributes:
`struct nlattr` (length, type; NLA_F_NESTED and NLA_F_NET_BYTEORDER in the type's top
bits), each padded to 4 bytes. Netfilter's attribute values are in network byte order.

Rejected: pyroute2's NFCTSocket for the conntrack half. It parses every attribute of every
event into dicts of its own (a few hundred µs an event) and would leave nflog, which it
does not know, to a second decoder; one small decoder of the fields we need serves both.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from socket import inet_ntoa

NLMSG_HDR = struct.Struct("=IHHII")
NFGEN = struct.Struct("!BBH")
NLA = struct.Struct("=HH")
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER

NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 2, 3, 4
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NETLINK_NETFILTER = 12

# nfnetlink subsystems (the high byte of the message type)
SUBSYS_CTNETLINK, SUBSYS_ULOG = 1, 4
IPCTNL_MSG_CT_NEW = 0
NFULNL_MSG_PACKET, NFULNL_MSG_CONFIG = 0, 1
NFNLGRP_CONNTRACK_NEW = 1  # a multicast group: bind with 1 << (group - 1)

# ctnetlink attributes
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS = 1, 2, 3
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST = 1, 2
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
IPS_SRC_NAT, IPS_DST_NAT = 1 << 4, 1 << 5
_CT_WANTED = frozenset({CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS})

# nfnetlink_log attributes
NFULA_PACKET_HDR, NFULA_TIMESTAMP, NFULA_PAYLOAD, NFULA_PREFIX, NFULA_SEQ = 1, 3, 9, 10, 12
NFULA_CFG_CMD, NFULA_CFG_MODE, NFULA_CFG_TIMEOUT, NFULA_CFG_QTHRESH = 1, 2, 4, 5
NFULA_CFG_FLAGS = 6
NFULNL_CFG_CMD_BIND, NFULNL_CFG_CMD_UNBIND = 1, 2
NFULNL_COPY_PACKET = 2
NFULNL_CFG_F_SEQ = 0x0001  # a per-group sequence number on every message: gaps are losses
COPY_RANGE = 64  # bytes of the packet copied: an IPv4 header with options and 4 of L4
# The kernel batches a group's messages until QTHRESH of them wait or TIMEOUT (1/100 s)
# passed since the first; its defaults (100, 1 s) would show a flow a second late.
QTHRESH, FLUSH_TIMEOUT = 16, 5

PROTO_NAMES = {6: "TCP", 17: "UDP", 132: "SCTP", 1: "ICMP"}
_PORTED = {6, 17, 132}


@dataclass(frozen=True, slots=True)
class FiveTuple:
    """A connection's direction as conntrack keys it (ports 0 for protocols without)."""

    proto: int
    src: str
    sport: int
    dst: str
    dport: int

    def reversed(self) -> FiveTuple:
        return FiveTuple(self.proto, self.dst, self.dport, self.src, self.sport)


@dataclass(frozen=True, slots=True)
class CtEvent:
    """A new conntrack entry: the original direction, the reply direction (NAT shows as
    their difference) and the entry's status bits."""

    orig: FiveTuple
    reply: FiveTuple
    status: int

    @property
    def dnat(self) -> bool:
        return bool(self.status & IPS_DST_NAT)

    @property
    def snat(self) -> bool:
        return bool(self.status & IPS_SRC_NAT)


@dataclass(frozen=True, slots=True)
class LogPacket:
    """One nfnetlink_log message: the rule's prefix, the packet's 5-tuple (None when the
    copy was not an IPv4 packet), the group's sequence number (None without the flag)."""

    prefix: str
    packet: FiveTuple | None
    seq: int | None
    hook: int


@dataclass(frozen=True, slots=True)
class Message:
    type: int
    flags: int
    seq: int
    body: bytes  # after the nlmsghdr


def messages(data: bytes) -> Iterator[Message]:
    """The netlink messages of one datagram (a truncated tail is ignored)."""
    off = 0
    while off + NLMSG_HDR.size <= len(data):
        length, mtype, flags, seq, _pid = NLMSG_HDR.unpack_from(data, off)
        if length < NLMSG_HDR.size or off + length > len(data):
            return
        yield Message(mtype, flags, seq, data[off + NLMSG_HDR.size : off + length])
        off += (length + 3) & ~3


def attributes(data: bytes, off: int = 0, want: frozenset[int] = frozenset()) -> dict[int, bytes]:
    """{type: value} of a run of attributes (the last of a repeated type wins). With `want`,
    the walk stops once it has those types: ctnetlink writes tuples, zone, id and status
    first, and the rest of an event (timeouts, counters, protocol state) is not read."""
    out = {}
    end = len(data)
    unpack = NLA.unpack_from
    while off + 4 <= end:
        length, atype = unpack(data, off)
        if length < 4 or off + length > end:
            break
        out[atype & NLA_TYPE_MASK] = data[off + 4 : off + length]
        if want and want <= out.keys():
            break
        off += (length + 3) & ~3
    return out


def error_code(msg: Message) -> int:
    """An NLMSG_ERROR's error (0: the ACK of a request; else -errno)."""
    return int(struct.unpack_from("=i", msg.body)[0])


# ---- ctnetlink ---------------------------------------------------------------------------
def _tuple(data: bytes) -> FiveTuple | None:
    a = attributes(data)
    ip = attributes(a.get(CTA_TUPLE_IP, b""))
    proto = attributes(a.get(CTA_TUPLE_PROTO, b""))
    if CTA_IP_V4_SRC not in ip or CTA_IP_V4_DST not in ip or CTA_PROTO_NUM not in proto:
        return None  # IPv6 (CTA_IP_V6_*): podnet's networks are IPv4
    num = proto[CTA_PROTO_NUM][0]
    sport = struct.unpack("!H", proto[CTA_PROTO_SRC_PORT])[0] if num in _PORTED else 0
    dport = struct.unpack("!H", proto[CTA_PROTO_DST_PORT])[0] if num in _PORTED else 0
    return FiveTuple(num, inet_ntoa(ip[CTA_IP_V4_SRC]), sport, inet_ntoa(ip[CTA_IP_V4_DST]), dport)


def ct_event(msg: Message) -> CtEvent | None:
    """A ctnetlink NEW event, or None for anything else (other messages, IPv6)."""
    if msg.type != (SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW):
        return None
    a = attributes(msg.body, NFGEN.size, want=_CT_WANTED)
    orig = _tuple(a.get(CTA_TUPLE_ORIG, b""))
    reply = _tuple(a.get(CTA_TUPLE_REPLY, b""))
    if orig is None or reply is None:
        return None
    status = struct.unpack("!I", a[CTA_STATUS])[0] if CTA_STATUS in a else 0
    return CtEvent(orig, reply, status)


# ---- nfnetlink_log -----------------------------------------------------------------------
def ipv4_five_tuple(packet: bytes) -> FiveTuple | None:
    """The 5-tuple of an IPv4 packet's first bytes (ports from the transport header)."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    proto = packet[9]
    src, dst = inet_ntoa(packet[12:16]), inet_ntoa(packet[16:20])
    sport = dport = 0
    if proto in _PORTED and len(packet) >= ihl + 4:
        sport, dport = struct.unpack_from("!HH", packet, ihl)
    return FiveTuple(proto, src, sport, dst, dport)


def log_packet(msg: Message) -> LogPacket | None:
    """An nfnetlink_log packet message, or None for anything else."""
    if msg.type != (SUBSYS_ULOG << 8 | NFULNL_MSG_PACKET):
        return None
    a = attributes(msg.body, NFGEN.size)
    prefix = a.get(NFULA_PREFIX, b"").split(b"\0", 1)[0].decode(errors="replace")
    seq = struct.unpack("!I", a[NFULA_SEQ])[0] if NFULA_SEQ in a else None
    hook = a[NFULA_PACKET_HDR][2] if len(a.get(NFULA_PACKET_HDR, b"")) >= 3 else -1
    return LogPacket(prefix, ipv4_five_tuple(a.get(NFULA_PAYLOAD, b"")), seq, hook)


def _nla(atype: int, value: bytes) -> bytes:
    raw = NLA.pack(NLA.size + len(value), atype) + value
    return raw + b"\0" * (-len(raw) % 4)


def _request(mtype: int, seq: int, family: int, res_id: int, attrs: bytes) -> bytes:
    body = NFGEN.pack(family, 0, res_id) + attrs
    flags = NLM_F_REQUEST | NLM_F_ACK
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), mtype, flags, seq, 0) + body


def log_bind(group: int, seq: int = 1) -> bytes:
    """Bind this socket to nfnetlink_log `group` (AF_UNSPEC: every address family)."""
    cmd = _nla(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND]))
    return _request(SUBSYS_ULOG << 8 | NFULNL_MSG_CONFIG, seq, 0, group, cmd)


def log_configure(group: int, seq: int = 2) -> bytes:
    """Copy COPY_RANGE bytes of each packet, number the messages (NFULNL_CFG_F_SEQ), send
    them within 50 ms."""
    mode = _nla(NFULA_CFG_MODE, struct.pack("!IBB", COPY_RANGE, NFULNL_COPY_PACKET, 0))
    flags = _nla(NFULA_CFG_FLAGS, struct.pack("!H", NFULNL_CFG_F_SEQ))
    qthresh = _nla(NFULA_CFG_QTHRESH, struct.pack("!I", QTHRESH))
    timeout = _nla(NFULA_CFG_TIMEOUT, struct.pack("!I", FLUSH_TIMEOUT))
    attrs = mode + flags + qthresh + timeout
    return _request(SUBSYS_ULOG << 8 | NFULNL_MSG_CONFIG, seq, 0, group, attrs)
