"""`python -m podnet.daemon --state-dir DIR --cluster NAME`: the cluster's daemon, in the
foreground (supervisor.start detaches it and sends its output to DIR/daemon.log).

The composition root: it holds the pid lock, wires the controller (store -> kernel, on
SIGUSR1 and every resync period) and the workload stand-in (runtime.json -> sockets, on
SIGHUP and after a sync that changed what runs), writes daemon.json from both, and stops
on SIGTERM. Everything else lives in those packages.
"""

from __future__ import annotations

import signal

# Until the event loop installs its handlers, a SIGHUP (a reload request that raced our
# start) or a SIGUSR1 (a sync request) must not kill us with the default action.
signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.signal(signal.SIGUSR1, signal.SIG_IGN)
signal.signal(signal.SIGUSR2, signal.SIG_IGN)  # a full sync request (doctor --fix)

from podnet import startup  # noqa: E402

startup.lean_pydantic()  # before the first model is built

import argparse  # noqa: E402
import asyncio  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

from podnet.daemon.dns_child import DnsChild  # noqa: E402
from podnet.daemon.flows_child import FlowsChild, enabled  # noqa: E402
from podnet.daemon.profiling import profiled  # noqa: E402
from podnet.daemon.supervisor import FULL_SYNC_SIGNAL, SYNC_SIGNAL  # noqa: E402
from podnet.state import pid_lock  # noqa: E402
from podnet.state.files import StateFiles, write_atomic  # noqa: E402
from podnet.workload.standin import StandIn  # noqa: E402

if TYPE_CHECKING:
    from podnet.controller.reconciler import SyncResult
    from podnet.controller.syncer import Syncer
    from podnet.daemon.apply_server import ApplyServer
    from podnet.daemon.nginx_child import NginxChild

log = logging.getLogger("podnet.daemon")
RETRY = 1.0  # seconds before an ingress update that could not read the store is tried again


async def serve(root: Path, cluster: str) -> int:
    files = StateFiles(root)
    lock = pid_lock.claim(files.pid)
    if lock is None:
        log.error("another daemon (pid %s) serves %s; exiting", pid_lock.holder(files.pid), root)
        return 1
    loop = asyncio.get_running_loop()
    stop, reload, sync = asyncio.Event(), asyncio.Event(), asyncio.Event()
    syncer: Syncer | None = None
    nginx: NginxChild | None = None
    applies: ApplyServer | None = None

    def write_status() -> None:
        status = {
            "pid": os.getpid(),
            "cluster": cluster,
            **standin.status(),
            "dns": dns.status(),
            "ingress": nginx.status() if nginx else None,
            "flows": flows.status() if flows else None,
            "sync": syncer.status if syncer else None,
        }
        write_atomic(files.status, json.dumps(status, indent=1) + "\n")
        if applies is not None:  # `apply` requests answered once their revision is synced
            applies.synced(syncer.status if syncer else None)

    # A pod's readiness (the kubelet's word) changing makes the endpoints controller sync.
    standin = StandIn(files, write_status, on_readiness=sync.set)
    dns = DnsChild(root, cluster)
    flows = FlowsChild(root, cluster) if enabled() else None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload.set)
    # Installed now, not once the controller is up: a request that comes meanwhile waits.
    # `since` holds when the oldest request not yet taken up by a sync arrived: the sync
    # that serves it reports how long the request waited to be in force.
    since: list[float] = []

    def request_sync() -> None:
        if not since:
            since.append(time.monotonic())
        sync.set()

    loop.add_signal_handler(SYNC_SIGNAL, request_sync)
    log.info("daemon of cluster %s, pid %d, state %s", cluster, os.getpid(), root)
    await standin.start()
    dns.start()  # beside the stand-in, which leaves port 53 of the DNS pods to it
    if flows:
        flows.start()
    # The pods answer first (a restarted daemon serves again at once); the controller, whose
    # modules (the policy engine, numpy) take a second to import, comes up behind them,
    # imported on a worker thread while the loop serves.
    await loop.run_in_executor(None, importlib.import_module, "podnet.controller.syncer")
    from podnet.controller.reconciler import Reconciler
    from podnet.controller.syncer import Syncer, resync_period

    def ready(namespace: str, pod: str) -> bool:
        # `readiness` is replaced whole on each change, never mutated: safe to read from the
        # sync's worker thread.
        return standin.readiness.get(f"{namespace}/{pod}", False)

    reconciler = Reconciler(root, cluster, watch_drift=True, readiness=ready)
    reconciler.sync = profiled("sync", reconciler.sync)  # type: ignore[method-assign]
    # The ingress controller (docs/ingress.md): after every sync (which is when Services,
    # EndpointSlices, Ingresses and Secrets reach the kernel's side), the desired nginx
    # configuration; nginx_child tests and applies it. Updates run one at a time.
    from podnet.controller.ingress_controller import IngressController
    from podnet.daemon.nginx_child import NginxChild

    ingress = IngressController(root, cluster, reconciler.parsed)
    nginx = NginxChild(root, cluster)
    ingress.desired = profiled("ingress", ingress.desired)  # type: ignore[method-assign]
    nginx.prepare = profiled("nginx_test", nginx.prepare)  # type: ignore[method-assign]
    ingress_lock = asyncio.Lock()

    async def update_ingress() -> None:
        async with ingress_lock:
            try:
                desired = await loop.run_in_executor(None, ingress.desired)
            except Exception as e:  # a store that cannot be read now: try again soon (the
                # next sync may be a resync period away, and `up` waits for nginx)
                log.error("ingress: %s: %s; trying again in %gs", type(e).__name__, e, RETRY)
                loop.call_later(RETRY, lambda: asyncio.ensure_future(update_ingress()))
                return
            await nginx.update(desired)

    async def after_sync(result: SyncResult) -> None:
        if result.dns_servers_changed:  # port 53 changes hands: the DNS server lets go first
            await dns.reload()
            await standin.load()
        if result.dns_changed or result.added or result.removed:
            await dns.reload(wait=bool(result.added or result.removed))  # records: no order
        if result.ok:
            await update_ingress()

    syncer = Syncer(reconciler, standin.load, resync_period(), sync, since, after_sync, freeze=True)
    loop.add_signal_handler(FULL_SYNC_SIGNAL, syncer.request_full)
    tasks = [
        asyncio.ensure_future(_reloads(reload, standin, files)),
        syncer.start(loop, write_status),
        asyncio.ensure_future(update_ingress()),
    ]
    # `podnet apply` hands its files to us (docs/policy-datapath.md): validation with the models
    # warm, imported here behind the pods, like the controller.
    await loop.run_in_executor(None, importlib.import_module, "podnet.controller.apply_requests")
    from podnet.daemon.apply_server import ApplyServer

    applies = ApplyServer(root, request_sync)
    await applies.start()
    await stop.wait()
    log.info("stopping")
    applies.close()
    for task in tasks:
        task.cancel()
    dns.stop()
    nginx.stop()
    if flows:
        flows.stop()
    standin.close()
    files.status.unlink(missing_ok=True)
    pid_lock.release(files.pid, lock)
    return 0


async def _reloads(reload: asyncio.Event, standin: StandIn, files: StateFiles) -> None:
    while True:
        await reload.wait()
        reload.clear()  # HUPs arriving during a load coalesce into one more load
        log.info("SIGHUP: reloading %s", files.runtime)
        await standin.load()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m podnet.daemon", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--cluster", required=True)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every socket")
    args = parser.parse_args(argv)
    root = args.state_dir.resolve()
    os.chdir("/")  # a daemon holds no directory of whoever started it
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return asyncio.run(serve(root, args.cluster))


if __name__ == "__main__":
    sys.exit(main())
