"""Where a cluster's state lives, and the files the daemon reads and writes there."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from podnet.state.store import STATE_ROOT_ENV as STATE_DIR_ENV
from podnet.state.store import state_dir

__all__ = [
    "STATE_DIR_ENV",
    "StateFiles",
    "file_digest",
    "state_dir",
    "write_atomic",
    "write_if_changed",
]


def file_digest(path: Path) -> str:
    """How daemon.json names the runtime.json the daemon serves (here rather than in
    render.runtime, so that `podnet get` compares them without importing that schema)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class StateFiles:
    """The files of one state directory that the daemon side owns or reads."""

    root: Path

    @property
    def runtime(self) -> Path:  # written by the reconciler after a sync, read by the daemon
        return self.root / "runtime.json"

    @property
    def pid(self) -> Path:
        return self.root / "daemon.pid"

    @property
    def watchdog_pid(self) -> Path:
        return self.root / "watchdog.pid"

    @property
    def restarts(self) -> Path:  # {"count", "last", "reason"}: the watchdog's restarts
        return self.root / "restarts.json"

    @property
    def log(self) -> Path:
        return self.root / "daemon.log"

    @property
    def ready(self) -> Path:  # {"ns/pod": bool}
        return self.root / "ready.json"

    @property
    def readiness(self) -> Path:  # {"ns/pod": bool}: the kubelet's Ready (probes included)
        return self.root / "readiness.json"

    @property
    def stopped(self) -> Path:  # {"ns/pod": ["8080/TCP", ...]}: ports `podnet serve` stopped
        return self.root / "stopped.json"

    @property
    def apply_socket(self) -> Path:  # `podnet apply`'s way to the daemon (owner only)
        return self.root / "apply.sock"

    @property
    def status(self) -> Path:  # what the daemon has loaded: runtime digest, warnings
        return self.root / "daemon.json"

    @property
    def dns(self) -> Path:  # the DNS records and the pods serving them (render.dns_file)
        return self.root / "dns.json"

    @property
    def dns_pid(self) -> Path:  # the DNS server's pid, held under flock while it runs
        return self.root / "dns-server.pid"

    @property
    def dns_status(self) -> Path:  # what the DNS server has loaded: serial, sockets
        return self.root / "dns-server.json"

    @property
    def ingress(self) -> Path:  # nginx.conf, certs/, status.json of the ingress controller
        return self.root / "ingress"

    @property
    def flows(self) -> Path:  # the flow log's recent records, JSON lines (flowlog.history)
        return self.root / "flows.jsonl"

    @property
    def flows_pid(self) -> Path:  # the flow collector's pid, held under flock while it runs
        return self.root / "flows.pid"

    @property
    def exec_dir(self) -> Path:  # resolv.conf files that `podnet exec` bind-mounts
        return self.root / "exec"


def write_if_changed(path: Path, text: str) -> Path:
    """`path` holding `text`: rewritten (atomically) only when it differs, its folder made."""
    try:
        if path.read_text() == text:
            return path
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
    return path


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old or the new content, never half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
