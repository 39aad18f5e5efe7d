"""The DNS server as the daemon's child: started beside the stand-in, restarted when it dies,
told to reload after a sync rewrote dns.json, stopped with the daemon.

The server is its own process (`python -m podnet.dns`): its loop must not share a GIL with
the controller's syncs and the stand-in's connections, or a sync would stall every lookup.
A daemon restarted after a crash adopts a server that still runs (found by its command
line, like the watchdog finds the daemon), so DNS keeps answering across a daemon restart.
Restarts back off as the watchdog's do: at once after a stable run, else from 0.5 s
doubling up to 10 s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from podnet.daemon import procs
from podnet.state.files import StateFiles

MODULE = procs.DNS
STABLE, FIRST_BACKOFF, MAX_BACKOFF = 10.0, 0.5, 10.0
RELOAD_WAIT = 2.0  # seconds a reload may take before the daemon stops waiting for it

log = logging.getLogger("podnet.daemon.dns")


class DnsChild:
    # What the child is (the flow collector reuses this supervision: flows_child.py).
    module = MODULE
    what = "DNS server"

    def __init__(self, root: Path, cluster: str) -> None:
        self.root = root
        self.cluster = cluster
        self.files = StateFiles(root)
        self.pid: int | None = None
        self.stopping = False
        self.restarts = 0
        self.started = 0.0
        self.backoff = FIRST_BACKOFF
        self._pidfd: int | None = None
        self._restart: asyncio.TimerHandle | None = None

    def start(self) -> None:
        found = procs.find(self.root, self.module)
        if found:
            self.pid = found[0]
            log.info("adopted the %s, pid %d", self.what, self.pid)
            self.adopted(self.pid)
        else:
            argv = [sys.executable, "-m", self.module, "--state-dir", str(self.root)]
            self.pid = os.posix_spawn(
                sys.executable, [*argv, "--cluster", self.cluster], os.environ
            )
            log.info("started the %s, pid %d", self.what, self.pid)
        self.started = time.monotonic()
        self._watch(self.pid)

    def adopted(self, pid: int) -> None:
        procs.signal_pid(pid, signal.SIGHUP)  # it may hold an older dns.json

    def _watch(self, pid: int) -> None:
        try:
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._exited()
            return
        asyncio.get_running_loop().add_reader(self._pidfd, self._exited)

    def _unwatch(self) -> None:
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None

    def _exited(self) -> None:
        self._unwatch()
        pid, self.pid = self.pid, None
        if pid is not None:
            procs.reap(pid)
        if self.stopping:
            return
        self.restarts += 1
        if time.monotonic() - self.started >= STABLE:
            self.backoff, delay = FIRST_BACKOFF, 0.0
        else:
            delay, self.backoff = self.backoff, min(MAX_BACKOFF, self.backoff * 2)
        log.warning(
            "the %s (pid %s) ended; restart %d in %gs", self.what, pid, self.restarts, delay
        )
        self._restart = asyncio.get_running_loop().call_later(delay, self.start)

    def generation(self) -> int:
        try:
            return int(json.loads(self.files.dns_status.read_text())["generation"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return 0

    async def reload(self) -> None:
        """SIGHUP, then wait (briefly) until the server has loaded: callers that hand port
        53 over between the server and the stand-in need the order."""
        if self.pid is None:
            return
        before = self.generation()
        procs.signal_pid(self.pid, signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_WAIT
        while self.generation() <= before and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    def stop(self, grace: float = 3.0) -> None:
        self.stopping = True
        if self._restart is not None:
            self._restart.cancel()
        self._unwatch()
        if self.pid is not None and procs.serves(self.pid, self.root, self.module):
            procs.terminate([self.pid], grace)
        self.pid = None

    def status(self) -> dict[str, object]:
        return {"pid": self.pid, "restarts": self.restarts}
