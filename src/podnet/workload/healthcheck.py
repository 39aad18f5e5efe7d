"""kube-proxy's health check server for externalTrafficPolicy Local: on each node's address,
at the Service's healthCheckNodePort, an HTTP answer a load balancer polls to learn whether
the node has endpoints of the Service (pkg/proxy/healthcheck/service_health.go):

    200 (503 when localEndpoints is 0)
    Content-Type: application/json
    X-Content-Type-Options: nosniff
    X-Load-Balancing-Endpoint-Weight: <localEndpoints>

    {"service": {"namespace": NS, "name": NAME}, "localEndpoints": N, "serviceProxyHealthy": true}

One listening socket per node and port, opened inside the node's namespace; a change of the
count only changes the answer (the socket stays).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import socket
from collections.abc import Iterable

from podnet.datapath.netns import Namespaces
from podnet.render.runtime import HealthCheck

log = logging.getLogger("podnet.workload")
Key = tuple[str, str, int]  # (netns, ip, port)
READ_LIMIT = 8192


def response(check: HealthCheck) -> bytes:
    n = check.local_endpoints
    body = json.dumps(
        {
            "service": {"namespace": check.namespace, "name": check.name},
            "localEndpoints": n,
            "serviceProxyHealthy": True,
        },
        indent="\t",
    ).encode()
    status = "200 OK" if n else "503 Service Unavailable"
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"X-Content-Type-Options: nosniff\r\nX-Load-Balancing-Endpoint-Weight: {n}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class HealthServers:
    def __init__(self, namespaces: Namespaces) -> None:
        self.namespaces = namespaces
        self.checks: dict[Key, HealthCheck] = {}
        self.servers: dict[Key, asyncio.Server] = {}

    async def apply(self, checks: Iterable[HealthCheck]) -> list[str]:
        """Serve exactly `checks`; the problems (a port that cannot be bound), if any."""
        self.checks = {(c.netns, c.ip, c.port): c for c in checks}
        problems = []
        for key in [k for k in self.servers if k not in self.checks]:
            self.servers.pop(key).close()
        for key in self.checks:
            if key in self.servers:
                continue
            netns, ip, port = key
            try:
                sock = self.namespaces.socket(netns, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((ip, port))
                sock.listen(64)
                sock.setblocking(False)
            except OSError as e:
                problems.append(f"health check {ip}:{port} in {netns}: {e.strerror or e}")
                continue
            self.servers[key] = await asyncio.start_server(
                functools.partial(self._answer, key), sock=sock
            )
        return problems

    async def _answer(
        self, key: Key, reader: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            check = self.checks.get(key)
            if check is not None:
                w.write(response(check))
                await w.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            pass
        finally:
            w.close()

    def close(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()
