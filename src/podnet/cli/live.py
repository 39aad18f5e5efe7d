"""What every command on a running cluster shares: `--cluster`, the root and name checks,
opening the cluster's store, and waiting until a stored change is in force."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from podnet.cli.output import print_error, print_warnings
from podnet.model.errors import InputError
from podnet.render import kernel_names
from podnet.state.store import DEFAULT_CLUSTER, Store, state_dir

if TYPE_CHECKING:
    from podnet.model.cluster import Cluster
    from podnet.state.network import NetworkConfig
    from podnet.state.placement import Placement

SYNC_TIMEOUT = 30.0


def add_cluster_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cluster",
        default=DEFAULT_CLUSTER,
        metavar="NAME",
        help=f"cluster name (default {DEFAULT_CLUSTER})",
    )


def fail(message: str) -> int:
    print_error(message)
    return 2


def preflight(command: str, cluster: str) -> int | None:
    """None when `command` may run on `cluster`; else the exit status (the reason printed)."""
    if os.geteuid() != 0:
        return fail(f"podnet {command} needs root: it creates network namespaces (try sudo)")
    reason = kernel_names.check_cluster_name(cluster)
    return fail(reason) if reason else None


def open_store(cluster: str) -> Store:
    sdir = state_dir(cluster)
    if not Store.exists(sdir):
        raise InputError.line(f"no cluster {cluster} ({sdir} not found); `podnet up` creates it")
    return Store.open(sdir)


def wants_daemon(store: Store) -> bool:
    """A cluster brought up with its daemon (not `up --no-daemon`), and built."""
    return bool(store.get_meta("daemon", True)) and store.get_meta("phase") == "Running"


def keep_daemon(cluster: str) -> str:
    """What every command on a running cluster does first: a cluster whose daemon died
    gets it back, and the user is told. "none" (the cluster has no daemon, or we cannot
    tell without root), "running", or "restarted"."""
    from podnet.daemon import supervisor

    sdir = state_dir(cluster)
    if os.geteuid() != 0 or not Store.exists(sdir):
        return "none"
    with Store.open(sdir) as store:
        if not wants_daemon(store):
            return "none"
    try:
        said = supervisor.ensure_running(sdir, cluster)
    except supervisor.DaemonError as e:
        print_error(str(e))
        return "none"
    if said:
        print(f"warning: {said}", file=sys.stderr)
        return "restarted"
    return "running"


def wait_synced(cluster: str, revision: int, timeout: float = SYNC_TIMEOUT) -> int:
    """Have the cluster synced to `revision` or later: by its daemon (started again if it
    died), or here for a cluster without one. 0 when it succeeded, 1 when it failed (the
    store keeps the change; the daemon's next sync is full and retries it)."""
    from podnet.daemon import supervisor

    sdir = state_dir(cluster).resolve()
    if keep_daemon(cluster) == "none":
        from podnet.controller.reconciler import Reconciler

        result = Reconciler(sdir, cluster).sync()
        status = {"ok": result.ok, "error": result.error}
    else:
        try:
            status = supervisor.request_sync(sdir, revision, timeout)
        except (supervisor.DaemonError, TimeoutError) as e:
            print_error(f"the change is stored, but {e}")
            return 1
    if not status.get("ok"):
        print_error(f"the change is stored but not in force: {status.get('error')}")
        return 1
    return 0


def check_next_state(
    store: Store, cluster: Cluster, placement: Placement, net: NetworkConfig
) -> None:
    """The next state of a change must render (kernel names that cannot be built are an
    InputError); placement warnings are shown. The daemon's `apply` checks the same."""
    from podnet.controller.apply_requests import next_state_renders

    print_warnings(next_state_renders(store, cluster, placement, net))
