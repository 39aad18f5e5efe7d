"""`podnet down`: remove a cluster. Stop the daemon, kill what still runs inside the
cluster's namespaces, remove every namespace whose name carries the cluster (found by
prefix, so it works after a crash), then the state directory. Idempotent."""

from __future__ import annotations

import argparse
import shutil
from typing import TYPE_CHECKING, Any

from podnet.cli.live import add_cluster_arg, preflight

if TYPE_CHECKING:
    from podnet.datapath.teardown import TeardownResult


def register(sub: Any) -> None:
    p = sub.add_parser(
        "down",
        help="remove a cluster: namespaces, links, processes, state",
        description="Remove everything `up` made for the cluster; safe to repeat, and works "
        "after a crash (leftovers are found by the cluster's name). Needs root.",
    )
    add_cluster_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (status := preflight("down", args.cluster)) is not None:
        return status
    result, removed_state = take_down(args.cluster)
    if not result.namespaces and not removed_state:
        print(f"cluster {args.cluster}: nothing to remove")
    else:
        print(
            f"cluster {args.cluster} removed: {result.namespaces} namespaces, "
            f"{result.processes} processes, state {'removed' if removed_state else 'absent'}"
        )
    return 0


def take_down(name: str) -> tuple[TeardownResult, bool]:
    """Everything of cluster `name`: (what teardown removed, whether a state dir existed)."""
    from podnet.daemon import supervisor
    from podnet.datapath.teardown import teardown
    from podnet.state.store import state_dir

    sdir = state_dir(name)
    supervisor.stop(sdir)
    supervisor.stop_cluster(name)  # one under another state directory, too
    result = teardown(name)
    existed = sdir.exists()
    shutil.rmtree(sdir, ignore_errors=True)
    return result, existed
