"""nginx, the ingress controller's data plane, as the daemon's child (docs/ingress.md):
started inside the controller pod's network namespace, given each new configuration only
after `nginx -t` accepted it, reloaded gracefully, restarted when it dies, stopped with the
daemon.

- **Into the pod.** `python -m podnet.enter --netns POD ... -- nginx -c CONF -g "daemon
  off;"`: the one way into a namespace (podnet.enter, through datapath.netns), then exec, so
  the spawned pid is nginx's master and its listening sockets live in the pod.
- **Test, then swap.** The new text goes to `nginx.conf.next`; `nginx -t` parses it with
  every certificate it names; only then does it replace `nginx.conf` and the master get
  SIGHUP. A configuration nginx rejects is reported (status.json "error", the daemon's
  log) and the working one keeps serving.
- **Graceful reload.** SIGHUP: the master starts workers with the new configuration and
  tells the old ones to stop accepting and finish what they serve (up to
  worker_shutdown_timeout); the listening sockets are never closed.
- **Adopted across a daemon restart**, like the DNS server: the master's pid file, checked
  against /proc (its command line names our nginx.conf).
- Restarts back off as the DNS server's do (daemon.child, which both share).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from podnet.controller.ingress_controller import Desired
from podnet.daemon import procs
from podnet.daemon.child import SupervisedChild
from podnet.render.nginx_conf import DEFAULT_CERT, cert_path
from podnet.state.files import StateFiles, write_atomic

TEST_TIMEOUT = 30.0
RELOAD_TIMEOUT, RELOAD_POLL = 10.0, 0.005
NGINX = "nginx"
DEFAULT_CN = "podnet Ingress Controller Fake Certificate"  # ingress-nginx's is "Kubernetes ..."

log = logging.getLogger("podnet.daemon.nginx")


class NginxError(Exception):
    """nginx refused a configuration, or could not be started."""


def nginx_binary() -> str:
    found = shutil.which(NGINX) or shutil.which(NGINX, path="/usr/sbin:/sbin")
    if found is None:
        raise NginxError("nginx is not installed (Debian package nginx; `make debs`)")
    return found


def ensure_default_certificate(directory: Path) -> Path:
    """The cluster's default certificate (self-signed, for hosts without a usable Secret and
    the catch-all server), generated once with Debian's openssl and kept in the state
    directory: every nginx of this cluster answers with the same one."""
    path = directory / "certs" / f"{DEFAULT_CERT}.pem"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    key, crt = path.with_suffix(".key.tmp"), path.with_suffix(".crt.tmp")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
            "-subj", f"/O=podnet/CN={DEFAULT_CN}", "-keyout", str(key), "-out", str(crt),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    _write_private(path, key.read_bytes() + crt.read_bytes())
    key.unlink()
    crt.unlink()
    return path


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class NginxChild(SupervisedChild):
    what = "nginx"
    log = log

    def __init__(self, root: Path, cluster: str) -> None:
        super().__init__()
        self.root = root
        self.cluster = cluster
        self.dir = StateFiles(root).ingress
        self.conf = self.dir / "nginx.conf"
        self.netns: str | None = None
        self.pod = ""
        self.reloads = 0
        self.error: str | None = None
        self.problems: tuple[str, ...] = ()
        self.digest: str | None = None
        self.revision = 0
        self.timings: dict[str, float] = {}  # of the last update that ran `nginx -t`

    # --- configuration -------------------------------------------------------------------
    def prepare(self, desired: Desired) -> bool:
        """Blocking (a worker thread): write the certificates and the candidate text, and
        `nginx -t` it; on success it becomes nginx.conf. False (and `error`) when refused."""
        ensure_default_certificate(self.dir)
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.dir / "tmp" / kind).mkdir(parents=True, exist_ok=True)
        for name, (crt, key) in desired.certificates.items():
            path = Path(cert_path(str(self.dir), name))
            if not path.exists():
                _write_private(path, key.rstrip(b"\n") + b"\n" + crt)
        candidate = self.dir / "nginx.conf.next"
        write_atomic(candidate, desired.conf)
        started, cpu = time.monotonic(), _children_cpu()
        done = subprocess.run(
            [nginx_binary(), "-t", "-q", "-c", str(candidate), "-e", str(self.dir / "error.log")],
            capture_output=True,
            text=True,
            timeout=TEST_TIMEOUT,
        )
        self.timings = {
            **desired.timings,
            "test": round(time.monotonic() - started, 4),
            # the daemon's reaped children: nginx -t (the DNS server is not reaped meanwhile)
            "test_cpu": round(_children_cpu() - cpu, 4),
        }
        if done.returncode != 0:
            self.error = "nginx -t refused the new configuration (the previous one keeps "
            self.error += f"serving): {' '.join(done.stderr.split())[:2000]}"
            log.error("%s", self.error)
            return False
        os.replace(candidate, self.conf)
        self.error = None
        self._forget_unused_certificates(desired)
        return True

    def _forget_unused_certificates(self, desired: Desired) -> None:
        keep = {f"{DEFAULT_CERT}.pem", *(f"{n}.pem" for n in desired.certificates)}
        for path in (self.dir / "certs").glob("cert-*.pem"):
            if path.name not in keep:
                path.unlink(missing_ok=True)

    async def update(self, desired: Desired | None) -> None:
        """Bring nginx to `desired` (None: the cluster has no controller pod: stop it)."""
        loop = asyncio.get_running_loop()
        if desired is None:
            if self.pid is not None:
                self.stop()
                self.stopping = False
            return
        self.problems = desired.problems
        self.revision = desired.revision
        if desired.digest == self.digest and self.pid is not None:
            self.write_status()
            return
        try:
            ok = await loop.run_in_executor(None, self.prepare, desired)
        except (OSError, subprocess.SubprocessError, NginxError) as e:
            self.error = f"{type(e).__name__}: {e}"
            log.error("ingress: %s", self.error)
            ok = False
        if ok:
            self.digest = desired.digest
            if self.pid is not None and self.netns == desired.netns:
                self.reloads += 1
                took = await loop.run_in_executor(None, self.reload, self.pid)
                self.timings["reload"] = round(took, 4)
                log.info(
                    "nginx reloaded (%d Ingresses, revision %d) in %.3fs",
                    desired.served,
                    desired.revision,
                    took,
                )
            else:
                if self.pid is not None:  # the controller pod was made anew
                    self.stop()
                    self.stopping = False
                self.netns, self.pod = desired.netns, desired.pod
                self.start()
        self.write_status()

    def reload(self, master: int) -> float:
        """Blocking (a worker thread): SIGHUP the master and return once the reload took
        effect, the seconds it took. Until then the old workers accept connections and
        answer from the old configuration, so `up` and `apply`, which wait for the status
        written after this, would otherwise return while nginx still serves the previous
        revision (issue 10: the non-2xx answers right after `up`). Took effect: every old
        worker is shutting down or gone and a new one accepts. A master still starting (the
        `podnet.enter` in front of it, which SIGHUP would kill) is waited for first."""
        started = time.monotonic()
        deadline = started + RELOAD_TIMEOUT
        while procs.find_nginx(self.root) != master and time.monotonic() < deadline:
            if not procs.alive(master):
                return time.monotonic() - started  # _exited restarts it with nginx.conf
            time.sleep(RELOAD_POLL)
        old = set(procs.nginx_workers(master))
        procs.signal_pid(master, signal.SIGHUP)
        while time.monotonic() < deadline:
            workers = procs.nginx_workers(master)
            new = [pid for pid, accepting in workers.items() if accepting and pid not in old]
            if new and not any(workers.get(pid) for pid in old):
                return time.monotonic() - started
            if not procs.alive(master):
                break
            time.sleep(RELOAD_POLL)
        log.warning("nginx (pid %d) did not finish its reload within %gs", master, RELOAD_TIMEOUT)
        return time.monotonic() - started

    # --- the process ---------------------------------------------------------------------
    def _find(self) -> int | None:
        return procs.find_nginx(self.root)

    def start(self) -> None:
        if self.netns is None or not self.conf.exists():
            return
        found = self._find()
        if found:
            self.pid = found
            log.info("adopted nginx, pid %d", found)
            procs.signal_pid(found, signal.SIGHUP)  # it may hold an older nginx.conf
        else:
            argv = [
                sys.executable, "-m", "podnet.enter", "--netns", self.netns,
                "--resolv", "/etc/resolv.conf", "--hostname", self.pod, "--",
                nginx_binary(), "-c", str(self.conf), "-e", str(self.dir / "error.log"),
                "-g", "daemon off;",
            ]  # fmt: skip
            self.pid = os.posix_spawn(sys.executable, argv, os.environ)
            log.info("started nginx in %s, pid %d", self.netns, self.pid)
        self.started = time.monotonic()
        self._watch(self.pid)

    def _after_exit(self) -> None:
        self.write_status()

    def stop(self, grace: float = 3.0) -> None:
        self._cancel_restart()
        with contextlib.suppress(RuntimeError):  # no loop: called at the very end
            self._unwatch()
        pid = self.pid or self._find()
        if pid is not None:
            procs.terminate([pid], grace)
        self.pid = None
        self.digest = None

    # --- status --------------------------------------------------------------------------
    def status(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "netns": self.netns,
            "restarts": self.restarts,
            "reloads": self.reloads,
            "revision": self.revision,
            "digest": self.digest,
            "error": self.error,
            "problems": list(self.problems),
            "timings": self.timings,
        }

    def write_status(self) -> None:
        if self.dir.exists():
            write_atomic(self.dir / "status.json", json.dumps(self.status(), indent=1) + "\n")
