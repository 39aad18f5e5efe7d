"""The ingress controller's nginx (docs/ingress.md) in doctor's server list: where the
cluster has the controller pod, its master runs (the daemon's child), the daemon reports no
configuration nginx refused, and it answers an HTTP request on port 80 from the pod's node
(a node's own traffic meets no policy)."""

from __future__ import annotations

import socket

from podnet.daemon import supervisor
from podnet.datapath.netns import Namespaces
from podnet.doctor.context import Context
from podnet.doctor.servers import Server, register
from podnet.state.ingress_identity import HTTP_PORT, is_ingress_pod

TIMEOUT = 2.0
REQUEST = b"GET /healthz HTTP/1.0\r\nHost: doctor\r\n\r\n"


def _pod(ctx: Context) -> tuple[str, str] | None:
    """(node namespace, pod address) of the controller pod, or None."""
    runtime = ctx.runtime
    for p in runtime.pods if runtime else ():
        if is_ingress_pod(p.namespace, p.name):
            node = runtime.node(p.node) if runtime else None
            return (node.netns, p.ip) if node else None
    return None


def _http_answer(netns: str, ip: str) -> str | None:
    """None when an HTTP status line came back, else what happened."""
    ns = Namespaces()
    try:
        sock = ns.socket(netns, socket.SOCK_STREAM)
    finally:
        ns.close()
    try:
        sock.setblocking(True)
        sock.settimeout(TIMEOUT)
        sock.connect((ip, HTTP_PORT))
        sock.sendall(REQUEST)
        data = sock.recv(64)
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    finally:
        sock.close()
    return None if data.startswith(b"HTTP/") else f"no HTTP answer ({data[:20]!r})"


def _check(ctx: Context) -> list[str]:
    where = _pod(ctx)
    if where is None or not ctx.wants_daemon:
        return []
    problems = []
    if supervisor.nginx_pid(ctx.sdir) is None:
        problems.append("is not running")
    error = (ctx.status().get("ingress") or {}).get("error")
    if error:
        problems.append(f"refused its configuration: {error}")
    said = _http_answer(*where)
    if said is not None:
        problems.append(f"does not answer HTTP at {where[1]}:{HTTP_PORT} ({said})")
    return problems


def _restart(ctx: Context) -> None:
    supervisor.restart_nginx(ctx.sdir)


def _command(ctx: Context, problem: str) -> str:
    pid = supervisor.nginx_pid(ctx.sdir)
    if "refused its configuration" in problem:
        return "podnet get ingress -A (then correct the Ingress it names)"
    return f"kill -9 {pid}  (the daemon starts it again)" if pid else ctx.fix_command()


register(
    Server(
        "ingress-nginx",
        "the ingress controller's nginx (ingress-nginx)",
        _check,
        _restart,
        _command,
    )
)
