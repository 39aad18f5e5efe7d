"""The workload stand-in's sockets: every declared TCP and UDP port of every pod that does
not use the host's network has a socket bound to it inside the pod's namespace (read from
/proc/thread-self/net inside the namespace: the tables of the namespace the reading
thread stands in)."""

from __future__ import annotations

from pathlib import Path

from podnet.datapath import netns
from podnet.doctor.context import Context
from podnet.doctor.findings import RELOAD, Finding

TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"


def _bound() -> dict[str, set[int]]:
    """{"TCP": listening ports, "UDP": bound ports} of the calling thread's namespace."""
    out: dict[str, set[int]] = {"TCP": set(), "UDP": set()}
    for proto, files, state in (
        ("TCP", ("tcp", "tcp6"), TCP_LISTEN),
        ("UDP", ("udp", "udp6"), UDP_UNCONNECTED),
    ):
        for f in files:
            try:
                lines = Path(f"/proc/thread-self/net/{f}").read_text().splitlines()[1:]
            except FileNotFoundError:
                continue
            for line in lines:
                cols = line.split()
                if len(cols) > 3 and cols[3] == state:
                    out[proto].add(int(cols[1].rsplit(":", 1)[1], 16))
    return out


def check_listeners(ctx: Context) -> list[Finding]:
    runtime = ctx.runtime
    if not ctx.wants_daemon:
        return []  # nothing serves a cluster without its daemon
    if runtime is None:
        return [
            Finding(
                "listeners",
                "runtime.json",
                "cannot be read: nothing is known to serve",
                "resync",
                ctx.fix_command(),
            )
        ]
    pods = [p for p in runtime.pods if not p.host_network and p.netns in ctx.existing]
    ctx.note("pods' listeners", len(pods))
    out = []
    fix = f"kill -HUP $(cat {ctx.files.pid})  (the stand-in reopens its sockets)"
    with netns.Worker() as worker:
        for p in pods:
            wanted = {
                (port.port, port.protocol)
                for c in p.containers
                for port in c.ports
                if port.protocol in ("TCP", "UDP")
            }
            if not wanted:
                continue
            try:
                bound = worker.call(p.netns, _bound)
            except OSError:
                continue  # the namespace went meanwhile: check_namespaces says so
            missing = sorted(f"{n}/{proto}" for n, proto in wanted if n not in bound[proto])
            if missing:
                out.append(
                    Finding(
                        "listeners",
                        f"pod {p.key}",
                        f"nothing listens on {', '.join(missing)}",
                        RELOAD,
                        fix,
                    )
                )
    return out
