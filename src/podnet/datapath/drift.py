"""Has anything changed the cluster's kernel state behind the reconciler's back? Answered
without reading the state itself, so that the daemon's periodic check costs the same at
5,000 pods as at 5 (a full resync reads every namespace and re-applies every ruleset).

After each successful sync the reconciler `arm`s the watch with what it just made; `drift`
later names the first difference it sees, or returns None:

- namespaces: the set of the cluster's names under NETNS_DIR and each one's inode (a
  namespace deleted, added, or deleted and re-created under its name);
- netlink: one NETLINK_ROUTE socket per fabric, internet and node namespace, subscribed to
  link, IPv4 address, IPv4 route and neighbour events. Our own changes are drained when
  the watch is armed; any later event is drift, except neighbours that are not permanent
  (ARP, bridge learning: traffic makes those, not configuration). A pod's link lives in
  its node too, so deleting or downing a pod's veth shows in its node's socket;
- nft: the ruleset generation of each node namespace (NFT_MSG_GETGEN on a NETLINK_NETFILTER
  socket in that namespace). Every committed nft transaction in a namespace bumps it;
  counters and listings do not.

What it does not see: addresses, routes and neighbours changed inside a pod's own
namespace (one socket per pod would cost 5,000 file descriptors beside the stand-in's
listeners), and a change made between the end of a sync and the arming that follows it.
Sockets live in their namespace for their whole life, so they are opened once (on the
netns Worker, the one guarded way in) and kept while the namespace's inode stays the same.
"""

from __future__ import annotations

import errno
import select
import socket
import struct
from collections.abc import Collection, Iterable, Mapping

from podnet.datapath import netns
from podnet.datapath.rtnl_batch import messages

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWGEN = 15
NFT_MSG_GETGEN = 16
NFTA_GEN_ID = 1
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTMGRP_LINK = 0x1
RTMGRP_NEIGH = 0x4
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTM_NEWNEIGH = 28
RTM_DELNEIGH = 29
NUD_PERMANENT = 0x80
SO_RCVBUFFORCE = 33  # socket(7); Python's socket module does not name it
MONITOR_BUFFER = 8 << 20
_NLMSGHDR = struct.Struct("=LHHLL")
_NLATTR = struct.Struct("=HH")


class Drift(Exception):
    """What the watch saw (internal: ends the check at the first difference)."""


def route_monitor(worker: netns.Worker, name: str, neighbours: bool = True) -> socket.socket:
    """A non-blocking NETLINK_ROUTE socket in `name`, subscribed to configuration events.

    Without `neighbours` (the fabric: its bridge learns every node's MAC, and a cluster of
    hundreds of nodes floods such a socket with learning events until it overflows, which
    reads as drift; podnet programs no neighbour there). The receive buffer is raised
    (SO_RCVBUFFORCE, root) so that traffic-made events between two checks do not overflow
    it either."""

    def make() -> socket.socket:
        return socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK, 0
        )

    sock = worker.call(name, make)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, MONITOR_BUFFER)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MONITOR_BUFFER)
    groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE
    sock.bind((0, groups | (RTMGRP_NEIGH if neighbours else 0)))
    return sock


def nft_socket(worker: netns.Worker, name: str) -> socket.socket:
    """A NETLINK_NETFILTER socket in `name`, for `nft_generation`."""

    def make() -> socket.socket:
        return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 12)

    sock = worker.call(name, make)
    sock.settimeout(5.0)
    return sock


def nft_generation(sock: socket.socket) -> int:
    """The nftables ruleset generation of the socket's namespace (what `nft monitor`
    reports as "new generation"): one request, one answer."""
    msg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, 0)  # nfgenmsg: family, version, res_id
    sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), msg_type, NLM_F_REQUEST, 1, 0) + body)
    data = sock.recv(65536)
    length, kind, _, _, _ = _NLMSGHDR.unpack_from(data)
    if kind == NLMSG_ERROR:
        code = -struct.unpack_from("=i", data, _NLMSGHDR.size)[0]
        raise OSError(code, f"NFT_MSG_GETGEN: {errno.errorcode.get(code, code)}")
    off = _NLMSGHDR.size + 4
    while off + _NLATTR.size <= length:
        alen, atype = _NLATTR.unpack_from(data, off)
        if atype & 0x3FFF == NFTA_GEN_ID:
            return int(struct.unpack_from(">I", data, off + _NLATTR.size)[0])
        off += (alen + 3) & ~3
    raise OSError(errno.EPROTO, "NFT_MSG_NEWGEN without NFTA_GEN_ID")


def _configuration_events(sock: socket.socket) -> list[str]:
    """Read every pending message; those that are configuration, not traffic, named by
    their message type (what the log says drifted)."""
    found: list[str] = []
    while True:
        try:
            data = sock.recv(1 << 16)
        except BlockingIOError:
            return found
        except OSError as e:  # ENOBUFS: events were lost, so something happened
            if e.errno == errno.ENOBUFS:
                return [*found, "events lost (ENOBUFS)"]
            raise
        for kind, _, off, _ in messages(data):
            if kind in (RTM_NEWNEIGH, RTM_DELNEIGH):
                # struct ndmsg: family, pad1, pad2, ifindex, state (u16), flags, type
                family = data[off + _NLMSGHDR.size]
                state = struct.unpack_from("=H", data, off + _NLMSGHDR.size + 8)[0]
                if state & NUD_PERMANENT:
                    found.append(f"permanent neighbour message {kind} (family {family})")
            elif kind not in (NLMSG_DONE, NLMSG_ERROR):
                found.append(f"message type {kind}")


def _identity(name: str) -> tuple[int, int] | None:
    try:
        return netns.identity(name)
    except FileNotFoundError:
        return None


class DriftWatch:
    """The reconciler's cheap check between full syncs (module docstring)."""

    def __init__(self, prefix: str, fabric: str = "") -> None:
        self.prefix = prefix
        self.fabric = fabric  # its netlink watch leaves out neighbours (route_monitor)
        self.armed = False
        self._idents: dict[str, tuple[int, int] | None] = {}  # None: gone when armed
        self._routes: dict[str, tuple[tuple[int, int], socket.socket]] = {}
        self._nft: dict[str, tuple[tuple[int, int], socket.socket, int]] = {}

    def arm(
        self,
        names: Iterable[str],
        watched: Iterable[str],
        nodes: Mapping[str, str],
        unchanged: Collection[str] = (),
    ) -> None:
        """Take the kernel as it is now as the reference: `names` every namespace of the
        cluster, `watched` those whose netlink events count, `nodes` node -> namespace.
        A namespace already gone is recorded as such: the next check reports it (arming
        never fails for it, so a baseline is still adopted and the repair is the next
        periodic sync's, as without a watch). Namespaces in `unchanged` (an incremental
        sync neither created, removed nor rewired them) keep the identity recorded before:
        not looking again at 5,000 namespaces saves time, and a namespace replaced behind
        our back before this sync is then still reported by the next check."""
        self.armed = False
        before = self._idents
        self._idents = {
            n: before[n] if n in unchanged and before.get(n) is not None else _identity(n)
            for n in names
        }
        present = {n for n, ident in self._idents.items() if ident is not None}
        watched, node_ns = set(watched) & present, set(nodes.values()) & present
        for n in [n for n in self._routes if n not in watched]:
            self._routes.pop(n)[1].close()
        for n in [n for n in self._nft if n not in node_ns]:
            self._nft.pop(n)[1].close()
        with netns.Worker() as worker:
            for n in sorted(watched | node_ns):
                try:
                    self._open(worker, n, n in watched, n in node_ns)
                except OSError:  # gone meanwhile: the next check says so
                    self._idents[n] = None
        for _, sock in self._routes.values():
            _configuration_events(sock)  # our own changes
        self.armed = True

    def _open(self, worker: netns.Worker, n: str, route: bool, nft: bool) -> None:
        ident = self._idents[n]
        assert ident is not None
        old = self._routes.get(n)
        if route and (old is None or old[0] != ident):
            if old:
                old[1].close()
            self._routes[n] = (ident, route_monitor(worker, n, neighbours=n != self.fabric))
        entry = self._nft.get(n)
        if nft:
            if entry is None or entry[0] != ident:
                if entry:
                    entry[1].close()
                entry = (ident, nft_socket(worker, n), 0)
            self._nft[n] = (ident, entry[1], nft_generation(entry[1]))

    def drift(self) -> str | None:
        """The first difference from what `arm` saw, or None. Not armed: always drift."""
        if not self.armed:
            return "no reference yet"
        try:
            self._check()
        except Drift as d:
            return str(d)
        except OSError as e:
            return f"check failed: {e}"
        return None

    def _check(self) -> None:
        gone = [n for n, ident in self._idents.items() if ident is None]
        if gone:
            raise Drift(f"namespace {gone[0]} was gone when the watch was armed")
        listed = set(netns.listing(self.prefix))
        if listed != self._idents.keys():
            gone, new = sorted(self._idents.keys() - listed), sorted(listed - self._idents.keys())
            raise Drift(f"namespaces gone {gone[:3]}, unknown {new[:3]}")
        for name, ident in self._idents.items():
            now = _identity(name)
            if now is None:
                raise Drift(f"namespace {name} is gone")
            if now != ident:
                raise Drift(f"namespace {name} was replaced")
        socks = {s.fileno(): n for n, (_, s) in self._routes.items()}
        poller = select.poll()
        for fd in socks:
            poller.register(fd, select.POLLIN)
        for fd, _ in poller.poll(0):
            name = socks[fd]
            if events := _configuration_events(self._routes[name][1]):
                shown = ", ".join(sorted(set(events))[:4])
                raise Drift(f"netlink configuration event in {name} ({shown})")
        for name, (_, sock, gen) in self._nft.items():
            if nft_generation(sock) != gen:
                raise Drift(f"nft ruleset of {name} changed")

    def close(self) -> None:
        for _, sock in self._routes.values():
            sock.close()
        for _, sock, _ in self._nft.values():
            sock.close()
        self._routes.clear()
        self._nft.clear()
        self.armed = False
