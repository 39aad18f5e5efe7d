"""The stand-in's listening sockets: open them inside pod namespaces, diff them on reload."""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from podnet.datapath.netns import Namespaces
from podnet.workload.echo import DatagramEcho, Served, StreamEcho
from podnet.workload.sockets import Endpoint, Identity

log = logging.getLogger(__name__)

BACKLOG = 1024  # probes open many connections at once; the kernel caps it at somaxconn
KINDS = {
    "TCP": (socket.SOCK_STREAM, 0),
    "UDP": (socket.SOCK_DGRAM, 0),
    "SCTP": (socket.SOCK_STREAM, socket.IPPROTO_SCTP),
}


def sctp_unsupported() -> str | None:
    """None when this kernel gives SCTP sockets, else why not (e.g. the sctp module is
    absent or blacklisted: socket() fails with EPROTONOSUPPORT)."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
    except OSError as e:
        return e.strerror or str(e)
    return None


@dataclass
class Listener:
    endpoint: Endpoint
    served: Served
    netns_id: tuple[int, int]
    server: asyncio.Server | None = None
    datagram: DatagramEcho | None = None

    def close(self) -> None:
        if self.server:
            self.server.close()
        if self.datagram:
            self.datagram.close()


@dataclass
class Changes:
    opened: set[Endpoint] = field(default_factory=set)
    closed: set[Endpoint] = field(default_factory=set)
    renamed: set[Endpoint] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


class Listeners:
    def __init__(self, namespaces: Namespaces) -> None:
        self.namespaces = namespaces
        self.active: dict[Endpoint, Listener] = {}

    async def apply(self, wanted: Mapping[Endpoint, Identity]) -> Changes:
        """Make the open sockets exactly `wanted`: close what is gone or lives in a replaced
        namespace, rename in place what only changed identity, open what is new."""
        changes = Changes()
        names = {ep.netns for ep in wanted} | {ep.netns for ep in self.active}
        ids = {name: self.namespaces.refresh(name) for name in names}
        for ep, lst in list(self.active.items()):
            if ep not in wanted or ids[ep.netns] != lst.netns_id:
                lst.close()
                del self.active[ep]
                changes.closed.add(ep)
            elif lst.served.identity != wanted[ep]:
                lst.served.identity = wanted[ep]
                changes.renamed.add(ep)
        todo: dict[str, list[Endpoint]] = defaultdict(list)
        for ep in sorted(wanted):
            if ep not in self.active:
                todo[ep.netns].append(ep)
        for netns, eps in todo.items():
            ident = ids[netns]
            if ident is None:
                changes.problems.append(
                    f"namespace {netns} does not exist: {len(eps)} port(s) not served "
                    f"({', '.join(_who(wanted[ep]) for ep in eps[:3])})"
                )
                continue
            for ep, sock in self._open_in(netns, eps, changes.problems):
                served = Served(wanted[ep])
                lst = Listener(ep, served, ident)
                if ep.protocol == "UDP":
                    lst.datagram = DatagramEcho(sock, served)
                else:
                    loop = asyncio.get_running_loop()
                    lst.server = await loop.create_server(
                        functools.partial(StreamEcho, served), sock=sock, backlog=BACKLOG
                    )
                self.active[ep] = lst
                changes.opened.add(ep)
        return changes

    def _open_in(
        self, netns: str, eps: list[Endpoint], problems: list[str]
    ) -> list[tuple[Endpoint, socket.socket]]:
        """Create and bind the sockets of one namespace with one switch into it and back."""
        out = []
        with self.namespaces.entered(netns):
            for ep in eps:
                kind, proto = KINDS[ep.protocol]
                sock = socket.socket(socket.AF_INET, kind, proto)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((ep.host, ep.port))
                    if kind == socket.SOCK_STREAM:
                        sock.listen(BACKLOG)
                    sock.setblocking(False)
                except OSError as e:
                    sock.close()
                    problems.append(f"cannot serve {ep}: {e.strerror or e}")
                    continue
                out.append((ep, sock))
        return out

    def close(self) -> None:
        for lst in self.active.values():
            lst.close()
        self.active.clear()


def _who(ident: Identity) -> str:
    return f"{ident.namespace}/{ident.pod}"
