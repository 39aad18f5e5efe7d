"""The daemon and the in-cluster servers it supervises. A server registers a `Server`
here (the DNS server does, below; the ingress's nginx can do the same from its own module,
listed in SERVER_MODULES): doctor asks each whether it runs and serves, and `--fix`
restarts one that does not through the daemon's supervisor."""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from podnet.daemon import supervisor
from podnet.doctor.context import Context
from podnet.doctor.findings import DAEMON, SERVER, Finding


@dataclass(frozen=True)
class Server:
    name: str  # "dns"
    title: str  # "the cluster DNS server (kube-system/kube-dns)"
    check: Callable[[Context], list[str]]  # problems, in words; [] when it serves
    restart: Callable[[Context], None]  # make the daemon start it afresh
    command: Callable[[Context, str], str]  # what a user runs to fix that problem by hand


SERVERS: dict[str, Server] = {}
DNS_ATTEMPTS = 3
# Modules that register servers when imported (the ingress controller adds its own).
SERVER_MODULES: tuple[str, ...] = ("podnet.doctor.servers", "podnet.doctor.nginx_server")


def register(server: Server) -> None:
    SERVERS[server.name] = server


def registered() -> list[Server]:
    for module in SERVER_MODULES:
        importlib.import_module(module)
    return [SERVERS[n] for n in sorted(SERVERS)]


def check_daemon(ctx: Context) -> list[Finding]:
    if not ctx.wants_daemon:
        return []
    ctx.note("daemon", 1)
    out = []
    fix = f"podnet get pods --cluster {ctx.cluster}  (any command starts it again)"
    if supervisor.running_pid(ctx.sdir) is None:
        out.append(
            Finding(
                "daemon",
                "the cluster daemon",
                "is not running: no sync, no pod serves",
                DAEMON,
                fix,
            )
        )
        return out
    if supervisor.watchdog_pid(ctx.sdir) is None:
        out.append(
            Finding(
                "daemon",
                "the daemon's watchdog",
                "is not running: a crash would not be restarted",
                DAEMON,
                fix,
            )
        )
    sync = ctx.status().get("sync") or {}
    if sync and not sync.get("ok", True):
        out.append(
            Finding(
                "daemon",
                "the last sync",
                f"failed: {sync.get('error')}",
                "resync",
                ctx.fix_command(),
            )
        )
    return out


def check_servers(ctx: Context) -> list[Finding]:
    out = []
    if not ctx.wants_daemon:
        return []  # no daemon, no servers: a cluster brought up with --no-daemon
    daemon_up = supervisor.running_pid(ctx.sdir) is not None
    for server in registered():
        ctx.note(f"server {server.name}", 1)
        for problem in server.check(ctx):
            # A server whose daemon is gone comes back with the daemon: that is the fix.
            repair = SERVER if daemon_up else DAEMON
            out.append(
                Finding(
                    "server",
                    server.title,
                    problem,
                    repair,
                    server.command(ctx, problem),
                    server.name,
                )
            )
    return out


# --- the cluster DNS server (docs/dns.md) -------------------------------------------------


def _dns_check(ctx: Context) -> list[str]:
    """It runs (the daemon's child), and it answers a query sent to the cluster DNS address
    from a node's namespace (through kube-proxy's DNAT, as pods reach it)."""
    from podnet.probing.single import send_one

    runtime = ctx.runtime
    if runtime is None or not runtime.nodes or not _dns_pods(ctx):
        return []  # a cluster without the DNS add-on (`up --cluster-dns off`)
    problems = []
    pid = supervisor.dns_server_pid(ctx.sdir)
    if pid is None:
        problems.append("is not running")
    for _ in range(DNS_ATTEMPTS):  # a datagram may be lost, a loaded server late
        sport = random.randint(40000, 60999)
        seen = send_one(runtime.nodes[0].netns, runtime.dns_ip, 53, "UDP", sport, 1.0, dns=True)
        if seen.outcome == "reply":
            break
    if seen.outcome != "reply":
        problems.append(
            f"does not answer at {runtime.dns_ip}:53/UDP ({seen.outcome} in {DNS_ATTEMPTS} attempts: {seen.detail})"
        )
    return problems


def _dns_pods(ctx: Context) -> bool:
    """Whether the store's cluster has pods that serve cluster DNS (what the reconciler
    writes into dns.json, built here from the desired state, not read from the file)."""
    from podnet.render import dns_file

    d = ctx.desired
    return bool(dns_file.build(d.cluster, d.placement, ctx.cluster, d.net, d.revision).servers)


def _dns_restart(ctx: Context) -> None:
    supervisor.restart_dns_server(ctx.sdir)


def _dns_command(ctx: Context, problem: str) -> str:
    if "rejected" in problem:  # ICMP: a route or a rule is missing, not the server
        return ctx.fix_command()
    pid = supervisor.dns_server_pid(ctx.sdir)
    return f"kill -9 {pid}  (the daemon starts it again)" if pid else ctx.fix_command()


register(
    Server(
        "dns",
        "the cluster DNS server (kube-system/kube-dns)",
        _dns_check,
        _dns_restart,
        _dns_command,
    )
)
