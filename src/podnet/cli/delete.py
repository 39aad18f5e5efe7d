"""`podnet delete KIND NAME [-n NS]`: delete one object of a running cluster (a namespace
takes its objects with it); returns once the cluster enforces it."""

from __future__ import annotations

import argparse
from typing import Any

from podnet.cli.live import (
    add_cluster_arg,
    check_next_state,
    open_store,
    preflight,
    wait_synced,
)
from podnet.cli.resources import KINDS, kind_of
from podnet.model.errors import InputError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "delete",
        help="delete an object of a running cluster",
        description="Delete one object (a namespace takes its objects with it).",
    )
    p.add_argument("kind", metavar="KIND")
    p.add_argument("name", metavar="NAME")
    p.add_argument("-n", "--namespace", default="default")
    add_cluster_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from podnet.model.kinds import CLUSTER_SCOPED
    from podnet.state.changes import delete_object, ref

    if (status := preflight("delete", args.cluster)) is not None:
        return status
    kind = kind_of(args.kind)
    if kind is None:
        raise InputError.line(f"unknown kind {args.kind!r}; one of {', '.join(KINDS)}")
    if kind == "Node":
        raise InputError.line(
            "nodes cannot be deleted from a running cluster (`podnet down`, then up)"
        )
    ns = "" if kind in CLUSTER_SCOPED else args.namespace
    with open_store(args.cluster) as store:
        revision = delete_object(store, kind, ns, args.name, check_next_state)
    print(f'{ref(kind, args.name).split("/")[0]} "{args.name}" deleted')
    return wait_synced(args.cluster, revision)
