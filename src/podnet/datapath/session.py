"""One namespace's netlink session: read the live state, compare, change only what differs.

Each `sync_*` method takes the desired values from the plan, dumps what the kernel holds, and
sends only the difference: a second run sends nothing. Everything inside a podnet namespace
is podnet's, so extras of the kinds we manage are deleted; kernel-made entries (connected
routes, the loopback device, fallback tunnel devices some modules add) are left alone.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ndmsg import NUD_PERMANENT

from podnet.datapath import netns, rtnl_batch
from podnet.render.netplan import Address, Fdb, Link, Neighbour, Route

MAIN_TABLE = 254
RTPROT_KERNEL = 2
RTNH_F_ONLINK = 4
NTF_SELF = 2
MANAGED_KINDS = frozenset({"veth", "bridge", "vxlan"})


class Session:
    """A pyroute2 IPRoute on a socket opened inside namespace `name` by the netns worker.

    With `dry_run` (`podnet doctor`), nothing is sent: each change the sync would make is
    described in `planned` instead ("missing route 10.244.2.0/24 via 172.18.0.3 dev eth0"),
    so that what doctor reports as drift is exactly what a sync repairs."""

    def __init__(self, worker: netns.Worker, name: str, dry_run: bool = False) -> None:
        self.name = name
        self.dry_run = dry_run
        self.planned: list[str] = []
        self._worker = worker
        sock: socket.socket = worker.netlink_socket(name)
        self.ipr = IPRoute(fileno=sock.detach())
        self.changes = 0
        self._links: dict[str, Any] | None = None
        self._raw: socket.socket | None = None  # for batches (datapath.rtnl_batch)

    def close(self) -> None:
        self.ipr.close()
        if self._raw is not None:
            self._raw.close()

    def _batch(self, requests: list[rtnl_batch.Request]) -> None:
        """Routes, neighbours and FDB entries in bulk: a node holds one of each per other
        node, and pyroute2's per-request cost made that the bulk of `up`."""
        if not requests:
            return
        if self.dry_run:
            self.planned += [f"missing {r.what}" for r in requests]
            return
        if self._raw is None:
            self._raw = self._worker.netlink_socket(self.name)
        self.changes += len(requests)
        rtnl_batch.send(self._raw, requests)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- links ----------------------------------------------------------------------
    def links(self, refresh: bool = False) -> dict[str, Any]:
        if self._links is None or refresh:
            self._links = {m.get("IFLA_IFNAME"): m for m in self.ipr.get_links()}
        return self._links

    def index(self, ifname: str) -> int:
        msg = self.links().get(ifname)
        if msg is None and self.dry_run:
            return 0  # a link the sync would create first
        if msg is None:
            raise netns.NetnsError(errno.ENODEV, f"no link {ifname}", self.name)
        return int(msg["index"])

    def _send(self, method: str, *args: Any, **kw: Any) -> Any:
        self.changes += 1
        if self.dry_run:
            self.planned.append(self._describe(method, args, kw))
            return None
        return getattr(self.ipr, method)(*args, **kw)

    def _describe(self, method: str, args: tuple[Any, ...], kw: dict[str, Any]) -> str:
        """One change a sync would make, in words (dry run)."""
        verb = args[0] if args else ""
        names = {int(m["index"]): n for n, m in self.links().items()}
        dev = names.get(int(kw.get("index") or kw.get("ifindex") or 0), kw.get("ifname", "?"))
        if method == "link" and verb == "add":
            return f"missing link {kw.get('ifname')} ({kw.get('kind')})"
        if method == "link" and verb == "del":
            return f"extra link {dev}"
        if method == "link" and verb == "set":
            what = ", ".join(f"{k} {v}" for k, v in kw.items() if k != "index")
            return f"link {dev}: wants {what}"
        if method == "addr":
            gone = "extra" if verb == "del" else "missing"
            return f"{gone} address {kw.get('address')}/{kw.get('prefixlen')} on {dev}"
        if method == "route":
            return f"extra route {kw.get('dst')}"
        if method == "neigh":
            return f"extra permanent neighbour {kw.get('dst')} on {dev}"
        if method == "fdb":
            return f"extra VXLAN FDB entry {kw.get('lladdr')} -> {kw.get('dst')} on {dev}"
        return f"{method} {verb} {kw}"

    def ensure_lo(self) -> None:
        lo = self.links().get("lo")
        if lo is not None and not lo["flags"] & 1:
            self._send("link", "set", index=lo["index"], state="up")

    def create(self, link: Link) -> None:
        """Create a link this namespace owns (a veth pair's peer goes straight into its
        namespace via IFLA_NET_NS_FD: no link ever exists in the host namespace)."""
        kw: dict[str, Any] = {"ifname": link.name, "kind": link.kind}
        if link.mac:
            kw["address"] = link.mac
        if link.mtu:
            kw["mtu"] = link.mtu
        if link.kind == "vxlan" and link.vxlan:
            v = link.vxlan
            kw.update(
                vxlan_id=v.vni,
                vxlan_port=v.port,
                vxlan_local=v.local,
                vxlan_link=self.index(v.dev),
                vxlan_learning=0,
            )
        if self.dry_run:
            self._send("link", "add", **kw)
            return
        if link.kind == "veth" and link.peer:
            self._create_veth(link, kw)
        else:
            self._send("link", "add", **kw)
        self._refresh_one(link.name)

    def _refresh_one(self, ifname: str) -> None:
        """Re-read one link, not the whole table: a node holds hundreds of veths."""
        links = self.links()
        try:
            (links[ifname],) = self.ipr.link("get", ifname=ifname)
        except NetlinkError as e:
            if e.code != errno.ENODEV:
                raise
            links.pop(ifname, None)

    def _create_veth(self, link: Link, kw: dict[str, Any]) -> None:
        assert link.peer is not None
        fd = netns.open_fd(link.peer.netns)
        try:
            peer: dict[str, Any] = {"ifname": link.peer.ifname, "net_ns_fd": fd}
            if link.peer.mtu:
                peer["mtu"] = link.peer.mtu
            if link.peer.mac:
                peer["address"] = link.peer.mac
            try:
                self._send("link", "add", peer=peer, **kw)
            except NetlinkError as e:
                if e.code != errno.EEXIST:
                    raise
                # A stale end in the peer namespace (a pod that moved nodes): remove it.
                self._delete_in_peer(link)
                self._send("link", "add", peer=peer, **kw)
        finally:
            os.close(fd)

    def _delete_in_peer(self, link: Link) -> None:
        assert link.peer is not None
        if link.name in self.links(refresh=True):
            self._send("link", "del", index=self.index(link.name))
        other = Session(self._worker, link.peer.netns)
        try:
            idx = other.links().get(link.peer.ifname)
            if idx is not None:
                other._send("link", "del", index=idx["index"])
        finally:
            other.close()

    def delete_link(self, ifname: str) -> None:
        try:
            self._send("link", "del", index=self.index(ifname))
        except NetlinkError as e:
            if e.code != errno.ENODEV:  # gone meanwhile: its peer's namespace was removed
                raise
        self.links().pop(ifname, None)

    def sync_links(self, wanted: tuple[Link, ...]) -> None:
        names = {link.name for link in wanted}
        for name, msg in list(self.links().items()):
            if name not in names and _kind(msg) in MANAGED_KINDS:
                self.delete_link(name)
        for link in wanted:
            msg = self.links().get(link.name)
            if link.kind == "peer":
                if msg is None and self.dry_run:
                    self.planned.append(f"missing link {link.name} (made by its peer's namespace)")
                    continue
                if msg is None:
                    raise netns.NetnsError(
                        errno.ENODEV, f"peer link {link.name} missing", self.name
                    )
            elif msg is not None and _kind(msg) != link.kind:
                self.delete_link(link.name)
                msg = None
            if msg is None:
                self.create(link)
        for link in wanted:
            if (msg := self.links().get(link.name)) is not None:
                self._set_attrs(link, msg)

    def _set_attrs(self, link: Link, msg: Any) -> None:
        kw: dict[str, Any] = {}
        if link.mtu and msg.get("IFLA_MTU") != link.mtu:
            kw["mtu"] = link.mtu
        if link.mac and msg.get("IFLA_ADDRESS") != link.mac:
            kw["address"] = link.mac
        if link.master:
            master = self.index(link.master)
            if msg.get("IFLA_MASTER") != master:
                kw["master"] = master
        if not msg["flags"] & 1:
            kw["state"] = "up"
        if kw:
            self._send("link", "set", index=msg["index"], **kw)

    # --- addresses ------------------------------------------------------------------
    def sync_addresses(self, wanted: tuple[Address, ...]) -> None:
        want = {(a.dev, a.cidr) for a in wanted}
        by_index = {int(m["index"]): n for n, m in self.links().items()}
        have = set()
        for m in self.ipr.get_addr(family=socket.AF_INET):
            dev = by_index.get(int(m["index"]))
            if dev is None or dev == "lo":
                continue
            have.add((dev, f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}"))
        for dev, cidr in sorted(have - want):
            ip, plen = cidr.split("/")
            self._send("addr", "del", index=self.index(dev), address=ip, prefixlen=int(plen))
        for dev, cidr in sorted(want - have):
            ip, plen = cidr.split("/")
            self._send("addr", "add", index=self.index(dev), address=ip, prefixlen=int(plen))

    # --- routes ---------------------------------------------------------------------
    def sync_routes(self, wanted: tuple[Route, ...]) -> None:
        want = {_route_key(r): r for r in wanted}
        by_index = {int(m["index"]): n for n, m in self.links().items()}
        have: dict[tuple[Any, ...], Any] = {}
        for m in self.ipr.get_routes(family=socket.AF_INET, table=MAIN_TABLE):
            if m["proto"] == RTPROT_KERNEL or m.get("RTA_TABLE", MAIN_TABLE) != MAIN_TABLE:
                continue  # connected routes are the kernel's, from our addresses
            dst = f"{m.get('RTA_DST') or '0.0.0.0'}/{m['dst_len']}"
            hops = m.get("RTA_MULTIPATH") or []
            key = (
                dst,
                m.get("RTA_GATEWAY"),
                by_index.get(hops[0]["oif"] if hops else m.get("RTA_OIF")),
                m.get("RTA_PREFSRC"),
                bool(m["flags"] & RTNH_F_ONLINK),
                tuple(sorted(h.get_attr("RTA_GATEWAY") for h in hops)),
            )
            have[key] = m
        for key, m in have.items():
            if key not in want:
                self._send("route", "del", dst=key[0], oif=m.get("RTA_OIF"), table=MAIN_TABLE)
        self._batch(
            [
                rtnl_batch.route(r.dst, self.index(r.dev), r.via, r.src, r.onlink, r.nexthops)
                for key, r in want.items()
                if key not in have
            ]
        )

    # --- neighbours and FDB ---------------------------------------------------------
    def sync_neighbours(self, wanted: tuple[Neighbour, ...]) -> None:
        want = {(n.dev, n.ip): n.mac for n in wanted}
        by_index = {int(m["index"]): n for n, m in self.links().items()}
        have = {}
        for m in self.ipr.get_neighbours(family=socket.AF_INET):
            if m["state"] & NUD_PERMANENT:
                have[(by_index.get(m["ifindex"]), m.get("NDA_DST"))] = m.get("NDA_LLADDR")
        for (dev, ip), _ in have.items():
            if (dev, ip) not in want and dev is not None:
                self._send("neigh", "del", dst=ip, ifindex=self.index(dev))
        self._batch(
            [
                rtnl_batch.neighbour(ip, mac, self.index(dev))
                for (dev, ip), mac in want.items()
                if have.get((dev, ip)) != mac
            ]
        )

    def sync_fdb(self, wanted: tuple[Fdb, ...]) -> None:
        want = {(f.dev, f.mac, f.dst) for f in wanted}
        devs = {f.dev for f in wanted} | (
            {n for n, m in self.links().items() if _kind(m) == "vxlan"}
        )
        have = set()
        for dev in devs:
            if dev not in self.links():
                continue
            idx = self.index(dev)
            for m in self.ipr.fdb("dump", ifindex=idx):
                if m.get("NDA_DST") and m["ifindex"] == idx:
                    have.add((dev, m.get("NDA_LLADDR"), m.get("NDA_DST")))
        for dev, mac, dst in sorted(have - want):
            self._send("fdb", "del", ifindex=self.index(dev), lladdr=mac, dst=dst)
        self._batch(
            [rtnl_batch.fdb(mac, dst, self.index(dev)) for dev, mac, dst in sorted(want - have)]
        )


def _kind(msg: Any) -> str | None:
    info = msg.get("IFLA_LINKINFO")
    return info.get("IFLA_INFO_KIND") if info is not None else None


def _route_key(r: Route) -> tuple[Any, ...]:
    return (r.dst, r.via, r.dev, r.src, r.onlink, tuple(sorted(r.nexthops)))
