"""The DNS server as the daemon's child: started beside the stand-in, restarted when it dies,
told to reload after a sync rewrote dns.json, stopped with the daemon.

The server is its own process (`python -m podnet.dns`): its loop must not share a GIL with
the controller's syncs and the stand-in's connections, or a sync would stall every lookup.
A daemon restarted after a crash adopts a server that still runs (found by its command
line, like the watchdog finds the daemon), so DNS keeps answering across a daemon restart.
Restarts back off as the watchdog's do: at once after a stable run, else from 0.5 s
doubling up to 10 s (daemon.child, which nginx_child shares).
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
from podnet.daemon.child import SupervisedChild
from podnet.state.files import StateFiles

MODULE = procs.DNS
RELOAD_WAIT = 2.0  # seconds a reload may take before the daemon stops waiting for it

log = logging.getLogger("podnet.daemon.dns")


class DnsChild(SupervisedChild):
    # What the child is (the flow collector is started and adopted the same way:
    # flows_child.py).
    module = MODULE
    what = "the DNS server"
    log = log

    def __init__(self, root: Path, cluster: str) -> None:
        super().__init__()
        self.root = root
        self.cluster = cluster
        self.files = StateFiles(root)

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

    def generation(self) -> int:
        try:
            return int(json.loads(self.files.dns_status.read_text())["generation"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return 0

    async def reload(self, wait: bool = True) -> None:
        """SIGHUP, then wait (briefly) until the server has loaded: callers that hand port
        53 over between the server and the stand-in need the order. `wait=False`: new
        records only, nothing to order; the next sync need not wait for the server's load
        (its whole zone: seconds at 10,000 Services)."""
        if self.pid is None:
            return
        before = self.generation()
        procs.signal_pid(self.pid, signal.SIGHUP)
        if not wait:
            return
        deadline = time.monotonic() + RELOAD_WAIT
        while self.generation() <= before and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    def stop(self, grace: float = 3.0) -> None:
        self._cancel_restart()
        self._unwatch()
        if self.pid is not None and procs.serves(self.pid, self.root, self.module):
            procs.terminate([self.pid], grace)
        self.pid = None

    def status(self) -> dict[str, object]:
        return {"pid": self.pid, "restarts": self.restarts}
