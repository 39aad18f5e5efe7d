"""The daemon's main loop: load runtime.json, serve every pod, verify readiness, reload on
SIGHUP, exit on SIGTERM. One asyncio process for the whole cluster.

Files it writes in the state directory (see paths.StateFiles):
- daemon.json: {"pid", "cluster", "generation" (counts loads), "error" (of the last load),
  "runtime": sha256 of the runtime.json it serves, "listeners", "pods", "warnings": [...]},
  rewritten after each (re)load;
- ready.json: {"ns/pod": bool}, rewritten as pods pass their checks; always written before
  daemon.json, so a reader that sees the current digest in daemon.json sees a ready.json
  that belongs to it.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import resource
import signal
import time
from pathlib import Path

from podnet.daemon import runtime as rt
from podnet.daemon.listeners import Changes, Listeners, sctp_unsupported
from podnet.daemon.netns import Namespaces
from podnet.daemon.paths import StateFiles, write_atomic
from podnet.daemon.plan import Check, Plan, make_plan
from podnet.daemon.readiness import Prober
from podnet.daemon.reconcile import Syncer

log = logging.getLogger(__name__)

READY_WRITE_INTERVAL = 0.1  # coalesce ready.json rewrites while many pods turn ready


def raise_fd_limit() -> int:
    """Thousands of listening sockets, plus the connections in flight: lift the soft
    RLIMIT_NOFILE to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Daemon:
    def __init__(self, root: Path, cluster: str) -> None:
        self.files = StateFiles(root)
        self.cluster = cluster
        self.namespaces = Namespaces()
        self.listeners = Listeners(self.namespaces)
        self.prober = Prober(self.namespaces)
        self.sctp_error = sctp_unsupported()
        self.checks: dict[str, tuple[Check, ...]] = {}
        self.ready: dict[str, bool] = {}
        self.warnings: list[str] = []
        self.reported_unsupported: set[str] = set()
        self.verifier: asyncio.Task[None] | None = None
        self.runtime: rt.Runtime | None = None
        self.generation = 0
        self.load_error: str | None = None
        self.ready_dirty = False
        self.fd_limit = raise_fd_limit()
        self.syncer = Syncer.for_state(self.files.root, cluster, self.load)

    def claim(self) -> bool:
        """Hold an exclusive lock on daemon.pid for the daemon's life: a second daemon of
        the same state directory stops here, and a stale file from a killed one is no
        obstacle (the lock died with its holder)."""
        self.files.root.mkdir(parents=True, exist_ok=True)
        self.pid_fd = os.open(self.files.pid, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self.pid_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(self.pid_fd, 32, 0).decode().strip()
            log.error("another daemon (pid %s) serves %s; exiting", other, self.files.root)
            return False
        os.ftruncate(self.pid_fd, 0)
        os.pwrite(self.pid_fd, f"{os.getpid()}\n".encode(), 0)
        return True

    async def run(self) -> int:
        if not self.claim():
            return 1
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        reload = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reload.set)
        log.info(
            "daemon of cluster %s, pid %d, state %s", self.cluster, os.getpid(), self.files.root
        )
        if self.sctp_error:
            log.info("SCTP sockets: unavailable (%s)", self.sctp_error)
        await self.load()
        writer = asyncio.ensure_future(self._write_ready_loop())
        reloader = asyncio.ensure_future(self._reload_loop(reload))
        syncer = self.syncer.start(loop, self._write_status) if self.syncer else None
        await stop.wait()
        log.info("stopping")
        for task in (writer, reloader, self.verifier, syncer):
            if task:
                task.cancel()
        self.listeners.close()
        self.namespaces.close()
        self._remove_own_files()
        return 0

    async def _reload_loop(self, reload: asyncio.Event) -> None:
        while True:
            await reload.wait()
            reload.clear()  # HUPs arriving during a load coalesce into one more load
            log.info("SIGHUP: reloading %s", self.files.runtime)
            await self.load()

    async def load(self) -> None:
        started = time.monotonic()
        self.generation += 1
        try:
            runtime = rt.load(self.files.root)
        except rt.RuntimeFileError as e:
            log.error("not reloaded: %s", e)
            self.load_error = str(e)
            self._write_status()
            return
        self.load_error = None
        plan = make_plan(runtime, sctp=self.sctp_error is None)
        self.warnings = []
        for problem in plan.problems:
            self._warn(problem)
        self._warn_sctp(plan)
        changes = await self.listeners.apply(plan.listeners)
        for problem in changes.problems:
            self._warn(problem)
        self._note_fd_budget()
        self._update_readiness(plan, changes)
        self._write_ready()
        self.runtime = runtime
        self._write_status()
        log.info(
            "serving %d pod(s) with %d socket(s) in %.3fs: %d opened, %d closed, %d renamed",
            len(runtime.pods),
            len(self.listeners.active),
            time.monotonic() - started,
            len(changes.opened),
            len(changes.closed),
            len(changes.renamed),
        )

    def _warn_sctp(self, plan: Plan) -> None:
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

    def _update_readiness(self, plan: Plan, changes: Changes) -> None:
        """Keep a pod ready only if its checks and its sockets are unchanged; verify the rest."""
        touched = {
            f"{ident.namespace}/{ident.pod}"
            for ep, ident in plan.listeners.items()
            if ep in changes.opened or ep in changes.renamed
        }
        ready = {}
        for pod, pod_checks in plan.checks.items():
            same = self.checks.get(pod) == pod_checks and pod not in touched
            ready[pod] = same and self.ready.get(pod, False)
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
            self.ready_dirty = True

    async def _write_ready_loop(self) -> None:
        while True:
            await asyncio.sleep(READY_WRITE_INTERVAL)
            if self.ready_dirty:
                self._write_ready()

    def _write_ready(self) -> None:
        self.ready_dirty = False
        write_atomic(self.files.ready, json.dumps(self.ready, sort_keys=True) + "\n")

    def _write_status(self) -> None:
        runtime = self.runtime
        status = {
            "pid": os.getpid(),
            "cluster": self.cluster,
            "generation": self.generation,  # one more per (re)load, failed ones included
            "error": self.load_error,
            "runtime": runtime.digest if runtime else None,
            "pods": len(runtime.pods) if runtime else 0,
            "listeners": len(self.listeners.active),
            "sctp": self.sctp_error is None,
            "warnings": self.warnings,
            "sync": self.syncer.status if self.syncer else None,
        }
        write_atomic(self.files.status, json.dumps(status, indent=1) + "\n")

    def _remove_own_files(self) -> None:
        for path in (self.files.status, self.files.ready):
            path.unlink(missing_ok=True)
        try:
            if int(self.files.pid.read_text().strip()) == os.getpid():
                self.files.pid.unlink()
        except (FileNotFoundError, ValueError):
            pass
