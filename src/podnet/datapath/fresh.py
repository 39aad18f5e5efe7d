"""A namespace this sync has just created: nothing to diff, so no dumps and no pyroute2.

`Session` (the diff) reads every table of a namespace before it changes anything; for the
thousands of namespaces `up` creates, that reading and pyroute2's per-request machinery
were most of `up`'s time, although a new namespace holds nothing but `lo` (and the fallback
tunnel devices some modules add, which podnet leaves alone). Here a fresh namespace is
built with raw rtnetlink (`rtnl_batch`) in three batches on one socket, reading back only
the names and indexes of its links in between:

1. `lo` up, the peer ends other namespaces created here (up, MAC, MTU), bridges (up);
2. veths (the peer placed straight into its namespace by IFLA_NET_NS_FD) and VXLAN
   devices, which name the bridge or underlay they attach to by index; all created up;
3. addresses, routes, permanent neighbours and FDB entries.

The result is the state `Session` would have built (tests: a diff-based apply right after
sends nothing). Should the kernel refuse anything (the namespace was not as fresh as
thought, a stale veth end in a peer), the caller falls back to the diff, which repairs
whatever this left half-done.
"""

from __future__ import annotations

import os
import socket

from podnet.datapath import netns, rtnl_batch
from podnet.render.netplan import Link, NetnsPlan

LOOPBACK_IFINDEX = 1  # the kernel's constant: lo is index 1 in every network namespace


def apply_fresh(sock: socket.socket, ns: NetnsPlan) -> int:
    """Build `ns` in its empty namespace through `sock` (a NETLINK_ROUTE socket opened
    inside it); returns how many requests were sent. Raises rtnl_batch.BatchError."""
    sent = 0

    def send(requests: list[rtnl_batch.Request]) -> None:
        nonlocal sent
        rtnl_batch.send(sock, requests)
        sent += len(requests)

    first = [rtnl_batch.link_set(LOOPBACK_IFINDEX, up=True)]
    for link in ns.links:
        if link.kind == "peer":
            first.append(rtnl_batch.link_set(name=link.name, up=True, mac=link.mac, mtu=link.mtu))
        elif link.kind == "bridge":
            first.append(
                rtnl_batch.link_add(link.name, "bridge", mac=link.mac, mtu=link.mtu, up=True)
            )
    send(first)
    index = rtnl_batch.link_indexes(sock)
    second = [
        rtnl_batch.link_set(index[lk.name], master=index[lk.master])
        for lk in ns.links
        if lk.kind == "peer" and lk.master
    ]
    fds: list[int] = []
    try:
        for link in ns.links:
            if link.kind in ("veth", "vxlan"):
                second.append(_create(link, index, fds))
        send(second)
    finally:
        for fd in fds:
            os.close(fd)
    if any(lk.kind in ("veth", "vxlan") for lk in ns.links):
        index = rtnl_batch.link_indexes(sock)
    send(
        [
            *(rtnl_batch.address(a.cidr, index[a.dev]) for a in ns.addresses),
            *(
                rtnl_batch.route(r.dst, index[r.dev], r.via, r.src, r.onlink, r.nexthops)
                for r in ns.routes
            ),
            *(rtnl_batch.neighbour(n.ip, n.mac, index[n.dev]) for n in ns.neighbours),
            *(rtnl_batch.fdb(f.mac, f.dst, index[f.dev]) for f in ns.fdb),
        ]
    )
    return sent


def _create(link: Link, index: dict[str, int], fds: list[int]) -> rtnl_batch.Request:
    master = index[link.master] if link.master else None
    if link.kind == "vxlan":
        assert link.vxlan is not None
        v = link.vxlan
        data = rtnl_batch.vxlan(v.vni, v.port, v.local, index[v.dev])
    else:
        assert link.peer is not None
        fds.append(netns.open_fd(link.peer.netns))
        data = rtnl_batch.veth_peer(link.peer.ifname, fds[-1], link.peer.mac, link.peer.mtu)
    return rtnl_batch.link_add(
        link.name, link.kind, data, mac=link.mac, mtu=link.mtu, master=master, up=True
    )
