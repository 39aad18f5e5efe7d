"""The workload stand-in: every pod of runtime.json served from sockets inside its
namespace, and its readiness proven by checks from its node. One asyncio component of the
cluster's daemon; `load()` (re)reads runtime.json and diffs the sockets.

What it reports (the daemon writes it into daemon.json): {"generation" (counts loads),
"error" (of the last load), "runtime": sha256 of the runtime.json it serves, "listeners",
"pods", "sctp", "warnings": [...]}. ready.json ({"ns/pod": bool}) is its own, rewritten as
pods pass their checks; always written before the daemon's status, so a reader that sees the
current digest in daemon.json sees a ready.json that belongs to it.

Readiness as the kubelet reports it (readiness.json, `kubelet_ready`): a pod is Ready when it
runs (its sockets answered the checks above) and its containers' readiness probes pass
(workload/probes.py); without probes, once it runs, unless its manifest says Ready=False.
Ports listed in stopped.json (`podnet serve --stop`) are not served: that is how a user makes
a pod stop answering on a port of a running cluster, to watch probes, endpoints and DNS
follow.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import resource
import time
from collections.abc import Callable, Mapping
from typing import Any

from podnet.datapath.netns import Namespaces
from podnet.render import dns_file
from podnet.render import runtime as rt
from podnet.state.files import StateFiles, write_atomic
from podnet.workload.healthcheck import HealthServers
from podnet.workload.listeners import Changes, Listeners, sctp_unsupported
from podnet.workload.probes import ProbeRunner
from podnet.workload.readiness import Prober
from podnet.workload.sockets import Check, SocketPlan, make_plan

log = logging.getLogger(__name__)

READY_WRITE_INTERVAL = 0.1  # coalesce ready.json rewrites while many pods turn ready


def raise_fd_limit() -> int:
    """Thousands of listening sockets, plus the connections in flight: lift the soft
    RLIMIT_NOFILE to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class StandIn:
    def __init__(
        self,
        files: StateFiles,
        write_status: Callable[[], None],
        on_readiness: Callable[[], None] = lambda: None,
    ) -> None:
        self.files = files
        self.on_readiness = on_readiness  # a pod's kubelet readiness changed
        self.readiness: dict[str, bool] = {}  # the last kubelet readiness published
        self.declared_unready: set[str] = set()
        self.write_status = write_status  # the daemon's status file, after each (re)load
        self.namespaces = Namespaces()
        self.listeners = Listeners(self.namespaces)
        self.health = HealthServers(self.namespaces)  # kube-proxy's healthCheckNodePorts
        self.prober = Prober(self.namespaces)
        self.sctp_error = sctp_unsupported()
        self.checks: dict[str, tuple[Check, ...]] = {}
        self.stopped: dict[str, set[str]] = {}  # stopped.json as the last load read it
        self.ready: dict[str, bool] = {}
        self.warnings: list[str] = []
        self.reported_unsupported: set[str] = set()
        self.verifier: asyncio.Task[None] | None = None
        self.writer: asyncio.Task[None] | None = None
        self.runtime: rt.Runtime | None = None
        self.generation = 0
        self.load_error: str | None = None
        self.ready_dirty = False
        self.fd_limit = raise_fd_limit()
        self.probes = ProbeRunner(self.namespaces, self._readiness_changed)
        if self.sctp_error:
            log.info("SCTP sockets: unavailable (%s)", self.sctp_error)

    async def start(self) -> None:
        await self.load()
        self.writer = asyncio.ensure_future(self._write_ready_loop())

    def close(self) -> None:
        for task in (self.writer, self.verifier):
            if task:
                task.cancel()
        self.probes.close()
        self.listeners.close()
        self.health.close()
        self.namespaces.close()
        self.files.ready.unlink(missing_ok=True)

    async def load(self) -> None:
        started = time.monotonic()
        self.generation += 1
        try:
            runtime = rt.load(self.files.root)
        except rt.RuntimeFileError as e:
            log.error("not reloaded: %s", e)
            self.load_error = str(e)
            self.write_status()
            return
        self.load_error = None
        # Port 53 of the DNS pods belongs to the DNS server (podnet.dns), not to us.
        reserved = dns_file.server_netns(self.files.root)
        stopped = self._stopped()
        toggled = {  # pod -> the ports `podnet serve` stopped or started since the last load
            pod: ports
            for pod in stopped.keys() | self.stopped.keys()
            if (ports := stopped.get(pod, set()) ^ self.stopped.get(pod, set()))
        }
        plan = make_plan(
            _without_stopped(runtime, stopped),
            sctp=self.sctp_error is None,
            dns_netns=reserved,
        )
        self.warnings = []
        for problem in plan.problems:
            self._warn(problem)
        self._warn_sctp(plan)
        changes = await self.listeners.apply(plan.listeners)
        for problem in changes.problems + await self.health.apply(runtime.health_checks):
            self._warn(problem)
        self._note_fd_budget()
        self._update_readiness(plan, changes, toggled)
        self.stopped = stopped
        self.runtime = runtime
        self.declared_unready = {p.key for p in runtime.pods if p.declared_unready}
        self.probes.update(runtime)
        self._write_ready()
        self.write_status()
        log.info(
            "serving %d pod(s) with %d socket(s) in %.3fs: %d opened, %d closed, %d renamed",
            len(runtime.pods),
            len(self.listeners.active),
            time.monotonic() - started,
            len(changes.opened),
            len(changes.closed),
            len(changes.renamed),
        )

    def _warn_sctp(self, plan: SocketPlan) -> None:
        """One line for all SCTP ports; logged again only when a reload adds some."""
        if not plan.unsupported:
            return
        n = len(plan.unsupported)
        shown = ", ".join(plan.unsupported[:5]) + (f" and {n - 5} more" if n > 5 else "")
        line = (
            f"SCTP is not supported by this kernel ({self.sctp_error}): "
            f"{n} SCTP port(s) are not served: {shown}"
        )
        self.warnings.append(line)
        if not set(plan.unsupported) <= self.reported_unsupported:
            log.warning("%s", line)
        self.reported_unsupported = set(plan.unsupported)

    def _warn(self, line: str) -> None:
        log.warning("%s", line)
        self.warnings.append(line)

    def _note_fd_budget(self) -> None:
        if len(self.listeners.active) + 1024 > self.fd_limit:
            log.warning(
                "%d sockets open with RLIMIT_NOFILE %d: little room for connections",
                len(self.listeners.active),
                self.fd_limit,
            )

    def _update_readiness(
        self, plan: SocketPlan, changes: Changes, toggled: Mapping[str, set[str]]
    ) -> None:
        ready = still_running(plan, changes, toggled, self.checks, self.ready)
        self.checks, self.ready = dict(plan.checks), ready
        if self.verifier:
            self.verifier.cancel()
        pending = {pod: self.checks[pod] for pod, ok in ready.items() if not ok}
        self.verifier = asyncio.ensure_future(self._verify(pending))

    async def _verify(self, pending: dict[str, tuple[Check, ...]]) -> None:
        if not pending:
            return
        started = time.monotonic()
        await self.prober.verify(pending, self._mark_ready)
        self._write_ready()
        log.info(
            "%d pod(s) answered in %.3fs; all %d ready",
            len(pending),
            time.monotonic() - started,
            len(self.ready),
        )

    def _mark_ready(self, pod: str) -> None:
        if pod in self.ready:
            self.ready[pod] = True
            self.ready_dirty = True  # published by the writer loop, many pods at a time

    def _stopped(self) -> dict[str, set[str]]:
        try:
            doc = json.loads(self.files.stopped.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return {str(k): {str(x) for x in v} for k, v in doc.items()}

    def kubelet_ready(self, pod: str) -> bool:
        """The pod's Ready condition as the kubelet sets it (see the module docstring)."""
        if not self.ready.get(pod, False):
            return False
        probed = self.probes.results.get(pod)
        if probed:
            return all(probed.values())
        return pod not in self.declared_unready

    def _readiness_changed(self) -> None:
        """Publish the kubelet readiness when it changed; the daemon then syncs endpoints."""
        now = {p: self.kubelet_ready(p) for p in self.ready}
        if now != self.readiness:
            self.readiness = now
            self.ready_dirty = True
            self.on_readiness()

    async def _write_ready_loop(self) -> None:
        while True:
            await asyncio.sleep(READY_WRITE_INTERVAL)
            if self.ready_dirty:
                self._write_ready()

    def _write_ready(self) -> None:
        self.ready_dirty = False
        self._readiness_changed()
        self.ready_dirty = False
        write_atomic(self.files.readiness, json.dumps(self.readiness, sort_keys=True) + "\n")
        write_atomic(self.files.ready, json.dumps(self.ready, sort_keys=True) + "\n")

    def status(self) -> dict[str, Any]:
        runtime = self.runtime
        return {
            "generation": self.generation,  # one more per (re)load, failed ones included
            "error": self.load_error,
            "runtime": runtime.digest if runtime else None,
            "pods": len(runtime.pods) if runtime else 0,
            "listeners": len(self.listeners.active),
            "sctp": self.sctp_error is None,
            "warnings": self.warnings,
        }


def still_running(
    plan: SocketPlan,
    changes: Changes,
    toggled: Mapping[str, set[str]],
    checks: Mapping[str, tuple[Check, ...]],
    ready: Mapping[str, bool],
) -> dict[str, bool]:
    """Which pods stay running (ready to the stand-in) across a reload: those whose checks
    and sockets are unchanged; the rest are verified again. A socket closed although the
    pod still declares it (its namespace is gone) touches the pod too: it answers no
    longer. A port that `podnet serve` stopped or started (`toggled`: pod -> "PORT/PROTO")
    touches nothing: the application stopped or started listening, its container runs on,
    and the kubelet, which knows no ports, sees it only through a readiness probe
    (workload/probes.py). Verified again, such a pod left its Services for the moment of
    the check and came back until its probe failed: endpoints flapping where the
    kubelet's stay put (issue 9's differential test saw Services reach a pod it had just
    stopped)."""
    touched = {
        key
        for ep, ident in plan.listeners.items()
        if (ep in changes.opened or ep in changes.renamed or ep in changes.closed)
        and f"{ep.port}/{ep.protocol}"
        not in toggled.get(key := f"{ident.namespace}/{ident.pod}", ())
    }
    out = {}
    for pod, pod_checks in plan.checks.items():
        off = toggled.get(pod, set())
        same = _checked(checks.get(pod, ()), off) == _checked(pod_checks, off)
        out[pod] = same and pod not in touched and ready.get(pod, False)
    return out


def _checked(checks: tuple[Check, ...], toggled: set[str]) -> tuple[Check, ...]:
    """A pod's checks but those of the ports `podnet serve` toggled (and the stand-in check
    of a pod that serves no port: all of them stopped)."""
    if not toggled:
        return checks
    return tuple(
        c for c in checks if c.expect is not None and f"{c.port}/{c.protocol}" not in toggled
    )


def _without_stopped(runtime: rt.Runtime, stopped: dict[str, set[str]]) -> rt.Runtime:
    """runtime.json minus the ports `podnet serve --stop` stopped: they are not served."""
    if not stopped:
        return runtime
    pods = []
    for pod in runtime.pods:
        off = stopped.get(pod.key)
        if off:
            containers = tuple(
                dataclasses.replace(
                    c, ports=tuple(q for q in c.ports if f"{q.port}/{q.protocol}" not in off)
                )
                for c in pod.containers
            )
            pod = dataclasses.replace(pod, containers=containers)
        pods.append(pod)
    return dataclasses.replace(runtime, pods=tuple(pods))
