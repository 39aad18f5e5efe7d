"""`podnet up` and `podnet down`: bring a cluster's network up for real, and remove it.

up: load -> place (IPAM) -> render -> (everything validated; only now touch anything) ->
store -> node namespaces + their nft policy rulesets -> datapath (links, pods) ->
runtime.json -> daemon -> wait until every pod answers -> summary.

No window at start-up: each node's NetworkPolicy ruleset is committed into the node's
namespace right after that namespace is created and before any link exists in it; a pod's
veth is created by its node afterwards (datapath.apply), so the first packet a pod can send or
receive already meets its rules (docs/policy-datapath.md).
A failure while building rolls back: nothing is left half-built.

down: stop the daemon, kill what still runs inside the cluster's namespaces, remove every
namespace whose name carries the cluster (found by prefix, so it works after a crash), then
the state directory. Idempotent.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from podnet.cli.common import add_manifest_args
from podnet.cli.output import print_error, print_warnings
from podnet.daemon.paths import StateFiles, write_atomic
from podnet.model.cluster import Cluster, load_cluster
from podnet.render import names
from podnet.render.runtime import runtime_doc
from podnet.render.topology import MODES, render
from podnet.state.kinds import STORED_KINDS
from podnet.state.network import NetworkConfig
from podnet.state.placement import Placement, place, pod_key
from podnet.state.store import Store, state_dir

DEFAULT_CLUSTER = "podnet"
PROGRESS_MIN_PODS = 50  # below this, up is quick enough to need no progress bar
READY_TIMEOUT = 120.0


def register(sub: Any) -> None:
    up = sub.add_parser(
        "up",
        help="bring a cluster's network up: nodes and pods as network namespaces",
        description="Create a fabric, one namespace per node and per pod, an internet "
        "namespace for outside clients, and the routes between them (host-gw or VXLAN); "
        "start the cluster's daemon and return once every pod answers. Needs root.",
    )
    add_manifest_args(up)
    add_cluster_arg(up)
    up.add_argument(
        "--nodes",
        type=int,
        default=3,
        metavar="N",
        help="nodes node-1..N when the manifests declare none (default 3)",
    )
    up.add_argument(
        "--mode", choices=MODES, default="host-gw", help="between nodes (default host-gw)"
    )
    up.add_argument("--replace", action="store_true", help="replace a cluster of that name")
    up.add_argument(
        "--timeout",
        type=float,
        default=READY_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for every pod to answer (default {READY_TIMEOUT:g})",
    )
    up.add_argument(
        "--no-daemon",
        action="store_true",
        help="build the datapath only: no daemon, pods do not answer (benchmarks, debugging)",
    )
    up.set_defaults(func=run_up)
    down = sub.add_parser(
        "down",
        help="remove a cluster: namespaces, links, processes, state",
        description="Remove everything `up` made for the cluster; safe to repeat, and works "
        "after a crash (leftovers are found by the cluster's name). Needs root.",
    )
    add_cluster_arg(down)
    down.set_defaults(func=run_down)


def add_cluster_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cluster",
        default=DEFAULT_CLUSTER,
        metavar="NAME",
        help=f"cluster name (default {DEFAULT_CLUSTER})",
    )


def _fail(message: str) -> int:
    print_error(message)
    return 2


def _preflight(command: str, cluster: str) -> int | None:
    if os.geteuid() != 0:
        return _fail(f"podnet {command} needs root: it creates network namespaces (try sudo)")
    reason = names.check_cluster_name(cluster)
    return _fail(reason) if reason else None


def run_up(args: argparse.Namespace) -> int:
    if (status := _preflight("up", args.cluster)) is not None:
        return status
    if args.nodes < 1:
        return _fail(f"--nodes must be at least 1, not {args.nodes}")
    started = time.monotonic()
    name, mode, net = args.cluster, args.mode, NetworkConfig()
    sdir = state_dir(name)
    leftovers = _datapath().netns.listing(names.netns_prefix(name))
    if (Store.exists(sdir) or leftovers) and not args.replace:
        return _fail(
            f"cluster {name} already exists ({sdir}, {len(leftovers)} namespaces); "
            f"use --replace, or `podnet down --cluster {name}` first"
        )
    # Everything that can be wrong with the input is found here, before any change.
    cluster = load_cluster(args.files, node_count=args.nodes)
    placement = place(cluster, net, strict=True)
    print_warnings([*cluster.warnings, *placement.warnings])
    plan = render(cluster, placement, name, mode, net)
    runtime = runtime_doc(cluster, placement, name, mode, net)
    if args.replace:
        _down(name)
    try:
        _record(sdir, cluster, placement, name, mode, net)
        _policies_first(name, cluster, placement)
        with _progress(len(cluster.pods)) as bar:
            _datapath().apply.apply(plan, bar("datapath"))
        write_atomic(StateFiles(sdir).runtime, json.dumps(runtime, indent=2) + "\n")
    except Exception as e:
        _down(name)  # roll back: nothing half-built
        print_error(f"building cluster {name} failed, rolled back: {type(e).__name__}: {e}")
        return 1
    except BaseException:  # KeyboardInterrupt: roll back too, then let it end the program
        _down(name)
        raise
    with Store.open(sdir) as store:
        store.set_meta("phase", "Running")
        store.set_meta("synced_revision", store.revision())
    status = 0 if args.no_daemon else _start_daemon(sdir, name, len(cluster.pods), args.timeout)
    _summary(name, mode, cluster, placement, time.monotonic() - started, args.no_daemon)
    return status


def _datapath() -> Any:
    """Imported late: `get` and `--help` need no netlink library."""
    import podnet.datapath.apply
    import podnet.datapath.netns
    import podnet.datapath.teardown

    return podnet.datapath


def _policies_first(name: str, cluster: Cluster, placement: Placement) -> None:
    """Create the node namespaces (empty: no link yet) and commit their nft rulesets, before
    datapath.apply creates any pod veth: every pod is isolated from its first packet."""
    from podnet.datapath import netns, nft
    from podnet.policy.engine import Engine

    node_ns = {n.metadata.name: names.node_netns(name, n.metadata.name) for n in cluster.nodes}
    with netns.Worker() as worker:
        for ns in node_ns.values():
            worker.create(ns)
    report = nft.sync_policies(name, Engine(cluster, placement), node_ns)
    if not report.ok:
        raise RuntimeError("; ".join(report.errors))


def _record(
    sdir: Path, cluster: Cluster, placement: Placement, name: str, mode: str, net: NetworkConfig
) -> None:
    """The store: objects as the API would return them, allocations, cluster meta."""
    with Store.open(sdir) as store, store.transaction():
        for kind, attr in STORED_KINDS:
            for obj in getattr(cluster, attr):
                body = _pruned(obj.model_dump(mode="json", by_alias=True, exclude_none=True))
                store.put(kind, obj.metadata.namespace, obj.metadata.name, body)
        for node, cidr in placement.node_cidr.items():
            store.set_node(node, placement.node_ip[node], str(cidr))
        for p in cluster.pods:
            if not p.spec.host_network:
                key = pod_key(p)
                store.allocate(*key, placement.pod_node[key], placement.pod_ip[key])
        store.set_meta("cluster", name)
        store.set_meta("mode", mode)
        store.set_meta("nodes", len(cluster.nodes))
        store.set_meta("created", time.time())
        store.set_meta("phase", "Building")
        store.set_meta("config", {k: str(v) for k, v in dataclasses.asdict(net).items()})


# An empty selector is not an absent one: `podSelector: {}` in a peer selects every pod,
# `namespaceSelector: {}` every namespace; without them the peer means something else.
KEEP_EMPTY = frozenset({"podSelector", "namespaceSelector"})


def _pruned(value: Any) -> Any:
    """Drop empty fields ({}, [], ""), as the API server's JSON omits them; empty selectors
    stay (KEEP_EMPTY)."""
    if isinstance(value, dict):
        out = {k: _pruned(v) for k, v in value.items()}
        return {
            k: v
            for k, v in out.items()
            if v not in ({}, [], "", None) or (k in KEEP_EMPTY and v == {})
        }
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


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
    try:
        from podnet.daemon import supervisor
    except ImportError as e:
        print_error(
            f"the cluster daemon is not available ({e}); the datapath is up but pods do not "
            f"answer. `podnet down --cluster {name}` removes it"
        )
        return 1
    try:
        supervisor.start(sdir, name)
        with _progress(pods) as bar:
            supervisor.wait_ready(sdir, timeout, bar("ready"))
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


def run_down(args: argparse.Namespace) -> int:
    if (status := _preflight("down", args.cluster)) is not None:
        return status
    result, removed_state = _down(args.cluster)
    if not result.namespaces and not removed_state:
        print(f"cluster {args.cluster}: nothing to remove")
    else:
        print(
            f"cluster {args.cluster} removed: {result.namespaces} namespaces, "
            f"{result.processes} processes, state {'removed' if removed_state else 'absent'}"
        )
    return 0


def _down(name: str) -> tuple[Any, bool]:
    sdir = state_dir(name)
    try:
        from podnet.daemon import supervisor
    except ImportError:
        supervisor = None  # type: ignore[assignment]
    if supervisor is not None:
        supervisor.stop(sdir)
    result = _datapath().teardown.teardown(name)
    existed = sdir.exists()
    shutil.rmtree(sdir, ignore_errors=True)
    return result, existed
