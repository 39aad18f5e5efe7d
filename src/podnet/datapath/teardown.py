"""Remove everything of one cluster from the kernel, found by its name prefix, not by the
store: it works after `up` died half-way and after the daemon was killed.

Order: processes still inside the cluster's namespaces, then pod namespaces, nodes, the rest.
Removing a namespace drops its links; a veth's peer dies with it. Tolerates what is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass

from podnet.datapath import netns
from podnet.render import kernel_names

ROLE_ORDER = {"pod": 0, "node": 1}


@dataclass(frozen=True)
class TeardownResult:
    namespaces: int
    processes: int


def teardown(cluster: str) -> TeardownResult:
    prefix = kernel_names.netns_prefix(cluster)
    found = netns.listing(prefix)
    killed = kill_processes_in(found)
    for name in sorted(found, key=lambda n: (_role_rank(prefix, n), n)):
        netns.remove(name)
    return TeardownResult(len(found), killed)


def _role_rank(prefix: str, name: str) -> int:
    return ROLE_ORDER.get(name[len(prefix) :].split(".", 1)[0], 2)


def _netns_inodes(found: list[str]) -> set[int]:
    out = set()
    for name in found:
        with contextlib.suppress(FileNotFoundError):
            out.add(netns.inode(name))
    return out


def processes_in(found: list[str]) -> list[int]:
    """Pids with any thread inside one of these namespaces (the daemon enters them with
    setns on worker threads, so each task is checked, not just the process)."""
    # A namespace file that points at our own (the host's) namespace would make every
    # process on the host a match: such a file is never podnet's, so it is skipped.
    inodes = _netns_inodes(found) - {os.stat("/proc/thread-self/ns/net").st_ino}
    me = os.getpid()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            tasks = os.listdir(f"/proc/{entry}/task")
            if any(_task_netns(entry, t) in inodes for t in tasks):
                pids.append(int(entry))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return pids


def _task_netns(pid: str, tid: str) -> int:
    try:
        return os.stat(f"/proc/{pid}/task/{tid}/ns/net").st_ino
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return -1


def kill_processes_in(found: list[str], timeout: float = 3.0) -> int:
    pids = processes_in(found)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        if alive:
            time.sleep(0.02)
    return len(pids)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
