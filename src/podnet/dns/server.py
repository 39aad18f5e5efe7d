"""The DNS server's sockets and its loop: UDP and TCP port 53 inside every DNS pod's
namespace, served from one thread.

Why no asyncio: its per-datagram cost (a callback, a transport, a future per send) is
several times the whole answer's (podnet.dns.wire copies bytes). The loop is a plain epoll
over non-blocking sockets; a readable UDP socket is drained (up to BATCH datagrams, read
and answered in batches by recvmmsg/sendmmsg: podnet.dns.mmsg) before epoll is asked again. TCP connections (RFC 7766: several queries per connection, each
with a two-byte length) are few and served from the same loop; an idle one is closed after
TCP_IDLE seconds.

Sockets enter their namespace through `podnet.datapath.netns` (the one guarded way in);
a socket stays in the namespace it was created in, so one process serves them all. Signals
reach the loop through a wakeup socket (signal.set_wakeup_fd): SIGHUP reloads dns.json,
SIGTERM and SIGINT stop.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import select
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from podnet.datapath.netns import Namespaces
from podnet.dns.answers import Answers
from podnet.dns.mmsg import Batch
from podnet.dns.wire import respond
from podnet.render import dns_file
from podnet.state.files import StateFiles, write_atomic

BATCH = 256  # datagrams read from one socket before epoll is asked again
TCP_IDLE = 10.0  # seconds before an idle TCP connection is closed
PORT = dns_file.DNS_PORT

log = logging.getLogger("podnet.dns")


@dataclass
class Served:
    """The sockets of one namespace."""

    netns: str
    ident: tuple[int, int]
    udp: socket.socket
    tcp: socket.socket


@dataclass
class Conn:
    sock: socket.socket
    buf: bytearray = field(default_factory=bytearray)
    last: float = 0.0


class Server:
    def __init__(self, root: Path) -> None:
        self.files = StateFiles(root)
        self.root = root
        self.answers = Answers("")
        self.serial: int | None = None
        self.error: str | None = None
        self.generation = 0
        self.namespaces = Namespaces()
        self.served: dict[str, Served] = {}
        self.problems: dict[str, str] = {}
        self.poll = select.epoll()
        self.handlers: dict[int, Callable[[], None]] = {}
        self.conns: dict[int, Conn] = {}
        self.stopping = False
        self.batch = Batch()

    # --- loading -------------------------------------------------------------------------
    def load(self) -> None:
        """Read dns.json; build every answer; open and close sockets to match its servers.
        A file that does not load leaves the previous answers serving."""
        started = time.monotonic()
        self.generation += 1
        try:
            f = dns_file.load(self.root)
            answers = Answers(f.text, previous=self.answers)  # only what changed is built
        except Exception as e:  # a bad file must not take DNS down: keep serving the last
            self.error = f"{type(e).__name__}: {e}"
            log.error("not reloaded: %s", self.error)
            self.write_status()
            return
        self.answers, self.serial, self.error = answers, f.zone.serial, None
        self._serve({s.netns for s in f.servers})
        self.write_status()
        log.info(
            "serial %d: %d records, %d namespace(s), loaded in %.3fs",
            f.zone.serial,
            answers.records,
            len(self.served),
            time.monotonic() - started,
        )

    def _serve(self, wanted: set[str]) -> None:
        for name in sorted(self.served.keys() - wanted):
            self._close(name)
        self.problems = {}
        for name in sorted(wanted):
            ident = self.namespaces.refresh(name)
            if ident is None:
                self._close(name)
                self.problems[name] = "namespace not found"
                continue
            old = self.served.get(name)
            if old is not None and old.ident == ident:
                continue
            if old is not None:  # the pod was re-created: its old namespace is another one
                self._close(name)
            try:
                self.served[name] = self._open(name, ident)
            except OSError as e:
                self.problems[name] = f"{type(e).__name__}: {e}"
                log.error("cannot serve in %s: %s", name, e)

    def _open(self, name: str, ident: tuple[int, int]) -> Served:
        udp = self.namespaces.socket(name, socket.SOCK_DGRAM)
        tcp = self.namespaces.socket(name, socket.SOCK_STREAM)
        try:
            udp.bind(("0.0.0.0", PORT))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind(("0.0.0.0", PORT))
            tcp.listen(128)
        except OSError:
            udp.close()
            tcp.close()
            raise
        self._watch(udp, lambda: self._udp(udp))
        self._watch(tcp, lambda: self._accept(tcp))
        log.info("serving port %d UDP and TCP in %s", PORT, name)
        return Served(name, ident, udp, tcp)

    def _close(self, name: str) -> None:
        s = self.served.pop(name, None)
        self.namespaces.forget(name)
        if s is not None:
            for sock in (s.udp, s.tcp):
                self._unwatch(sock)
                sock.close()
            log.info("stopped serving in %s", name)

    def _watch(self, sock: socket.socket, handler: Callable[[], None]) -> None:
        self.handlers[sock.fileno()] = handler
        self.poll.register(sock.fileno(), select.EPOLLIN)

    def _unwatch(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        if fd >= 0 and self.handlers.pop(fd, None) is not None:
            self.poll.unregister(fd)

    # --- serving -------------------------------------------------------------------------
    def _udp(self, sock: socket.socket) -> None:
        """Drain up to BATCH datagrams, a recvmmsg/sendmmsg batch at a time. A batch that
        was not full drained the socket: no read that would only say EAGAIN (epoll is
        level-triggered and reports what arrives meanwhile)."""
        fd, serve, full = sock.fileno(), self.batch.serve, self.batch.n
        answer = functools.partial(respond, self.answers)
        read = 0
        while read < BATCH:
            got = serve(fd, answer)
            if 0 <= got < full:
                return
            read += max(got, 1)  # -1: an ICMP error for an earlier reply; read on

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                c, _ = listener.accept()
            except BlockingIOError:
                return
            except OSError:
                return
            c.setblocking(False)
            conn = Conn(c, last=time.monotonic())
            self.conns[c.fileno()] = conn
            self._watch(c, lambda conn=conn: self._tcp(conn))  # type: ignore[misc]

    def _tcp(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(65535)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        conn.last = time.monotonic()
        conn.buf += data
        out = bytearray()
        while len(conn.buf) >= 2:
            size = (conn.buf[0] << 8) | conn.buf[1]
            if len(conn.buf) < 2 + size:
                break
            q = bytes(conn.buf[2 : 2 + size])
            del conn.buf[: 2 + size]
            r = respond(self.answers, q, None)
            if r is not None:
                out += len(r).to_bytes(2, "big") + r
        if out:
            try:
                conn.sock.setblocking(True)  # replies are small; a slow reader waits briefly
                conn.sock.settimeout(1.0)
                conn.sock.sendall(out)
                conn.sock.setblocking(False)
            except OSError:
                self._drop(conn)

    def _drop(self, conn: Conn) -> None:
        self.conns.pop(conn.sock.fileno(), None)
        self._unwatch(conn.sock)
        conn.sock.close()

    def _sweep(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self.conns.values() if now - c.last > TCP_IDLE]:
            self._drop(conn)

    # --- the loop ------------------------------------------------------------------------
    def run(self) -> None:
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno())
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: None)  # the byte on the wakeup socket says which
        self._watch(wake_r, lambda: self._signals(wake_r))
        self.load()
        last_sweep = time.monotonic()
        handlers = self.handlers
        while not self.stopping:
            for fd, _ in self.poll.poll(1.0):
                handler = handlers.get(fd)
                if handler is not None:
                    handler()
            if time.monotonic() - last_sweep > 1.0:
                self._sweep()
                last_sweep = time.monotonic()
        self.close()
        wake_r.close()
        wake_w.close()

    def _signals(self, wake: socket.socket) -> None:
        try:
            got = wake.recv(64)
        except BlockingIOError:
            return
        if signal.SIGTERM in got or signal.SIGINT in got:
            log.info("stopping")
            self.stopping = True
        elif signal.SIGHUP in got:  # several at once: one load reads the newest file
            self.load()

    def close(self) -> None:
        for conn in list(self.conns.values()):
            self._drop(conn)
        for name in list(self.served):
            self._close(name)
        self.namespaces.close()
        self.files.dns_status.unlink(missing_ok=True)

    def write_status(self) -> None:
        doc = {
            "pid": os.getpid(),
            "generation": self.generation,
            "serial": self.serial,
            "error": self.error,
            "records": self.answers.records,
            "serving": sorted(self.served),
            "problems": self.problems,
        }
        write_atomic(self.files.dns_status, json.dumps(doc, indent=1) + "\n")
