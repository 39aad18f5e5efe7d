"""The two netlink event sockets of one node namespace: conntrack's NEW events and
nfnetlink_log's group of podnet's policy rules. Both are per network namespace, so each
socket is created from a thread inside the node's namespace (datapath.netns, the one way
in) and stays bound to it.

Nothing is lost silently: the receive buffers are 8 MiB (SO_RCVBUFFORCE: we are root),
NETLINK_NO_ENOBUFS stays off so that an overrun surfaces as ENOBUFS on the next read, and
nfnetlink_log numbers its messages (NFULNL_CFG_F_SEQ), so a gap counts what was lost.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from podnet.datapath.netns import Namespaces
from podnet.flowlog import nl_wire as w

SO_RCVBUFFORCE = 33
RCVBUF = 8 << 20
READ_SIZE = 1 << 16


class NetlinkSetupError(OSError):
    """The kernel refused a configuration request (its errno)."""


@dataclass
class Lost:
    """Events one socket knows it lost: `overruns` ENOBUFS (each an unknown number of
    messages), `gap` messages missing from nflog's sequence numbers."""

    overruns: int = 0
    gap: int = 0


@dataclass
class NodeSockets:
    node: str
    netns: str
    ct: socket.socket
    log: socket.socket
    next_seq: int | None = 0  # the nflog sequence number expected next (a new bind: 0)
    ct_lost: Lost = field(default_factory=Lost)
    log_lost: Lost = field(default_factory=Lost)

    def close(self) -> None:
        self.ct.close()
        self.log.close()


def _netlink(groups: int) -> socket.socket:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, w.NETLINK_NETFILTER)
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
    s.bind((0, groups))
    return s


def _ask(s: socket.socket, request: bytes) -> None:
    """Send a request and wait for its ACK (the socket is still blocking here)."""
    s.send(request)
    seq = w.NLMSG_HDR.unpack_from(request)[3]
    while True:
        for msg in w.messages(s.recv(READ_SIZE)):
            if msg.type == w.NLMSG_ERROR and msg.seq == seq:
                code = w.error_code(msg)
                if code:
                    raise NetlinkSetupError(-code, f"nfnetlink_log: {errno.errorcode[-code]}")
                return


def open_node(spaces: Namespaces, node: str, netns: str, group: int) -> NodeSockets:
    """Both sockets of one node namespace, configured and non-blocking."""
    with spaces.entered(netns):
        ct = _netlink(1 << (w.NFNLGRP_CONNTRACK_NEW - 1))
        log = _netlink(0)
    try:
        _ask(log, w.log_bind(group))
        _ask(log, w.log_configure(group))
    except BaseException:
        ct.close()
        log.close()
        raise
    ct.setblocking(False)
    log.setblocking(False)
    return NodeSockets(node, netns, ct, log)


def drain(s: socket.socket, lost: Lost) -> Iterator[w.Message]:
    """Every message waiting on a non-blocking socket; an overrun is counted in `lost`."""
    while True:
        try:
            data = s.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.ENOBUFS:
                raise
            lost.overruns += 1
            continue
        yield from w.messages(data)


def log_packets(ns: NodeSockets) -> Iterator[w.LogPacket]:
    """The node's waiting nflog packets; a gap in their numbers is counted as lost."""
    for msg in drain(ns.log, ns.log_lost):
        pkt = w.log_packet(msg)
        if pkt is None:
            continue
        if pkt.seq is not None:
            if ns.next_seq is not None and pkt.seq > ns.next_seq:
                ns.log_lost.gap += pkt.seq - ns.next_seq
            ns.next_seq = pkt.seq + 1
        yield pkt


def ct_events(ns: NodeSockets) -> Iterator[w.CtEvent]:
    for msg in drain(ns.ct, ns.ct_lost):
        ev = w.ct_event(msg)
        if ev is not None:
            yield ev
