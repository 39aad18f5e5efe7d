"""Many rtnetlink requests of one namespace in a few send(2) calls.

A node of a 256-node host-gw cluster holds a route to each other node's podCIDR (a vxlan
node a route, a neighbour and an FDB entry each): 65,000 routes for the cluster. Sent one
by one through pyroute2, each request costs about a millisecond of Python (its request
machinery and an asyncio round trip), which made `up` at that size take minutes. Here the
messages are packed with `struct`, sent in batches of BATCH on a plain NETLINK_ROUTE socket
of the namespace (opened by the netns Worker, the one guarded way in), and every one is
acknowledged (NLM_F_ACK): the first error raises, naming the request.

A namespace `up` has just created has nothing to diff (datapath.fresh): its links and
addresses go the same way, and `link_indexes` reads back only the names and indexes.

The encodings are the kernel's (include/uapi/linux/rtnetlink.h, neighbour.h) and the
values the ones pyroute2 sent before: routes of type unicast, scope universe, protocol
static, in the main table; permanent neighbours; FDB entries appended with NTF_SELF.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

RTM_NEWLINK, RTM_GETLINK, RTM_NEWADDR = 16, 18, 20
RTM_NEWROUTE = 24
RTM_NEWNEIGH = 28
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
IFF_UP = 0x1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO = 1, 3, 4, 10, 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_VXLAN_ID, IFLA_VXLAN_LINK, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LEARNING = 1, 3, 4, 7
IFLA_VXLAN_PORT = 15
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PREFSRC, RTA_MULTIPATH, RTA_TABLE = 1, 4, 5, 7, 9, 15
_RTNEXTHOP = struct.Struct("=HBBi")  # struct rtnexthop: len, flags, hops, ifindex
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
_IFINFOMSG = struct.Struct("=BBHiII")
_IFADDRMSG = struct.Struct("=BBBBI")


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
    dst: str,
    oif: int,
    via: str | None = None,
    src: str | None = None,
    onlink: bool = False,
    nexthops: tuple[str, ...] = (),
) -> Request:
    """`ip route replace DST [via VIA] dev OIF [src SRC] [onlink] proto static`; with
    `nexthops`, `ip route replace DST nexthop via A dev OIF nexthop via B dev OIF ...`."""
    net, _, plen = dst.partition("/")
    head = _RTMSG.pack(
        socket.AF_INET, int(plen or 32), 0, 0, MAIN_TABLE, RTPROT_STATIC,
        RT_SCOPE_UNIVERSE, RTN_UNICAST, 4 if onlink else 0,
    )  # fmt: skip
    attrs = _attr(RTA_TABLE, struct.pack("=I", MAIN_TABLE))
    if nexthops:
        hops = b""
        for gw in nexthops:
            gateway = _attr(RTA_GATEWAY, _ip(gw))
            hops += _RTNEXTHOP.pack(_RTNEXTHOP.size + len(gateway), 0, 0, oif) + gateway
        attrs += _attr(RTA_MULTIPATH, hops)
    else:
        attrs += _attr(RTA_OIF, struct.pack("=I", oif))
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


def _mac(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def _ifinfo(index: int = 0, up: bool = False) -> bytes:
    flag = IFF_UP if up else 0
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, index, flag, flag)


def _link_attrs(name: str | None, mac: str | None, mtu: int | None) -> bytes:
    out = _attr(IFLA_IFNAME, name.encode() + b"\0") if name else b""
    if mac:
        out += _attr(IFLA_ADDRESS, _mac(mac))
    if mtu:
        out += _attr(IFLA_MTU, struct.pack("=I", mtu))
    return out


def link_set(
    index: int = 0,
    name: str | None = None,
    up: bool = False,
    mac: str | None = None,
    mtu: int | None = None,
    master: int | None = None,
) -> Request:
    """`ip link set {INDEX|dev NAME} [address MAC] [mtu MTU] [master M] [up]`: by index,
    or by name when the index is not known (the kernel looks the name up)."""
    attrs = _link_attrs(name, mac, mtu)
    if master:
        attrs += _attr(IFLA_MASTER, struct.pack("=I", master))
    return Request(RTM_NEWLINK, 0, _ifinfo(index, up) + attrs, f"link set {name or index}")


def link_add(
    name: str,
    kind: str,
    data: bytes = b"",
    mac: str | None = None,
    mtu: int | None = None,
    master: int | None = None,
    up: bool = False,
) -> Request:
    """`ip link add NAME [address MAC] [mtu MTU] [master M] type KIND ...` (fails with
    EEXIST when the name is taken); `up` brings it up once it is registered."""
    info = _attr(IFLA_INFO_KIND, kind.encode() + b"\0")
    if data:
        info += _attr(IFLA_INFO_DATA, data)
    attrs = _link_attrs(name, mac, mtu) + _attr(IFLA_LINKINFO, info)
    if master:
        attrs += _attr(IFLA_MASTER, struct.pack("=I", master))
    return Request(
        RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, _ifinfo(0, up) + attrs, f"link add {name}"
    )


def veth_peer(name: str, netns_fd: int, mac: str | None = None, mtu: int | None = None) -> bytes:
    """IFLA_INFO_DATA of a veth: the peer's name and attributes, placed straight into the
    namespace of `netns_fd` (the peer never exists in the creating namespace)."""
    peer = _ifinfo() + _link_attrs(name, mac, mtu)
    return _attr(VETH_INFO_PEER, peer + _attr(IFLA_NET_NS_FD, struct.pack("=I", netns_fd)))


def vxlan(vni: int, port: int, local: str, link: int) -> bytes:
    """IFLA_INFO_DATA of a VXLAN device: `id VNI dstport PORT local LOCAL dev LINK
    nolearning`."""
    return (
        _attr(IFLA_VXLAN_ID, struct.pack("=I", vni))
        + _attr(IFLA_VXLAN_LINK, struct.pack("=I", link))
        + _attr(IFLA_VXLAN_LOCAL, _ip(local))
        + _attr(IFLA_VXLAN_LEARNING, b"\0")
        + _attr(IFLA_VXLAN_PORT, struct.pack("!H", port))
    )


def address(cidr: str, index: int) -> Request:
    """`ip addr add CIDR dev INDEX` (IPv4; no broadcast, as pyroute2 sent it)."""
    ip, _, plen = cidr.partition("/")
    head = _IFADDRMSG.pack(socket.AF_INET, int(plen or 32), 0, 0, index)
    attrs = _attr(IFA_LOCAL, _ip(ip)) + _attr(IFA_ADDRESS, _ip(ip))
    return Request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, head + attrs, f"address {cidr}")


def link_indexes(sock: socket.socket) -> dict[str, int]:
    """{name: ifindex} of every link of the socket's namespace (one RTM_GETLINK dump,
    reading only the index and IFLA_IFNAME of each answer)."""
    body = _ifinfo()
    flags = NLM_F_REQUEST | NLM_F_DUMP
    sock.sendall(_HDR.pack(_HDR.size + len(body), RTM_GETLINK, flags, 1, 0) + body)
    out: dict[str, int] = {}
    while True:
        data = sock.recv(1 << 16)
        for kind, _, off, length in messages(data):
            if kind == NLMSG_DONE:
                return out
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", data, off + _HDR.size)[0]
                raise BatchError(code, f"link dump: {os.strerror(code)}")
            if kind == RTM_NEWLINK:
                index = _IFINFOMSG.unpack_from(data, off + _HDR.size)[3]
                a, end = off + _HDR.size + _IFINFOMSG.size, off + length
                while a + 4 <= end:
                    alen, atype = struct.unpack_from("=HH", data, a)
                    if alen < 4:
                        break
                    if atype == IFLA_IFNAME:
                        out[data[a + 4 : a + alen].split(b"\0", 1)[0].decode()] = index
                        break
                    a += (alen + 3) & ~3


def messages(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(type, sequence number, offset, length) of each netlink message in one read."""
    off = 0
    while off + _HDR.size <= len(data):
        length, kind, _, seq, _ = _HDR.unpack_from(data, off)
        if length < _HDR.size:
            return
        yield kind, seq, off, length
        off += (length + 3) & ~3


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
        for kind, seq, off, _ in messages(data):
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", data, off + _HDR.size)[0]
                r = pending.pop(seq) if seq in pending else None
                if code and r is not None:
                    raise BatchError(code, f"{r.what}: {os.strerror(code)}")
    if pending:  # pragma: no cover - the kernel acks every request
        raise BatchError(errno.EPROTO, f"{len(pending)} request(s) never acknowledged")
