"""Readiness probes, run as the kubelet runs them (pkg/kubelet/prober): tcpSocket and
httpGet from the pod's node namespace against the pod's address (or `host`), exec inside the
pod's network namespace; every `periodSeconds` after `initialDelaySeconds`, each attempt
bounded by `timeoutSeconds`; a container turns ready after `successThreshold` consecutive
successes and unready after `failureThreshold` consecutive failures, and starts unready.

The stand-in calls `on_change` whenever a container's result flips; the pod's readiness
(`StandIn.kubelet_ready`) combines these results with its own proof that the pod runs.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from podnet.datapath.netns import Namespaces, path
from podnet.render.runtime import Pod, Probe, Runtime

log = logging.getLogger(__name__)

ProbeKey = tuple[str, str]  # (pod key, container)


@dataclass(frozen=True)
class Target:
    """One container's probe, with where it runs from and what it reaches."""

    pod: str
    container: str
    probe: Probe
    netns: str  # where tcpSocket/httpGet connect from (the node's), or exec runs (the pod's)
    host: str


def targets(runtime: Runtime) -> dict[ProbeKey, Target]:
    nodes = {n.name: n for n in runtime.nodes}
    out: dict[ProbeKey, Target] = {}
    for pod in runtime.pods:
        for c in pod.containers:
            if c.readiness is None:
                continue
            out[(pod.key, c.name)] = _target(pod, c.name, c.readiness, nodes)
    return out


def _target(pod: Pod, container: str, probe: Probe, nodes: dict) -> Target:  # type: ignore[type-arg]
    node = nodes.get(pod.node)
    if probe.action == "exec":
        return Target(pod.key, container, probe, pod.netns, pod.ip)
    return Target(
        pod.key, container, probe, node.netns if node else pod.netns, probe.host or pod.ip
    )


class ProbeRunner:
    """One asyncio task per probed container; `results[pod][container]` is its readiness."""

    def __init__(self, namespaces: Namespaces, on_change: Callable[[], None]) -> None:
        self.namespaces = namespaces
        self.on_change = on_change
        self.results: dict[str, dict[str, bool]] = {}  # pod -> container -> ready
        self.tasks: dict[ProbeKey, tuple[Target, asyncio.Task[None]]] = {}

    def update(self, runtime: Runtime) -> None:
        """Start probes that are new or changed, stop those gone (their result with them)."""
        wanted = targets(runtime)
        for key in list(self.tasks):
            target, task = self.tasks[key]
            if wanted.get(key) != target:
                task.cancel()
                del self.tasks[key]
                per_pod = self.results.get(key[0], {})
                per_pod.pop(key[1], None)
                if not per_pod:
                    self.results.pop(key[0], None)
        for key, target in wanted.items():
            if key not in self.tasks:
                self.results.setdefault(key[0], {})[key[1]] = False
                self.tasks[key] = (target, asyncio.ensure_future(self._run(key, target)))

    def close(self) -> None:
        for _, task in self.tasks.values():
            task.cancel()
        self.tasks.clear()

    async def _run(self, key: ProbeKey, t: Target) -> None:
        probe = t.probe
        await asyncio.sleep(probe.initial_delay)
        successes = failures = 0
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                ok = await asyncio.wait_for(self._attempt(t), probe.timeout)
            except (TimeoutError, OSError):
                ok = False
            successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
            before = self.results.get(key[0], {}).get(key[1], False)
            if not before and successes >= probe.success_threshold:
                self._set(key, True)
            elif before and failures >= probe.failure_threshold:
                self._set(key, False)
            await asyncio.sleep(max(0.0, probe.period - (loop.time() - started)))

    def _set(self, key: ProbeKey, ready: bool) -> None:
        log.info(
            "readiness probe of %s container %s: %s",
            key[0],
            key[1],
            "ready" if ready else "not ready",
        )
        self.results.setdefault(key[0], {})[key[1]] = ready
        self.on_change()

    async def _attempt(self, t: Target) -> bool:
        p = t.probe
        if p.action == "exec":
            return await self._exec(t)
        if p.port is None:
            return False  # a named port the pod does not declare: the kubelet's error
        loop = asyncio.get_running_loop()
        sock = self.namespaces.socket(t.netns, socket.SOCK_STREAM)
        try:
            await loop.sock_connect(sock, (t.host, p.port))
            if p.action == "tcpSocket":
                return True
            request = (
                f"GET {p.path} HTTP/1.1\r\nHost: {t.host}:{p.port}\r\n"
                "User-Agent: kube-probe/1.31\r\nAccept: */*\r\nConnection: close\r\n\r\n"
            )
            await loop.sock_sendall(sock, request.encode())
            head = await loop.sock_recv(sock, 4096)
            parts = head.split(b" ", 2)
            # The kubelet's rule: a status from 200 to 399 is a success.
            return len(parts) >= 2 and parts[1].isdigit() and 200 <= int(parts[1]) < 400
        finally:
            sock.close()

    async def _exec(self, t: Target) -> bool:
        """The command in the pod's network namespace (nsenter from util-linux), its exit
        status the verdict, as the container runtime's exec gives it."""
        if not t.probe.command:
            return False
        proc = await asyncio.create_subprocess_exec(
            "nsenter",
            f"--net={path(t.netns)}",
            "--",
            *t.probe.command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            return await proc.wait() == 0
        except asyncio.CancelledError:
            proc.kill()
            await proc.wait()
            raise
