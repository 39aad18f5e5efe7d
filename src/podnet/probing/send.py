"""Real traffic for `podnet probe`: from inside each source's network namespace to a
destination address and port, TCP (connect, read the identity line) or UDP (a datagram, the
reply line), many at once on one asyncio loop.

A socket keeps the namespace it was created in, so the loop thread enters the source's
namespace, creates the socket and comes straight back; the loop then drives the socket like
any other. Entering goes through podnet.datapath.netns (`Namespaces.socket`, i.e. the guarded
`entered_fd`), the one way into a namespace: it refuses a namespace file that is the
thread's own namespace (the host's, e.g. a wrong bind mount under a podnet name) and checks
that setns landed, so a probe is never sent from the host's namespace by mistake. The
namespace fds are opened once per run (no path lookup per probe).

Outcomes: a reply line is "reply" (the caller checks whose it is); a TCP reset or an ICMP
port-unreachable is "refused" (nothing listens, or a localhost-only port); ICMP
admin-prohibited / host-unreachable is "rejected" (what podnet's policy chains send). Only
"reply" means the connection passed.

Silence is not a verdict. podnet's policies reject actively, so a probe that times out met
no policy: it met a busy stand-in, a full accept queue or a lost datagram. It is tried again
(ATTEMPTS in all); what stays silent is "no-answer", never "blocked". Load adapts so that
silence stays rare: at most PER_DESTINATION probes in flight to one address (the stand-in's
accept queue), and an overall window that halves when a probe times out (once per timeout:
the time it takes to notice) and grows by one per answer (doubling per round, as TCP's slow
start), between MIN_WINDOW and the concurrency asked for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
import random
import resource
import socket
import struct
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from podnet.datapath.netns import Namespaces, WrongNamespace
from podnet.policy.expectations import DNS_IDENTITY, INGRESS_IDENTITY, Observation

PAYLOAD = b"\n"  # not HTTP: the stand-in answers with its line at once
# To nginx (the ingress controller pod's ports 80 and 443): any status line proves that
# nginx answers; on 443 it is "400 The plain HTTP request was sent to HTTPS port".
HTTP_PAYLOAD = b"HEAD /healthz HTTP/1.0\r\n\r\n"
TIMEOUT = 1.0
CONCURRENCY = 512  # probes in flight at the most; each holds one socket
MIN_WINDOW = 8
PER_DESTINATION = 32  # probes in flight to one address
ATTEMPTS = 3  # a silent probe is tried this often before it is reported as "no-answer"
UDP_RESENDS = 2  # a datagram more at 1/3 and 2/3 of the deadline: UDP makes no promise
REJECTED = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM, errno.EHOSTDOWN}
EPHEMERAL = (32768, 60999)  # Linux's default ip_local_port_range


class _SourcePorts:
    """UDP source ports in sequence from a random start, process-wide.

    A node keeps a UDP flow in conntrack for 30 s after its last packet, and its policy chain
    accepts `ct state established` first. A probe that happened to reuse the 5-tuple of an
    earlier probe (the kernel picks source ports at random) would ride that old entry past a
    policy applied since. In sequence, no probe of this process reuses a port before
    28,000 others have been used.
    """

    def __init__(self) -> None:
        lo, hi = EPHEMERAL
        self._next = lo + random.randrange(hi - lo)

    def bind(self, sock: socket.socket) -> None:
        lo, hi = EPHEMERAL
        for _ in range(32):
            port, self._next = self._next, lo + (self._next + 1 - lo) % (hi - lo)
            try:
                sock.bind(("0.0.0.0", port))
                return
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
        sock.bind(("0.0.0.0", 0))


_UDP_PORTS = _SourcePorts()


@dataclass(frozen=True, slots=True)
class Target:
    netns: str  # where the socket is created: the source pod's (its node's for hostNetwork)
    host: str
    port: int
    protocol: str  # TCP | UDP
    dns: bool = False  # the cluster DNS server answers there: ask it a DNS question
    http: bool = False  # the ingress controller's nginx answers there: an HTTP request


@contextmanager
def _namespaces() -> Iterator[Namespaces]:
    ns = Namespaces()
    try:
        yield ns
    finally:
        ns.close()


def _failure(e: OSError, started: float) -> Observation:
    took = time.monotonic() - started
    if isinstance(e, ConnectionRefusedError):
        return Observation("refused", detail="connection refused", seconds=took)
    if e.errno in REJECTED:
        return Observation("rejected", detail=os.strerror(e.errno or 0), seconds=took)
    return Observation("error", detail=f"{type(e).__name__}: {e}", seconds=took)


def _line(data: bytes) -> str:
    return data.decode("utf-8", "replace").split("\n", 1)[0].strip()


# A DNS query (id 0x7064, RD set, one question: `. NS IN`). Any DNS server answers it one
# way or another (the cluster's, sealed, with REFUSED): the probe of a DNS pod's port 53
# asks only that the DNS server answers, not what.
DNS_QUERY = bytes.fromhex("7064010000010000000000000000020001")


def _dns_reply(data: bytes) -> str | None:
    """DNS_IDENTITY for a DNS response to DNS_QUERY, else None."""
    if len(data) >= 12 and data[:2] == DNS_QUERY[:2] and data[2] & 0x80:
        return DNS_IDENTITY
    return None


async def _tcp(ns: Namespaces, t: Target, timeout: float) -> Observation | None:
    """One attempt; None when it stayed silent until the deadline."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    sock = ns.socket(t.netns, socket.SOCK_STREAM)
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (t.host, t.port))
            if t.dns:  # RFC 1035 4.2.2: a two-byte length, then the message
                await loop.sock_sendall(sock, struct.pack("!H", len(DNS_QUERY)) + DNS_QUERY)
            else:
                await loop.sock_sendall(sock, HTTP_PAYLOAD if t.http else PAYLOAD)
            data = b""
            while (len(data) < 14) if t.dns else (b"\n" not in data):
                chunk = await loop.sock_recv(sock, 4096)
                if not chunk:
                    break
                data += chunk
    except TimeoutError:
        return None
    except OSError as e:
        return _failure(e, started)
    finally:
        sock.close()
    took = time.monotonic() - started
    if not data:
        return Observation("error", detail="connected, but closed without a reply", seconds=took)
    if t.dns:
        return Observation("reply", reply=_dns_reply(data[2:]) or "<not DNS>", seconds=took)
    if t.http:
        reply = INGRESS_IDENTITY if data.startswith(b"HTTP/") else "<not HTTP>"
        return Observation("reply", reply=reply, seconds=took)
    return Observation("reply", reply=_line(data), seconds=took)


async def _udp(ns: Namespaces, t: Target, timeout: float) -> Observation | None:
    """One attempt (a datagram, resent twice within it); None when it stayed silent."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    sock = ns.socket(t.netns, socket.SOCK_DGRAM)
    try:
        # A connected UDP socket receives the ICMP errors of its flow as recv() errors:
        # a rejected datagram fails at once instead of waiting for the deadline.
        _UDP_PORTS.bind(sock)
        sock.connect((t.host, t.port))
        attempts = UDP_RESENDS + 1
        for n in range(attempts):
            sock.send(DNS_QUERY if t.dns else PAYLOAD)
            try:
                async with asyncio.timeout(timeout / attempts):
                    data = await loop.sock_recv(sock, 4096)
                reply = (_dns_reply(data) or "<not DNS>") if t.dns else _line(data)
                return Observation("reply", reply=reply, seconds=time.monotonic() - started)
            except TimeoutError:
                if n == attempts - 1:
                    return None
    except OSError as e:
        return _failure(e, started)
    finally:
        sock.close()
    raise AssertionError("unreachable")


def raise_fd_limit() -> None:
    """A socket per probe in flight: lift the soft RLIMIT_NOFILE to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Window:
    """How many probes may be in flight: halves on silence (at most once per `timeout`,
    the time it takes to notice), grows by one per answer. Waiters are woken one slot at a
    time, in order (a condition that woke them all would cost O(waiters) per answer)."""

    def __init__(self, limit: int, timeout: float) -> None:
        self.ceiling = max(1, limit)
        self.limit = float(self.ceiling)
        self.timeout = timeout
        self.in_flight = 0
        self.last_cut = -timeout
        self._waiters: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.in_flight < int(self.limit) and not self._waiters:
            self.in_flight += 1
        else:
            granted = asyncio.get_running_loop().create_future()
            self._waiters.append(granted)
            await granted  # the releaser counted this probe in before waking it
        try:
            yield
        finally:
            self.in_flight -= 1
            self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.limit):
            granted = self._waiters.popleft()
            if not granted.done():
                self.in_flight += 1
                granted.set_result(None)

    def answered(self) -> None:
        self.limit = min(float(self.ceiling), self.limit + 1.0)
        self._wake()

    def silent(self) -> None:
        now = time.monotonic()
        if now - self.last_cut >= self.timeout:
            self.last_cut = now
            self.limit = max(float(min(MIN_WINDOW, self.ceiling)), self.limit / 2)


async def probe_all(
    targets: Sequence[Target],
    timeout: float = TIMEOUT,
    concurrency: int = CONCURRENCY,
    progress: Callable[[int], None] | None = None,
    attempts: int = ATTEMPTS,
) -> list[Observation]:
    """One observation per target, in order. Runs on the calling loop's thread.

    WrongNamespace (a source namespace that is this thread's own) ends the run: nothing is
    sent from the host's namespace, and no verdict is made up for it."""
    window = Window(concurrency, timeout)
    per_destination: defaultdict[tuple[str, str], asyncio.Semaphore] = defaultdict(
        lambda: asyncio.Semaphore(PER_DESTINATION)
    )
    done = 0
    with _namespaces() as ns:

        async def attempt(t: Target) -> Observation | None:
            # 127.0.0.1 is each source's own: a loopback probe's destination is its netns.
            where = (t.netns if t.host.startswith("127.") else "", t.host)
            async with per_destination[where], window.slot():
                if t.protocol == "UDP":
                    return await _udp(ns, t, timeout)
                return await _tcp(ns, t, timeout)

        async def one(t: Target) -> Observation:
            nonlocal done
            try:
                for n in range(1, attempts + 1):
                    seen = await attempt(t)
                    if seen is not None:
                        window.answered()
                        return dataclasses.replace(seen, attempts=n)
                    window.silent()
                return Observation(
                    "no-answer",
                    detail=f"no answer in {attempts} attempts of {timeout:g}s",
                    seconds=attempts * timeout,
                    attempts=attempts,
                )
            except FileNotFoundError:
                return Observation("error", detail=f"network namespace {t.netns} is gone")
            except WrongNamespace as e:
                raise WrongNamespace(f"network namespace {t.netns}: {e}") from None
            finally:
                done += 1
                if progress:
                    progress(done)

        return list(await asyncio.gather(*(one(t) for t in targets)))


def probe(
    targets: Sequence[Target], timeout: float = TIMEOUT, concurrency: int = CONCURRENCY
) -> list[Observation]:
    """Run every probe concurrently; blocks until the last one has its answer or deadline."""
    raise_fd_limit()
    return asyncio.run(probe_all(targets, timeout, concurrency))
