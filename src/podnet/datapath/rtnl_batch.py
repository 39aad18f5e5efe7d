"""Many rtnetlink requests of one namespace in a few send(2) calls.

A node of a 256-node host-gw cluster holds a route to each other node's podCIDR (a vxlan
node a route, a neighbour and an FDB entry each): 65,000 routes for the cluster. Sent one
by one through pyroute2, each request costs about a millisecond of Python (its request
machinery and an asyncio round trip), which made `up` at that size take minutes. Here the
messages are packed with `struct`, sent in batches of BATCH on a plain NETLINK_ROUTE socket
of the namespace (opened by the netns Worker, the one guarded way in), and every one is
acknowledged (NLM_F_ACK): the first error raises, naming the request.

The encodings are the kernel's (include/uapi/linux/rtnetlink.h, neighbour.h) and the
values the ones pyroute2 sent before: routes of type unicast, scope universe, protocol
static, in the main table; permanent neighbours; FDB entries appended with NTF_SELF.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from dataclasses import dataclass

RTM_NEWROUTE = 24
RTM_NEWNEIGH = 28
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_REPLACE = 0x100
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PREFSRC, RTA_TABLE = 1, 4, 5, 7, 15
NDA_DST, NDA_LLADDR = 1, 2
RTN_UNICAST = 1
RT_SCOPE_UNIVERSE = 0
RTPROT_STATIC = 4
MAIN_TABLE = 254
NUD_PERMANENT = 0x80
NTF_SELF = 0x2
BATCH = 64  # requests in flight: their acks fit the socket's receive buffer

_HDR = struct.Struct("=LHHLL")
_RTMSG = struct.Struct("=BBBBBBBBI")
_NDMSG = struct.Struct("=BBHiHBB")


class BatchError(OSError):
    """The kernel refused one request of a batch; errno and what the request was."""


@dataclass(frozen=True)
class Request:
    kind: int
    flags: int
    body: bytes
    what: str  # for the error message


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def _ip(addr: str) -> bytes:
    return socket.inet_aton(addr)


def route(
    dst: str, oif: int, via: str | None = None, src: str | None = None, onlink: bool = False
) -> Request:
    """`ip route replace DST [via VIA] dev OIF [src SRC] [onlink] proto static`."""
    net, _, plen = dst.partition("/")
    head = _RTMSG.pack(
        socket.AF_INET, int(plen or 32), 0, 0, MAIN_TABLE, RTPROT_STATIC,
        RT_SCOPE_UNIVERSE, RTN_UNICAST, 4 if onlink else 0,
    )  # fmt: skip
    attrs = _attr(RTA_TABLE, struct.pack("=I", MAIN_TABLE)) + _attr(RTA_OIF, struct.pack("=I", oif))
    if plen != "0":
        attrs += _attr(RTA_DST, _ip(net))
    if via:
        attrs += _attr(RTA_GATEWAY, _ip(via))
    if src:
        attrs += _attr(RTA_PREFSRC, _ip(src))
    return Request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, head + attrs, f"route {dst}")


def neighbour(ip: str, mac: str, ifindex: int) -> Request:
    """`ip neigh replace IP lladdr MAC dev IFINDEX nud permanent`."""
    head = _NDMSG.pack(socket.AF_INET, 0, 0, ifindex, NUD_PERMANENT, 0, 0)
    attrs = _attr(NDA_DST, _ip(ip)) + _attr(NDA_LLADDR, bytes.fromhex(mac.replace(":", "")))
    return Request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, head + attrs, f"neighbour {ip}")


def fdb(mac: str, dst: str, ifindex: int) -> Request:
    """`bridge fdb append MAC dev IFINDEX dst DST self permanent`."""
    head = _NDMSG.pack(socket.AF_BRIDGE, 0, 0, ifindex, NUD_PERMANENT, NTF_SELF, 0)
    attrs = _attr(NDA_LLADDR, bytes.fromhex(mac.replace(":", ""))) + _attr(NDA_DST, _ip(dst))
    return Request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND, head + attrs, f"fdb {mac} {dst}")


def send(sock: socket.socket, requests: list[Request]) -> None:
    """Send every request and wait for every ack; BatchError on the first refusal."""
    for start in range(0, len(requests), BATCH):
        _send_batch(sock, requests[start : start + BATCH])


def _send_batch(sock: socket.socket, batch: list[Request]) -> None:
    out, pending = bytearray(), dict[int, Request]()
    for seq, req in enumerate(batch, 1):
        flags = NLM_F_REQUEST | NLM_F_ACK | req.flags
        out += _HDR.pack(_HDR.size + len(req.body), req.kind, flags, seq, 0) + req.body
        pending[seq] = req
    sock.sendall(out)
    while pending:
        data = sock.recv(1 << 16)
        off = 0
        while off + _HDR.size <= len(data):
            length, kind, _, seq, _ = _HDR.unpack_from(data, off)
            if length < _HDR.size:
                break
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", data, off + _HDR.size)[0]
                r = pending.pop(seq) if seq in pending else None
                if code and r is not None:
                    raise BatchError(code, f"{r.what}: {os.strerror(code)}")
            off += (length + 3) & ~3
    if pending:  # pragma: no cover - the kernel acks every request
        raise BatchError(errno.EPROTO, f"{len(pending)} request(s) never acknowledged")
