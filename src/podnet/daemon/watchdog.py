"""`python -m podnet.daemon.watchdog --state-dir DIR --cluster NAME`: keeps the cluster's
daemon running, as a kubelet restarts a container that died.

It waits on the daemon's pidfd (pidfd_open(2): any process, not only a child, so a watchdog
started after a crash adopts a daemon that still runs), and when the daemon dies for any
reason but a stop, starts a new one at once — the new daemon adopts the kernel state as it
is (its first sync is a baseline: nothing in the kernel changes) — and records the restart
in restarts.json (`get pods` shows RESTARTS from it). A daemon that dies again within
STABLE seconds is restarted after a backoff that doubles up to MAX_BACKOFF (kubelet's
CrashLoopBackOff). SIGTERM stops the daemon, then the watchdog.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import select
import signal
import sys
import time
from pathlib import Path

from podnet.daemon import procs
from podnet.state import pid_lock
from podnet.state.files import StateFiles, write_atomic

STABLE = 10.0  # a daemon that ran this long had not crashed in a loop
FIRST_BACKOFF, MAX_BACKOFF = 0.5, 10.0
POLL = 0.2  # how often a stop request is noticed while waiting

log = logging.getLogger("podnet.daemon.watchdog")


class Watchdog:
    def __init__(self, root: Path, cluster: str) -> None:
        self.files = StateFiles(root)
        self.root = root
        self.cluster = cluster
        self.stopping = False
        self.daemon: int | None = None

    def stop(self, signum: int, frame: object) -> None:
        self.stopping = True
        if self.daemon is not None:
            procs.signal_pid(self.daemon, signal.SIGTERM)

    def spawn(self) -> int:
        argv = [sys.executable, "-m", procs.MODULE, "--state-dir", str(self.root)]
        return os.posix_spawn(sys.executable, [*argv, "--cluster", self.cluster], os.environ)

    def running(self) -> int | None:
        found = procs.find(self.root)
        return found[0] if found else None

    def wait(self, pid: int) -> str:
        """Block until `pid` has exited; why it ended, in words."""
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return "gone"
        try:
            while not select.select([fd], [], [], POLL)[0]:
                pass
        finally:
            os.close(fd)
        try:
            _, status = os.waitpid(pid, 0)  # our child: reap it, and learn how it ended
        except ChildProcessError:
            return "exited"  # adopted: its parent reaps it
        if os.WIFSIGNALED(status):
            return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
        return f"exited with status {os.WEXITSTATUS(status)}"

    def record(self, reason: str) -> int:
        try:
            count = int(json.loads(self.files.restarts.read_text())["count"])
        except (FileNotFoundError, ValueError, KeyError):
            count = 0
        doc = {"count": count + 1, "last": time.time(), "reason": reason}
        write_atomic(self.files.restarts, json.dumps(doc) + "\n")
        return count + 1

    def run(self) -> int:
        backoff = FIRST_BACKOFF
        while not self.stopping:
            pid = self.running() or self.spawn()
            self.daemon = pid
            if self.stopping:  # a stop that came between the spawn and now
                procs.signal_pid(pid, signal.SIGTERM)
            started = time.monotonic()
            log.info("watching the daemon of cluster %s, pid %d", self.cluster, pid)
            reason = self.wait(pid)
            self.daemon = None
            if self.stopping:
                break
            count = self.record(reason)
            if time.monotonic() - started >= STABLE:
                backoff = FIRST_BACKOFF
                delay = 0.0
            else:
                delay, backoff = backoff, min(MAX_BACKOFF, backoff * 2)
            log.warning(
                "the daemon (pid %d) %s; restart %d%s",
                pid,
                reason,
                count,
                f" in {delay:g}s" if delay else "",
            )
            deadline = time.monotonic() + delay
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(min(POLL, deadline - time.monotonic()))
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m podnet.daemon.watchdog", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--cluster", required=True)
    args = parser.parse_args(argv)
    root = args.state_dir.resolve()
    os.chdir("/")
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    dog = Watchdog(root, args.cluster)
    lock = pid_lock.claim(dog.files.watchdog_pid)
    if lock is None:
        other = pid_lock.holder(dog.files.watchdog_pid)
        log.error("another watchdog (pid %s) serves %s; exiting", other, root)
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, dog.stop)
    try:
        return dog.run()
    finally:
        pid_lock.release(dog.files.watchdog_pid, lock)


if __name__ == "__main__":
    sys.exit(main())
