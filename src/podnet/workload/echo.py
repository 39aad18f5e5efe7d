"""The workload stand-in's protocols: who am I, answered over TCP, HTTP and UDP.

- HTTP request -> `200` with the JSON body of `http.response` (client = the peer as the
  server sees it: the proof that no NAT happened on the way);
- any other TCP connection -> the line `NS/POD CONTAINER\\n`, sent as soon as the first bytes
  show it is not HTTP, or after SILENCE when the client says nothing (probes connect and wait);
- UDP datagram -> the same line, sent from the address the datagram was sent to.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass

from podnet.workload import http
from podnet.workload.sockets import Identity

SILENCE = 0.1  # seconds a silent TCP client waits for the line
HEAD_TIMEOUT = 5.0  # seconds to finish sending an HTTP request head
IP_PKTINFO = 8  # linux/in.h; missing from Python's socket module
_PKTINFO = struct.Struct("=I4s4s")  # struct in_pktinfo {ifindex; spec_dst; addr}


@dataclass
class Served:
    """The identity behind one listening socket; mutable so a reload can rename in place."""

    identity: Identity


class StreamEcho(asyncio.Protocol):
    def __init__(self, served: Served) -> None:
        self.served = served
        self.buf = bytearray()
        self.is_http = False
        self.done = False
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.timer = asyncio.get_running_loop().call_later(SILENCE, self._timeout)

    def data_received(self, data: bytes) -> None:
        if self.done:
            return
        self.buf += data
        if not self.is_http:
            kind = http.looks_like_http(bytes(self.buf[:8]))
            if kind is None:
                return
            if not kind:
                self._finish(self.served.identity.line)
                return
            self.is_http = True
            self._rearm(HEAD_TIMEOUT)
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > http.MAX_HEAD:
                self._finish(http.bad_request())
            return
        request = http.parse_head(bytes(self.buf[:end]))
        if request is None:
            self._finish(http.bad_request())
            return
        self._finish(http.response(self.served.identity, self._client(), request))

    def eof_received(self) -> bool:
        # The client closed its side without a full request: it still gets the line.
        if not self.done and not self.is_http:
            self._finish(self.served.identity.line)
        return True  # keep the transport: _finish closes it after the write

    def connection_lost(self, exc: Exception | None) -> None:
        self.done = True
        if self.timer:
            self.timer.cancel()

    def _timeout(self) -> None:
        if self.is_http:  # a request head that never completed
            self._finish(b"")
        else:
            self._finish(self.served.identity.line)

    def _rearm(self, delay: float) -> None:
        if self.timer:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(delay, self._timeout)

    def _client(self) -> str:
        assert self.transport
        peer = self.transport.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if peer else ""

    def _finish(self, data: bytes) -> None:
        self.done = True
        if self.timer:
            self.timer.cancel()
        assert self.transport
        if data:
            self.transport.write(data)
        self.transport.close()  # after the buffered write is flushed


class DatagramEcho:
    """Answers every datagram on a UDP socket with the identity line.

    Not an asyncio DatagramProtocol: a socket bound to 0.0.0.0 in a namespace with several
    addresses (a node, for hostNetwork pods) must answer *from* the address the client sent
    to, or the client's connected socket drops the reply. That takes IP_PKTINFO ancillary
    data, which asyncio's datagram transport does not pass through.
    """

    def __init__(self, sock: socket.socket, served: Served) -> None:
        self.sock = sock
        self.served = served
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(64):  # bounded, so one busy socket cannot starve the loop
            try:
                _, ancdata, _, addr = self.sock.recvmsg(65535, socket.CMSG_SPACE(_PKTINFO.size))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ICMP error queued on the socket: nothing to answer
                continue
            anc = []
            for level, kind, data in ancdata:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                    _, _, dst = _PKTINFO.unpack(data[: _PKTINFO.size])
                    anc = [(socket.IPPROTO_IP, IP_PKTINFO, _PKTINFO.pack(0, dst, bytes(4)))]
            # A client gone or unreachable is no error: UDP makes no promise.
            with contextlib.suppress(OSError):
                self.sock.sendmsg([self.served.identity.line], anc, 0, addr)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()
