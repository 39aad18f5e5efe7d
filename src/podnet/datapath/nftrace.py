"""nftables trace events of one packet: a short-lived chain in podnet's table that sets
`meta nftrace set 1` on exactly that packet, and the NFT_MSG_TRACE messages the kernel then
multicasts on the NFNLGRP_NFTRACE group of the namespace.

The trace flag lives on the packet (skb->nf_trace) inside one network namespace: a veth or
VXLAN crossing into another namespace scrubs it, so every node namespace the packet crosses
gets its own trace chain and its own listening socket. The chain hooks prerouting at
priority -350, before conntrack (-200) and kube-proxy's DNAT (-100), so every later chain of
the table in that namespace reports the packet: each rule that matched (with its verdict),
each chain it returned from, and the base chain's policy when nothing decided.

The chain is named `trace-<hex>` (kernel_names.trace_chain): a sync that replaces the table
removes a chain that a crashed trace left behind, and `remove` tolerates one already gone.
Nothing here parses `nft` text: the events are decoded from their netlink attributes
(enum nft_trace_attributes, linux/netfilter/nf_tables.h), as `nft monitor trace` does.
"""

from __future__ import annotations

import errno
import ipaddress
import select
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

from podnet.datapath import netns
from podnet.datapath.nft import NetnsRunner, NftError

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NFNLGRP_NFTRACE = 9
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_TRACE = 17
TRACE_PRIORITY = -350  # before conntrack (-200) and DNAT (-100): every later chain reports

# enum nft_trace_attributes
(
    A_TABLE, A_CHAIN, A_RULE_HANDLE, A_TYPE, A_VERDICT, A_ID, A_LL_HEADER, A_NETWORK_HEADER,
    A_TRANSPORT_HEADER, A_IIF, A_IIFTYPE, A_OIF, A_OIFTYPE, A_MARK, A_NFPROTO, A_POLICY,
) = range(1, 17)  # fmt: skip
TRACE_TYPES = {1: "policy", 2: "return", 3: "rule"}
# enum nft_verdicts and the netfilter verdicts (NF_DROP 0, NF_ACCEPT 1, ...)
VERDICTS = {
    0: "drop", 1: "accept", 2: "stolen", 3: "queue", 4: "repeat", 5: "stop",
    -1: "continue", -2: "break", -3: "jump", -4: "goto", -5: "return",
}  # fmt: skip
NFTA_VERDICT_CODE, NFTA_VERDICT_CHAIN = 1, 2
_NLMSGHDR = struct.Struct("=LHHLL")
_NLATTR = struct.Struct("=HH")
_NFGENMSG = 4


@dataclass(frozen=True, slots=True)
class Header:
    """What the IPv4 and transport headers of a traced packet say."""

    src: str
    dst: str
    protocol: int  # IPPROTO_*
    sport: int | None
    dport: int | None


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One NFT_MSG_TRACE: a rule that matched, a chain returned from, or a base chain's
    policy, in `netns`, for the packet whose trace id is `id`."""

    netns: str
    id: int
    kind: str  # rule | return | policy
    table: str
    chain: str
    handle: int | None  # the rule's handle (kind "rule")
    verdict: str | None  # accept, drop, jump, goto, return, continue, ...
    target: str | None  # the chain of a jump or goto
    header: Header | None  # the packet as this hook saw it (after a DNAT: the new address)
    iif: int | None
    oif: int | None


def _attrs(data: bytes, off: int, end: int) -> Iterator[tuple[int, bytes]]:
    while off + _NLATTR.size <= end:
        alen, atype = _NLATTR.unpack_from(data, off)
        if alen < _NLATTR.size:
            return
        yield atype & 0x3FFF, data[off + _NLATTR.size : off + alen]
        off += (alen + 3) & ~3


def _header(network: bytes | None, transport: bytes | None) -> Header | None:
    if not network or len(network) < 20 or network[0] >> 4 != 4:
        return None
    proto = network[9]
    src = str(ipaddress.IPv4Address(network[12:16]))
    dst = str(ipaddress.IPv4Address(network[16:20]))
    sport = dport = None
    if transport and len(transport) >= 4 and proto in (6, 17, 132):
        sport, dport = struct.unpack_from("!HH", transport)
    return Header(src, dst, proto, sport, dport)


def decode(data: bytes, where: str) -> list[TraceEvent]:
    """The trace events in one netlink datagram (other messages are skipped)."""
    out = []
    off = 0
    while off + _NLMSGHDR.size <= len(data):
        length, kind, _, _, _ = _NLMSGHDR.unpack_from(data, off)
        if length < _NLMSGHDR.size:
            break
        if kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE:
            a = dict(_attrs(data, off + _NLMSGHDR.size + _NFGENMSG, off + length))
            verdict = target = None
            if A_VERDICT in a:
                v = dict(_attrs(a[A_VERDICT], 0, len(a[A_VERDICT])))
                if NFTA_VERDICT_CODE in v:
                    code = struct.unpack("!i", v[NFTA_VERDICT_CODE])[0]
                    verdict = VERDICTS.get(code, str(code))
                if NFTA_VERDICT_CHAIN in v:
                    target = v[NFTA_VERDICT_CHAIN].rstrip(b"\0").decode()
            elif A_POLICY in a:
                verdict = VERDICTS.get(struct.unpack("!I", a[A_POLICY])[0])
            out.append(
                TraceEvent(
                    where,
                    struct.unpack("!I", a[A_ID])[0] if A_ID in a else 0,
                    TRACE_TYPES.get(struct.unpack("!I", a[A_TYPE])[0], "?") if A_TYPE in a else "?",
                    a.get(A_TABLE, b"").rstrip(b"\0").decode(),
                    a.get(A_CHAIN, b"").rstrip(b"\0").decode(),
                    struct.unpack("!Q", a[A_RULE_HANDLE])[0] if A_RULE_HANDLE in a else None,
                    verdict,
                    target,
                    _header(a.get(A_NETWORK_HEADER), a.get(A_TRANSPORT_HEADER)),
                    struct.unpack("!I", a[A_IIF])[0] if A_IIF in a else None,
                    struct.unpack("!I", a[A_OIF])[0] if A_OIF in a else None,
                )
            )
        off += (length + 3) & ~3
    return out


class TraceListener:
    """One NFNLGRP_NFTRACE socket per namespace, opened before the packet is sent."""

    def __init__(self, names: list[str]) -> None:
        self.socks: dict[int, tuple[str, socket.socket]] = {}
        with netns.Worker() as worker:
            for name in names:
                sock = worker.call(name, _trace_socket)
                self.socks[sock.fileno()] = (name, sock)

    def read(self, quiet: float = 0.2, deadline: float = 2.0) -> list[TraceEvent]:
        """Every event that arrives until none came for `quiet` seconds (or `deadline`)."""
        events: list[TraceEvent] = []
        poller = select.poll()
        for fd in self.socks:
            poller.register(fd, select.POLLIN)
        end = time.monotonic() + deadline
        while (left := end - time.monotonic()) > 0:
            ready = poller.poll(int(1000 * min(quiet, left)))
            if not ready:
                break
            for fd, _ in ready:
                name, sock = self.socks[fd]
                try:
                    events += decode(sock.recv(1 << 16), name)
                except OSError as e:
                    if e.errno == errno.ENOBUFS:  # events lost: say so rather than guess
                        raise OSError(e.errno, f"trace events lost in {name}") from None
                    if e.errno != errno.EAGAIN:
                        raise
        return events

    def close(self) -> None:
        for _, sock in self.socks.values():
            sock.close()
        self.socks.clear()


def _trace_socket() -> socket.socket:
    sock = socket.socket(
        socket.AF_NETLINK,
        socket.SOCK_RAW | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK,
        NETLINK_NETFILTER,
    )
    sock.bind((0, 0))
    sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTRACE)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return sock


def add_chain(
    runner: NetnsRunner, name: str, family: str, table: str, chain: str, match: str
) -> None:
    """In one transaction: the trace chain in podnet's `table` of namespace `name`, with one
    rule that sets the trace flag on packets that `match` (nft syntax of our own making:
    addresses, protocol and ports, no user text)."""
    runner.run_text(
        name,
        f"add chain {family} {table} {chain} "
        f"{{ type filter hook prerouting priority {TRACE_PRIORITY}; policy accept; }}\n"
        f"add rule {family} {table} {chain} {match} meta nftrace set 1\n",
    )


def remove_chain(runner: NetnsRunner, name: str, family: str, table: str, chain: str) -> bool:
    """Delete the trace chain; True when it was there (a sync may have replaced the table,
    and the namespace may be gone: both are fine)."""
    try:
        runner.run_text(name, f"delete chain {family} {table} {chain}\n")
    except NftError as e:
        text = str(e)
        if "No such file or directory" in text or "does not exist" in text:
            return False
        raise
    return True


def chain_handles(runner: NetnsRunner, name: str, family: str, table: str) -> dict[str, list[int]]:
    """{chain: its rules' handles in order} of `table` in `name`."""
    import json

    doc = json.loads(runner.list_json(name, ["-a", "list", "table", family, table]))
    out: dict[str, list[int]] = {}
    for item in doc.get("nftables", []):
        if "chain" in item:
            out.setdefault(str(item["chain"]["name"]), [])
        rule = item.get("rule")
        if rule is not None:
            out.setdefault(str(rule["chain"]), []).append(int(rule["handle"]))
    return out
