"""Finding and ending daemon processes by pid and by command line, safely: a pid is only
signalled after /proc shows it is a podnet daemon of the very same state directory (pids are
reused; a stale pid file must never kill a stranger)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

MODULE = "podnet.daemon"
WATCHDOG = "podnet.daemon.watchdog"
DNS = "podnet.dns"  # the cluster DNS server, the daemon's child
FLOWS = "podnet.flowlog"  # the flow collector, the daemon's child


def find_nginx(root: Path) -> int | None:
    """The ingress controller's nginx master of this state directory (daemon.nginx_child):
    the pid in its pid file, when /proc shows an nginx master running our nginx.conf."""
    conf = root / "ingress" / "nginx.conf"
    try:
        pid = int((root / "ingress" / "nginx.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    args = " ".join(cmdline(pid))
    return pid if "nginx: master process" in args and str(conf) in args and alive(pid) else None


def nginx_workers(master: int) -> dict[int, bool]:
    """{pid: accepting} of an nginx master's workers: False for one that got the master's
    QUIT at a reload ("worker process is shutting down" in its title: it has closed, or
    is closing that instant, its listening sockets and only finishes what it serves)."""
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    out = {}
    for child in map(int, children):
        title = " ".join(cmdline(child))
        if "nginx: worker process" in title:
            out[child] = "shutting down" not in title
    return out


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return raw.decode(errors="replace").split("\0")[:-1]


def serves(pid: int, root: Path, module: str = MODULE) -> bool:
    """True when pid is `python -m MODULE --state-dir ROOT ...` (the daemon, or its
    watchdog with module=WATCHDOG)."""
    args = cmdline(pid)
    if module not in args or "--state-dir" not in args:
        return False
    i = args.index("--state-dir")
    return i + 1 < len(args) and Path(args[i + 1]) == root


def alive(pid: int) -> bool:
    """Running and not a zombie; reaps the zombie when it is our own child.

    Every thread counts: after SIGKILL the group leader can be a zombie while its other
    threads are still exiting, and they still hold the shared file table (the listening
    sockets) until the last one is gone."""
    try:
        tasks = [t.name for t in Path(f"/proc/{pid}/task").iterdir()]
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return False
    for tid in tasks:
        try:
            state = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if state not in ("Z", "X"):
            return True
    reap(pid)
    return False


def exiting(pid: int) -> bool:
    """True while a process is being torn down (PF_EXITING): its /proc/PID/cmdline already
    reads empty, so it can no longer be recognised, but it is not a zombie yet either."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    PF_EXITING, PF_KTHREAD = 0x4, 0x200000
    flags = int(fields[6])  # field 9 of stat(5); fields[0] is field 3
    return bool(flags & PF_EXITING) and not flags & PF_KTHREAD


def wait_dead(pids: list[int], timeout: float) -> bool:
    """True once none of the pids runs any more (zombies count as gone and are reaped)."""
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: init reaps it
        os.waitpid(pid, os.WNOHANG)


def find(root: Path, module: str = MODULE) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if (
            entry.name.isdigit()
            and serves(int(entry.name), root, module)
            and alive(int(entry.name))
        ):
            pids.append(int(entry.name))
    return sorted(pids)


def of_cluster(cluster: str) -> list[int]:
    """Every daemon and watchdog of a cluster name, whatever its state directory: kernel
    names carry the cluster's name, so two state directories cannot both own it."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        args = cmdline(int(entry.name))
        if (
            (MODULE in args or WATCHDOG in args or DNS in args or FLOWS in args)
            and "--cluster" in args
            and args[args.index("--cluster") + 1 :][:1] == [cluster]
            and alive(int(entry.name))
        ):
            pids.append(int(entry.name))
    return sorted(pids)


def terminate(pids: list[int], grace: float) -> None:
    """SIGTERM, and SIGKILL whatever still runs after `grace` seconds; returns when all died."""
    for pid in pids:
        signal_pid(pid, signal.SIGTERM)
    if not wait_dead(pids, grace):
        for pid in pids:
            signal_pid(pid, signal.SIGKILL)
        wait_dead(pids, 5.0)


def signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
