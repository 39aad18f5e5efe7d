"""`podnet apply -f PATH...`: create or update objects of a running cluster; returns once
the cluster enforces them (podnet.state.changes writes, the reconciler syncs)."""

from __future__ import annotations

import argparse
from typing import Any

from podnet.cli.common import add_manifest_args, without_cycle_collection
from podnet.cli.live import add_cluster_arg, check_next_state, open_store, preflight, wait_synced
from podnet.cli.output import print_warnings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "apply",
        help="create or update objects of a running cluster",
        description="Create or update any supported object (pods, workloads, namespaces, "
        "policies, services, ...) of a running cluster; returns once the cluster enforces it.",
    )
    add_manifest_args(p)
    add_cluster_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # A short-lived command whose objects live until it exits: the cyclic collector's
    # passes over them (an apply of 1,000 Ingresses makes ~10^5 objects) are pure cost on
    # the way of the change, and reference counting frees the rest. Back on after (the
    # command also runs in-process: tests, the dashboard's actions).
    with without_cycle_collection():
        from podnet.model.load import load
        from podnet.state.changes import apply_objects

        if (status := preflight("apply", args.cluster)) is not None:
            return status
        incoming = load(args.files)  # InputError: exit 2, naming file, object and field
        print_warnings(incoming.warnings)
        with open_store(args.cluster) as store:
            lines, revision = apply_objects(store, incoming.objects, check_next_state)
    for line in lines:
        print(line)
    return wait_synced(args.cluster, revision)
