"""The check list, and `--fix`: each repair once, in an order where one does not undo the
next (the daemon first: it runs the sync; the sync re-creates namespaces, so the listeners
and servers come after it)."""

from __future__ import annotations

import time
from collections.abc import Callable

from podnet.doctor.bound_ports import check_listeners
from podnet.doctor.context import Context
from podnet.doctor.findings import DAEMON, RELOAD, RESYNC, SERVER, Finding
from podnet.doctor.kernel import check_namespaces, check_netlink, check_nft
from podnet.doctor.servers import check_daemon, check_servers, registered

Check = Callable[[Context], list[Finding]]
CHECKS: list[tuple[str, Check]] = [
    ("namespaces", check_namespaces),
    ("links, addresses, routes, neighbours, VXLAN FDB", check_netlink),
    ("nft rulesets", check_nft),
    ("daemon", check_daemon),
    ("in-cluster servers", check_servers),
    ("listeners", check_listeners),
]
SERVER_WAIT = 10.0  # seconds a restarted server may take to answer again


def run_checks(ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    for _, check in CHECKS:
        out += check(ctx)
    return out


def repair(ctx: Context, findings: list[Finding]) -> list[str]:
    """Apply each repair the findings need; what was done, in words."""
    from podnet.daemon import supervisor

    needs = {f.repair for f in findings}
    done: list[str] = []
    daemon = ctx.wants_daemon
    if DAEMON in needs:
        said = supervisor.ensure_running(ctx.sdir, ctx.cluster)
        done.append(said or "the daemon runs")
        supervisor.wait_ready(ctx.sdir, 30.0)
        daemon = True
    if RESYNC in needs:
        if daemon:
            status = supervisor.request_full_sync(ctx.sdir, 60.0)
        else:  # a cluster without a daemon (`up --no-daemon`): the CLI's reconciler
            from podnet.controller.reconciler import Reconciler

            result = Reconciler(ctx.sdir, ctx.cluster).sync()
            status = {"ok": result.ok, "error": result.error}
        done.append(
            "full sync: " + ("ok" if status.get("ok") else f"FAILED: {status.get('error')}")
        )
    servers = {f.detail for f in findings if f.repair == SERVER}
    for server in registered():
        # Only what still fails after the sync: a server unreachable through a missing
        # route or rule answers again once the sync repaired those.
        if server.name in servers and server.check(Context(ctx.cluster, ctx.sdir)):
            server.restart(ctx)
            deadline = time.monotonic() + SERVER_WAIT
            while server.check(Context(ctx.cluster, ctx.sdir)) and time.monotonic() < deadline:
                time.sleep(0.2)
            done.append(f"{server.title} restarted")
    if RELOAD in needs and daemon:
        supervisor.reload(ctx.sdir)
        done.append("the stand-in reloaded its listeners")
    return done
