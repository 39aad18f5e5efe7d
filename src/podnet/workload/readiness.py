"""Readiness: prove each pod answers on its declared ports, from inside its node's namespace
(like kubelet's probes, which come from the node), or over 127.0.0.1 from inside the pod for
localhost-only ports. A TCP/UDP check sends a short non-HTTP payload and expects the pod's
identity line back, so an answer from the wrong pod (an IP conflict, a wrong route) fails.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Mapping

from podnet.datapath.netns import Namespaces
from podnet.workload.listeners import KINDS
from podnet.workload.sockets import Check

log = logging.getLogger(__name__)

PAYLOAD = b"podnet-ready\n"
ATTEMPT_TIMEOUT = 1.0
RETRY_FIRST, RETRY_MAX = 0.05, 1.0
CONCURRENCY = 256  # attempts in flight; each holds one client socket


class Prober:
    def __init__(self, namespaces: Namespaces) -> None:
        self.namespaces = namespaces
        self.slots = asyncio.Semaphore(CONCURRENCY)

    async def attempt(self, check: Check) -> bool:
        async with self.slots:
            try:
                if check.protocol == "UDP":
                    return await self._udp(check)
                return await self._stream(check)
            except OSError:
                return False

    async def _stream(self, check: Check) -> bool:
        loop = asyncio.get_running_loop()
        kind, proto = KINDS[check.protocol]
        sock = self.namespaces.socket(check.netns, kind, proto)
        try:
            try:
                await asyncio.wait_for(
                    loop.sock_connect(sock, (check.host, check.port)), ATTEMPT_TIMEOUT
                )
            except ConnectionRefusedError:
                return check.expect is None  # a reset proves the address answers
            except TimeoutError:
                return False
            if check.expect is None:
                return True
            await loop.sock_sendall(sock, PAYLOAD)
            return await asyncio.wait_for(_read_line(loop, sock), ATTEMPT_TIMEOUT) == check.expect
        except TimeoutError:
            return False
        finally:
            sock.close()

    async def _udp(self, check: Check) -> bool:
        loop = asyncio.get_running_loop()
        sock = self.namespaces.socket(check.netns, socket.SOCK_DGRAM)
        try:
            sock.connect((check.host, check.port))
            await loop.sock_sendall(sock, PAYLOAD)
            data = await asyncio.wait_for(loop.sock_recv(sock, 4096), ATTEMPT_TIMEOUT / 2)
            return data == check.expect
        except TimeoutError:
            return False
        finally:
            sock.close()

    async def until_passes(self, check: Check) -> None:
        delay = RETRY_FIRST
        while not await self.attempt(check):
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def verify(
        self,
        checks: Mapping[str, tuple[Check, ...]],
        on_ready: Callable[[str], None],
    ) -> None:
        """Run every pod's checks until they pass (forever, if need be: the caller cancels);
        call on_ready(pod) as each pod passes all of its own."""

        async def one(pod: str, pod_checks: tuple[Check, ...]) -> None:
            await asyncio.gather(*(self.until_passes(c) for c in pod_checks))
            on_ready(pod)

        async def report() -> None:
            started = time.monotonic()
            while True:
                await asyncio.sleep(10)
                waiting = sorted(p for p, t in tasks.items() if not t.done())
                log.info(
                    "after %.0fs still waiting for %d pod(s) to answer: %s%s",
                    time.monotonic() - started,
                    len(waiting),
                    ", ".join(waiting[:10]),
                    " ..." if len(waiting) > 10 else "",
                )

        tasks = {pod: asyncio.ensure_future(one(pod, cs)) for pod, cs in checks.items()}
        reporter = asyncio.ensure_future(report())
        try:
            await asyncio.gather(*tasks.values())
        finally:
            reporter.cancel()
            for t in tasks.values():
                t.cancel()


async def _read_line(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = await loop.sock_recv(sock, 4096)
        if not chunk:
            break
        data += chunk
    return data
