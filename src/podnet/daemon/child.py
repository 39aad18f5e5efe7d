"""What the daemon's children share (the DNS server, the flow collector, nginx): a child
process watched through a pidfd on the event loop, reaped when it ends, and restarted with
kubelet's backoff: at once after a stable run (STABLE seconds or more), else after a delay
starting at FIRST_BACKOFF and doubling up to MAX_BACKOFF (the watchdog backs off the same
way). Subclasses say how a child starts (`start`, which calls `_watch`) and may act after
an exit has been handled (`_after_exit`)."""

from __future__ import annotations

import asyncio
import logging
import os
import time

from podnet.daemon import procs

STABLE, FIRST_BACKOFF, MAX_BACKOFF = 10.0, 0.5, 10.0


class SupervisedChild:
    what = "child"  # how the log names it ("the DNS server (pid 12) ended; ...")
    log = logging.getLogger("podnet.daemon")

    def __init__(self) -> None:
        self.pid: int | None = None
        self.stopping = False
        self.restarts = 0
        self.started = 0.0
        self.backoff = FIRST_BACKOFF
        self._pidfd: int | None = None
        self._restart: asyncio.TimerHandle | None = None

    def start(self) -> None:
        raise NotImplementedError

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
        self.log.warning(
            "%s (pid %s) ended; restart %d in %gs", self.what, pid, self.restarts, delay
        )
        self._restart = asyncio.get_running_loop().call_later(delay, self.start)
        self._after_exit()

    def _after_exit(self) -> None:
        """Called once an unexpected exit has been handled and the restart scheduled."""

    def _cancel_restart(self) -> None:
        self.stopping = True
        if self._restart is not None:
            self._restart.cancel()
