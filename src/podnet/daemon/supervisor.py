"""Start, reload, wait for and stop a cluster's daemon: the CLI's side of the daemon.

start(state_dir, cluster)      spawn the watchdog detached (it starts the daemon, and starts
                               it again when it dies); return once a daemon serves
ensure_running(state_dir, c)   start it when it should run but does not (every command)
wait_ready(state_dir, timeout) return once every pod answers (raise TimeoutError naming
                               the pods that do not)
reload(state_dir)              SIGHUP: re-read runtime.json
request_sync(state_dir, rev)   SIGUSR1: sync the kernel with the store; return the status of
                               a sync of that revision or later (`apply`, `delete`, `label`)
request_apply(state_dir, src)  `apply`'s files to the daemon, which validates, stores and
                               syncs them (daemon.apply_socket); None: do it yourself
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

from podnet.daemon import apply_socket, procs
from podnet.state.files import StateFiles, file_digest

START_TIMEOUT = 15.0
STOP_GRACE = 3.0
POLL = 0.02
SYNC_SIGNAL = signal.SIGUSR1  # a change was stored: sync the kernel with the store now
SYNC_TIMEOUT = 30.0
# A full resync now (`podnet doctor --fix`): the kernel compared with the store and repaired.
FULL_SYNC_SIGNAL = signal.SIGUSR2
SYNC_POLL = 0.005  # a sync takes ~0.1 s: the command returns within 5 ms of its end
LIVENESS_EVERY = 20  # polls: a daemon that died is noticed within ~0.1 s


class DaemonError(Exception):
    """The daemon could not start or died; the message ends with the tail of its log."""


def start(state_dir: Path, cluster: str, timeout: float = START_TIMEOUT) -> None:
    """Start the cluster's daemon under its watchdog (daemon/watchdog.py: a daemon that dies
    is started again); return once a daemon serves. A running daemon is told to reload
    instead; one that runs without a watchdog (the watchdog was killed) gets a new one."""
    root = state_dir.resolve()
    files = StateFiles(root)
    if running_pid(root) is not None and watchdog_pid(root) is not None:
        reload(root, timeout)
        return
    root.mkdir(parents=True, exist_ok=True)
    restarts = restart_count(root)
    # The pid we spawned: its /proc cmdline may not show the watchdog's yet.
    spawned = _spawn_watchdog(files, cluster) if watchdog_pid(root) is None else None
    # A watchdog we find (its daemon dead) is about to restart it, and records that restart
    # maybe only after we read the count: one more is its recovery, a second a failed start.
    expected = restarts + (0 if spawned is not None else 1)
    deadline = time.monotonic() + timeout
    while _serving_pid(files) is None:
        if restart_count(root) > expected:
            stop(root)
            raise DaemonError(f"the daemon of cluster {cluster} exited at start{_log_tail(files)}")
        watched = (spawned is not None and procs.alive(spawned)) or watchdog_pid(root) is not None
        if not watched and running_pid(root) is None:
            raise DaemonError(f"the daemon of cluster {cluster} exited at start{_log_tail(files)}")
        if time.monotonic() > deadline:
            stop(root)
            raise DaemonError(
                f"the daemon of cluster {cluster} did not start within {timeout:.0f}s{_log_tail(files)}"
            )
        time.sleep(POLL)


def _spawn_watchdog(files: StateFiles, cluster: str) -> int:
    argv = [sys.executable, "-m", procs.WATCHDOG, "--state-dir", str(files.root)]
    log_fd = os.open(files.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        # posix_spawn rather than subprocess.Popen: a Popen object for a process that
        # outlives it warns on garbage collection. setsid detaches from our terminal.
        return os.posix_spawn(
            sys.executable,
            [*argv, "--cluster", cluster],
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


def _serving_pid(files: StateFiles) -> int | None:
    """The pid of a live daemon of this directory whose status file is its own."""
    status = _status(files) or {}
    return status["pid"] if _is_live(status, files.root) else None


def _is_live(status: dict[str, Any], root: Path) -> bool:
    """The status was written by a daemon that still runs (a killed one leaves its file)."""
    pid = status.get("pid")
    return isinstance(pid, int) and procs.serves(pid, root) and procs.alive(pid)


def watchdog_pid(state_dir: Path) -> int | None:
    """The pid of this state directory's watchdog, from its pid file or else /proc."""
    root = state_dir.resolve()
    pid = _read_pid(StateFiles(root).watchdog_pid)
    if pid is not None and procs.serves(pid, root, procs.WATCHDOG) and procs.alive(pid):
        return pid
    found = procs.find(root, procs.WATCHDOG)
    return found[0] if found else None


def restart_count(state_dir: Path) -> int:
    """How often the watchdog restarted the daemon since the cluster came up."""
    doc = _read_json(StateFiles(state_dir.resolve()).restarts) or {}
    return int(doc.get("count", 0))


def restarts(state_dir: Path) -> dict[str, Any]:
    """{"count", "last" (epoch seconds), "reason"} of the watchdog's restarts ({} for none)."""
    return dict(_read_json(StateFiles(state_dir.resolve()).restarts) or {})


def ensure_running(state_dir: Path, cluster: str) -> str | None:
    """Start the daemon of a cluster that should have one (`up` without --no-daemon) when
    neither it nor its watchdog runs; a line saying so, or None when nothing was needed."""
    root = state_dir.resolve()
    daemon, dog = running_pid(root), watchdog_pid(root)
    if daemon is not None and dog is not None:
        return None
    start(root, cluster)
    if daemon is None:
        return f"the daemon of cluster {cluster} was not running: started it again"
    return f"the watchdog of cluster {cluster}'s daemon was not running: started it again"


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
    digest = file_digest(files.runtime) if files.runtime.exists() else None
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
    # The command waits on a 2-core machine beside the daemon it waits for: each poll
    # costs one stat, the file is read only when it was replaced, and the daemon's liveness
    # (a /proc read per thread) is checked every LIVENESS_EVERY polls.
    seen: tuple[int, int] | None = None
    polls = 0
    while True:
        stamp = _stamp(files.status)
        if stamp != seen:
            seen = stamp
            status = (_status(files) or {}).get("sync") or {}
            if status.get("revision", -1) >= revision:
                return dict(status)
        if polls % LIVENESS_EVERY == 0 and not procs.alive(pid):
            raise DaemonError(f"the daemon of {files.root} died{_log_tail(files)}")
        polls += 1
        if time.monotonic() > deadline:
            raise TimeoutError(f"the daemon did not sync revision {revision} within {timeout:g}s")
        time.sleep(SYNC_POLL)


def request_apply(
    state_dir: Path, sources: list[Any], timeout: float = SYNC_TIMEOUT + 30.0
) -> dict[str, Any] | None:
    """Hand `apply`'s files (daemon.apply_socket: texts or parsed documents) to the running
    daemon: its answer
    once the change is enforced (controller.apply_requests says what it holds), or None when
    no daemon takes them (none runs, it has not opened its socket yet, it did not answer
    within `timeout`): the CLI then applies them itself."""
    return apply_socket.request(StateFiles(state_dir.resolve()).apply_socket, sources, timeout)


def request_full_sync(state_dir: Path, timeout: float = SYNC_TIMEOUT) -> dict[str, Any]:
    """Ask the daemon for a full sync (SIGUSR2: it compares the whole kernel state with the
    store and repairs what differs) and return its "sync" status once a full sync taken up
    after the request has ended. DaemonError / TimeoutError as request_sync."""
    files = StateFiles(state_dir.resolve())
    pid = running_pid(files.root)
    if pid is None:
        raise DaemonError(f"no daemon runs for {files.root}")
    before = int(((_status(files) or {}).get("sync") or {}).get("full_requests", 0))
    os.kill(pid, FULL_SYNC_SIGNAL)
    deadline = time.monotonic() + timeout
    while True:
        status = (_status(files) or {}).get("sync") or {}
        if int(status.get("full_requests", 0)) > before:
            return dict(status)
        if not procs.alive(pid):
            raise DaemonError(f"the daemon of {files.root} died{_log_tail(files)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the daemon did not run a full sync within {timeout:g}s")
        time.sleep(POLL)


def dns_server_pid(state_dir: Path) -> int | None:
    """The cluster DNS server's pid (the daemon's child, found by its command line)."""
    found = procs.find(state_dir.resolve(), procs.DNS)
    return found[0] if found else None


def nginx_pid(state_dir: Path) -> int | None:
    """The ingress controller's nginx master (the daemon's child), or None."""
    return procs.find_nginx(state_dir.resolve())


def restart_nginx(state_dir: Path) -> int | None:
    """Kill the ingress controller's nginx master (SIGKILL: it may be stopped or hung); the
    daemon starts it again. Returns the pid killed, None when none ran."""
    pid = nginx_pid(state_dir)
    if pid is not None:
        # Its workers too: an orphaned worker keeps ports 80 and 443, and the new master
        # could not bind them.
        pids = [pid, *_children(pid)]
        for p in pids:
            procs.signal_pid(p, signal.SIGKILL)
        procs.wait_dead(pids, 3.0)
    return pid


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def restart_dns_server(state_dir: Path) -> int | None:
    """Kill a DNS server that does not serve (SIGKILL: it may be stopped or hung); the
    daemon restarts it. Returns the pid killed, None when none ran."""
    pid = dns_server_pid(state_dir)
    if pid is not None and procs.serves(pid, state_dir.resolve(), procs.DNS):
        procs.signal_pid(pid, signal.SIGKILL)
        procs.wait_dead([pid], 3.0)
    return pid


def _stamp(path: Path) -> tuple[int, int] | None:
    """What changes when the daemon replaces a file (write_atomic: a new inode)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def _reloaded(status: dict[str, Any], before: int, digest: str | None) -> bool:
    if status.get("generation", 0) <= before:
        return False
    return bool(status.get("error")) or status.get("runtime") == digest


def stop(state_dir: Path, grace: float = STOP_GRACE) -> None:
    """Stop the watchdog (so that nothing restarts the daemon), then every daemon of this
    state directory; nothing running is fine."""
    root = state_dir.resolve()
    files = StateFiles(root)
    procs.terminate(procs.find(root, procs.WATCHDOG), grace)
    pids = set(procs.find(root))
    pid = _pid_from_file(files)
    if pid is not None and procs.serves(pid, root) and procs.alive(pid):
        pids.add(pid)
    procs.terminate(sorted(pids), grace)
    if pid is not None and pid not in pids and procs.exiting(pid):
        procs.wait_dead([pid], grace)  # killed a moment ago and not yet gone: let it finish
    # The daemon stops its DNS server; one left by a daemon that was killed is ended here.
    procs.terminate(procs.find(root, procs.DNS), grace)
    # Likewise the ingress controller's nginx (daemon.nginx_child), by pid file and /proc.
    if (nginx := procs.find_nginx(root)) is not None:
        procs.terminate([nginx], grace)
    procs.terminate(procs.find(root, procs.FLOWS), grace)
    for path in (
        files.pid,
        files.status,
        files.ready,
        files.watchdog_pid,
        files.dns_status,
        files.apply_socket,
    ):
        path.unlink(missing_ok=True)


def wait_ingress(state_dir: Path, timeout: float) -> None:
    """Return once the ingress controller's nginx serves (daemon.nginx_child: its master
    runs in the controller pod with a configuration nginx accepted); at once for a cluster
    without the controller. TimeoutError says what the controller reported."""
    from podnet.render.runtime import load
    from podnet.state.ingress_identity import is_ingress_pod

    files = StateFiles(state_dir.resolve())
    if not any(is_ingress_pod(p.namespace, p.name) for p in load(files.root).pods):
        return
    deadline = time.monotonic() + timeout
    ingress: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = _status(files) or {}
        ingress = status.get("ingress") or {}
        synced = (status.get("sync") or {}).get("revision") or 0
        pid = ingress.get("pid")
        if (
            pid is not None
            and ingress.get("digest")
            and ingress.get("revision", 0) >= synced  # the endpoints `up` waited for
            and procs.find_nginx(files.root) == pid
        ):
            return
        time.sleep(POLL)
    raise TimeoutError(f"the ingress controller's nginx does not serve: {ingress}")


def stop_cluster(cluster: str, grace: float = STOP_GRACE) -> None:
    """End every daemon and watchdog of this cluster name, whatever their state directory
    (another PODNET_STATE_DIR): kernel names carry the cluster's name, so such a daemon would
    re-create, at its next resync, what `down` removes. Watchdogs first."""
    found = procs.of_cluster(cluster)
    dogs = [p for p in found if procs.WATCHDOG in procs.cmdline(p)]
    procs.terminate(dogs, grace)
    procs.terminate([p for p in found if p not in dogs], grace)


def wait_ready(
    state_dir: Path,
    timeout: float,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Return once the daemon serves the current runtime.json and every pod has answered on
    its declared ports; progress(ready, total) is called whenever the count changes."""
    from podnet.render.runtime import load  # here: `label` has no use for it

    files = StateFiles(state_dir.resolve())
    digest = file_digest(files.runtime)
    pods = [p.key for p in load(files.root).pods]
    deadline = time.monotonic() + timeout
    last = -1
    ready: dict[str, Any] = {}
    current = False
    while True:
        status = _status(files)
        current = (
            status is not None and status.get("runtime") == digest and _is_live(status, files.root)
        )
        ready = _read_json(files.ready) or {} if current else {}
        count = sum(1 for p in pods if ready.get(p) is True)
        if progress and count != last:
            progress(count, len(pods))
        last = count
        if current and count == len(pods) and _dns_serves(files):
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


def _dns_serves(files: StateFiles) -> bool:
    """The cluster DNS server answers in every DNS pod dns.json lists (port 53 of those pods
    is its, not the stand-in's: the pods are not ready for `up` before it serves)."""
    wanted = _read_json(files.dns)
    if not wanted or not wanted.get("servers"):
        return True
    serving = set((_read_json(files.dns_status) or {}).get("serving", ()))
    return all(s["netns"] in serving for s in wanted["servers"])


def wait_endpoints(state_dir: Path, timeout: float) -> None:
    """Return once the stored EndpointSlices say of every pod what the daemon's kubelet
    readiness says (readiness.json): the endpoints controller has caught up, so a Service
    reached right after `up` has its ready endpoints."""
    from podnet.state.store import Store

    files = StateFiles(state_dir.resolve())
    deadline = time.monotonic() + timeout
    while True:
        published = _read_json(files.readiness)
        readiness = published or {}
        behind = []
        with Store.open(files.root) as store:
            for o in store.list("EndpointSlice"):
                for e in o.body.get("endpoints", ()):
                    ref = e.get("targetRef") or {}
                    key = f"{ref.get('namespace')}/{ref.get('name')}"
                    serving = (e.get("conditions") or {}).get("serving")
                    known = ref.get("kind") == "Pod" and serving is not None and key in readiness
                    if known and bool(serving) != bool(readiness[key]):
                        behind.append(key)
        if published is not None and not behind:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the endpoints of {len(behind)} pod(s) do not follow their readiness after "
                f"{timeout:g}s: {', '.join(sorted(set(behind))[:10])}; see {files.log}"
            )
        time.sleep(POLL)


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
    return _read_pid(files.pid)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _log_tail(files: StateFiles, lines: int = 5) -> str:
    try:
        tail = files.log.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return ""
    return "; log " + str(files.log) + ":\n  " + "\n  ".join(tail) if tail else ""
