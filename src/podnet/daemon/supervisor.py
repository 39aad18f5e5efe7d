"""Start, reload, wait for and stop a cluster's daemon. Used by `up`, `apply` and `down`.

start(state_dir, cluster)      spawn `python -m podnet.daemon` detached; return once serving
wait_ready(state_dir, timeout) return once every pod answers (raise TimeoutError naming
                               the pods that do not)
reload(state_dir)              SIGHUP: re-read runtime.json
request_sync(state_dir, rev)   SIGUSR1: sync the kernel with the store; return the status of
                               a sync of that revision or later (`apply`, `delete`, `label`)
stop(state_dir)                idempotent; SIGTERM then SIGKILL; pid file or command line
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from podnet.daemon import procs
from podnet.render.runtime import digest_of, load
from podnet.state.files import StateFiles

START_TIMEOUT = 15.0
STOP_GRACE = 3.0
POLL = 0.02
SYNC_SIGNAL = signal.SIGUSR1  # a change was stored: sync the kernel with the store now
SYNC_TIMEOUT = 30.0
SYNC_POLL = 0.005  # a sync takes ~0.1 s: the command returns within 5 ms of its end


class DaemonError(Exception):
    """The daemon could not start or died; the message ends with the tail of its log."""


def start(state_dir: Path, cluster: str, timeout: float = START_TIMEOUT) -> None:
    """Start the one daemon of this cluster (a running one is told to reload instead)."""
    root = state_dir.resolve()
    files = StateFiles(root)
    if running_pid(root) is not None:
        reload(root, timeout)
        return
    root.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", procs.MODULE, "--state-dir", str(root), "--cluster", cluster]
    log_fd = os.open(files.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        # posix_spawn rather than subprocess.Popen: a Popen object for a process that
        # outlives it warns on garbage collection. setsid detaches from our terminal.
        pid = os.posix_spawn(
            sys.executable,
            argv,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(log_fd)
    deadline = time.monotonic() + timeout
    while (status := _status(files)) is None or status.get("pid") != pid:
        if not procs.alive(pid):
            raise DaemonError(f"the daemon of cluster {cluster} exited at start{_log_tail(files)}")
        if time.monotonic() > deadline:
            procs.terminate([pid], STOP_GRACE)
            raise DaemonError(
                f"the daemon of cluster {cluster} did not start within {timeout:.0f}s{_log_tail(files)}"
            )
        time.sleep(POLL)


def running_pid(state_dir: Path) -> int | None:
    """The pid of this state directory's daemon, from the pid file or else /proc."""
    root = state_dir.resolve()
    pid = _pid_from_file(StateFiles(root))
    if pid is not None and procs.serves(pid, root) and procs.alive(pid):
        return pid
    found = procs.find(root)
    return found[0] if found else None


def reload(state_dir: Path, timeout: float = START_TIMEOUT) -> None:
    """Tell the daemon to re-read runtime.json (new pods and ports open, removed ones close,
    pods in re-created namespaces are served anew); return once it has. Readiness of the
    changed pods follows: wait_ready."""
    files = StateFiles(state_dir.resolve())
    pid = running_pid(files.root)
    if pid is None:
        raise DaemonError(f"no daemon runs for {files.root}")
    before = (_status(files) or {}).get("generation", 0)
    digest = digest_of(files.runtime) if files.runtime.exists() else None
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    # A load already under way when the signal came may have read the older file; the
    # signal then queues one more load, so wait for the one that serves this digest.
    while not _reloaded(_status(files) or {}, before, digest):
        if not procs.alive(pid):
            raise DaemonError(f"the daemon of {files.root} died{_log_tail(files)}")
        if time.monotonic() > deadline:
            raise DaemonError(f"the daemon of {files.root} did not reload within {timeout:g}s")
        time.sleep(POLL)
    status = _status(files) or {}
    if status.get("error"):
        raise DaemonError(f"the daemon could not reload: {status['error']}")


def request_sync(state_dir: Path, revision: int, timeout: float = SYNC_TIMEOUT) -> dict[str, Any]:
    """Ask the daemon to sync (SIGUSR1) and return its "sync" status (`{"revision", "ok",
    "error", "full", ...}`) once it reports a sync of `revision` or later. Signals that
    arrive during a sync coalesce into one more, so a sync that read an older revision is
    followed by one that reads ours. DaemonError when no daemon runs or it dies meanwhile,
    TimeoutError when no such sync is reported in time."""
    files = StateFiles(state_dir.resolve())
    pid = running_pid(files.root)
    if pid is None:
        raise DaemonError(f"no daemon runs for {files.root}")
    os.kill(pid, SYNC_SIGNAL)
    deadline = time.monotonic() + timeout
    while True:
        status = (_status(files) or {}).get("sync") or {}
        if status.get("revision", -1) >= revision:
            return dict(status)
        if not procs.alive(pid):
            raise DaemonError(f"the daemon of {files.root} died{_log_tail(files)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the daemon did not sync revision {revision} within {timeout:g}s")
        time.sleep(SYNC_POLL)


def _reloaded(status: dict[str, Any], before: int, digest: str | None) -> bool:
    if status.get("generation", 0) <= before:
        return False
    return bool(status.get("error")) or status.get("runtime") == digest


def stop(state_dir: Path, grace: float = STOP_GRACE) -> None:
    """Stop every daemon of this state directory; nothing running is fine."""
    root = state_dir.resolve()
    files = StateFiles(root)
    pids = set(procs.find(root))
    pid = _pid_from_file(files)
    if pid is not None and procs.serves(pid, root) and procs.alive(pid):
        pids.add(pid)
    procs.terminate(sorted(pids), grace)
    if pid is not None and pid not in pids and procs.exiting(pid):
        procs.wait_dead([pid], grace)  # killed a moment ago and not yet gone: let it finish
    for path in (files.pid, files.status, files.ready):
        path.unlink(missing_ok=True)


def wait_ready(
    state_dir: Path,
    timeout: float,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Return once the daemon serves the current runtime.json and every pod has answered on
    its declared ports; progress(ready, total) is called whenever the count changes."""
    files = StateFiles(state_dir.resolve())
    digest = digest_of(files.runtime)
    pods = [p.key for p in load(files.root).pods]
    deadline = time.monotonic() + timeout
    last = -1
    ready: dict[str, Any] = {}
    current = False
    while True:
        status = _status(files)
        current = status is not None and status.get("runtime") == digest
        ready = _read_json(files.ready) or {} if current else {}
        count = sum(1 for p in pods if ready.get(p) is True)
        if progress and count != last:
            progress(count, len(pods))
        last = count
        if current and count == len(pods):
            return
        if running_pid(files.root) is None:
            raise DaemonError(f"the daemon of {files.root} is not running{_log_tail(files)}")
        if time.monotonic() > deadline:
            break
        time.sleep(POLL)
    missing = [p for p in pods if ready.get(p) is not True]
    shown = ", ".join(missing[:20]) + (
        f" and {len(missing) - 20} more" if len(missing) > 20 else ""
    )
    stale = "" if current else " (the daemon has not loaded the current runtime.json)"
    raise TimeoutError(
        f"{len(missing)} of {len(pods)} pod(s) do not answer on their declared ports after "
        f"{timeout:g}s{stale}: {shown}; see {files.log}"
    )


def warnings(state_dir: Path) -> list[str]:
    """What the daemon warned about when it last loaded (e.g. SCTP unsupported)."""
    status = _status(StateFiles(state_dir.resolve()))
    return list(status.get("warnings", ())) if status else []


def _status(files: StateFiles) -> dict[str, Any] | None:
    return _read_json(files.status)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _pid_from_file(files: StateFiles) -> int | None:
    try:
        return int(files.pid.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _log_tail(files: StateFiles, lines: int = 5) -> str:
    try:
        tail = files.log.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return ""
    return "; log " + str(files.log) + ":\n  " + "\n  ".join(tail) if tail else ""
