"""`podnet up`: bring a cluster's network up for real.

load -> place (IPAM) -> render (everything validated; only now touch anything) -> store ->
the reconciler's first sync (the same sync `apply` triggers: node and pod namespaces, each
node's nft ruleset before any link exists, links, routes, runtime.json) -> daemon -> wait
until every pod answers -> summary. A failure while building rolls back: nothing is left
half-built.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podnet.cli.common import add_cluster_cidr_arg, add_manifest_args, network_config
from podnet.cli.live import DEFAULT_CLUSTER, add_cluster_arg, fail, preflight
from podnet.cli.output import print_error, print_warnings
from podnet.state.network import MODES

if TYPE_CHECKING:  # the rest is imported by run(): `--help` pays for none of it
    from rich.progress import Progress

    from podnet.model.cluster import Cluster
    from podnet.state.placement import Placement
    from podnet.state.snapshot import ParsedCache

PROGRESS_MIN_PODS = 50  # below this, up is quick enough to need no progress bar
READY_TIMEOUT = 120.0


CLUSTER_DNS_ENV = "PODNET_CLUSTER_DNS"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "up",
        help="bring a cluster's network up: nodes and pods as network namespaces",
        description="Create a fabric, one namespace per node and per pod, an internet "
        "namespace for outside clients, and the routes between them (host-gw or VXLAN); "
        "start the cluster's daemon and return once every pod answers. Needs root.",
    )
    add_manifest_args(p)
    add_cluster_arg(p)
    p.add_argument(
        "--nodes",
        type=int,
        default=3,
        metavar="N",
        help="nodes node-1..N when the manifests declare none (default 3)",
    )
    p.add_argument(
        "--mode", choices=MODES, default="host-gw", help="between nodes (default host-gw)"
    )
    p.add_argument("--replace", action="store_true", help="replace a cluster of that name")
    p.add_argument(
        "--timeout",
        type=float,
        default=READY_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for every pod to answer (default {READY_TIMEOUT:g})",
    )
    add_cluster_cidr_arg(p)
    p.add_argument(
        "--cluster-dns",
        choices=("on", "off"),
        default=os.environ.get(CLUSTER_DNS_ENV) or "on",
        help="add the kube-dns Service and a DNS pod where the input has none, as a kubeadm "
        f"cluster has them (default on; ${CLUSTER_DNS_ENV} sets the default); off builds "
        "exactly the manifests given",
    )
    p.add_argument(
        "--ingress",
        choices=("auto", "on", "off"),
        default="auto",
        help="add the ingress controller (namespace ingress-nginx: nginx behind a "
        "LoadBalancer Service, IngressClass nginx): auto (default) when the input has an "
        "Ingress or IngressClass; off also keeps a later apply from adding it",
    )
    p.add_argument(
        "--no-daemon",
        action="store_true",
        help="build the datapath only: no daemon, pods do not answer (benchmarks, debugging)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from podnet.cli.down import take_down
    from podnet.datapath import netns
    from podnet.model.cluster import load_cluster
    from podnet.render import kernel_names
    from podnet.render.topology import render
    from podnet.state import ingress_addon, ingress_checks
    from podnet.state.addons import with_cluster_dns
    from podnet.state.changes import store_cluster
    from podnet.state.placement import place
    from podnet.state.service_alloc import with_services
    from podnet.state.store import Store, state_dir

    if (status := preflight("up", args.cluster)) is not None:
        return status
    if args.nodes < 1:
        return fail(f"--nodes must be at least 1, not {args.nodes}")
    started = time.monotonic()
    name, mode, net = args.cluster, args.mode, network_config(args)
    sdir = state_dir(name)
    leftovers = netns.listing(kernel_names.netns_prefix(name))
    if (Store.exists(sdir) or leftovers) and not args.replace:
        return fail(
            f"cluster {name} already exists ({sdir}, {len(leftovers)} namespaces); "
            f"use --replace, or `podnet down --cluster {name}` first"
        )
    # Everything that can be wrong with the input is found here, before any change.
    cluster = load_cluster(args.files, node_count=args.nodes)
    if args.cluster_dns == "on":
        cluster = with_cluster_dns(cluster, net)
    if args.ingress == "on" or (args.ingress == "auto" and ingress_addon.wanted(cluster)):
        cluster = ingress_addon.with_ingress_controller(cluster)
    cluster = with_services(cluster, net)
    ingress_checks.check(cluster)
    cluster = ingress_checks.with_ingress_status(cluster)
    placement = place(cluster, net, strict=True)
    print_warnings([*cluster.warnings, *placement.warnings])
    render(cluster, placement, name, mode, net)
    if args.replace:
        take_down(name)
    try:
        with Store.open(sdir) as store:
            parsed = store_cluster(store, cluster, placement, name, mode, net, not args.no_daemon)
        _first_sync(sdir, name, len(cluster.pods), parsed)
    except Exception as e:
        take_down(name)  # roll back: nothing half-built
        print_error(f"building cluster {name} failed, rolled back: {type(e).__name__}: {e}")
        return 1
    except BaseException:  # KeyboardInterrupt: roll back too, then let it end the program
        take_down(name)
        raise
    with Store.open(sdir) as store:
        store.set_meta("phase", "Running")
        store.set_meta("ingress_addon", args.ingress)
    status = 0 if args.no_daemon else _start_daemon(sdir, name, len(cluster.pods), args.timeout)
    _summary(name, mode, cluster, placement, time.monotonic() - started, args.no_daemon)
    return status


def _first_sync(sdir: Path, name: str, pods: int, parsed: ParsedCache) -> None:
    """The reconciler's sync, as after `apply`: it is full (nothing was synced before). It
    reads the store like every sync; `parsed` spares it validating again what `up` just
    validated."""
    from podnet.controller.reconciler import Reconciler

    with _progress(pods) as bar:
        result = Reconciler(sdir, name, parsed=parsed).sync(progress=bar("datapath"))
    if not result.ok:
        raise RuntimeError(result.error)


class _Bar:
    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress

    def __call__(self, label: str) -> Callable[[int, int], None] | None:
        if self.progress is None:
            return None
        task = self.progress.add_task(label, total=None)
        progress = self.progress

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return update

    def __enter__(self) -> _Bar:
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress:
            self.progress.stop()


def _progress(pods: int) -> _Bar:
    if pods < PROGRESS_MIN_PODS:
        return _Bar(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return _Bar(
        Progress(
            TextColumn("{task.description:>9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
    )


def _start_daemon(sdir: Path, name: str, pods: int, timeout: float) -> int:
    from podnet.daemon import supervisor

    try:
        supervisor.start(sdir, name)
        with _progress(pods) as bar:
            supervisor.wait_ready(sdir, timeout, bar("ready"))
        supervisor.wait_endpoints(sdir, timeout)
        supervisor.wait_ingress(sdir, timeout)
    except Exception as e:  # DaemonError, TimeoutError: say so, keep the cluster to inspect
        print_error(f"{e}")
        print_error(f"the network is up; inspect it, or `podnet down --cluster {name}`")
        return 1
    for warning in supervisor.warnings(sdir):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _summary(
    name: str, mode: str, cluster: Cluster, placement: Placement, took: float, no_daemon: bool
) -> None:
    host = sum(1 for p in cluster.pods if p.spec.host_network)
    print(
        f"cluster {name} is up in {took:.1f}s: {len(cluster.nodes)} nodes, "
        f"{len(cluster.pods)} pods ({host} hostNetwork), mode {mode}"
        + (" (datapath only, no daemon)" if no_daemon else "")
    )
    for node in cluster.nodes:
        n = node.metadata.name
        count = sum(1 for v in placement.pod_node.values() if v == n)
        print(
            f"  {n:<16} {placement.node_ip[n]:<15} podCIDR {placement.node_cidr[n]}  {count} pods"
        )
    flag = "" if name == DEFAULT_CLUSTER else f" --cluster {name}"
    print(f"  pods:      podnet get pods -A -o wide{flag}")
    print(f"  probe:     podnet probe{flag}")
    print(f"  a shell:   podnet exec NS/POD{flag} -- sh")
    print(f"  tear down: podnet down{flag}")
