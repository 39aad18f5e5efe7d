"""`podnet apply -f PATH...`: create or update objects of a running cluster; returns once
the cluster enforces them.

As kubectl and the API server split it: the CLI reads the files (model.manifests: no
pydantic, no models) and hands them to the cluster's daemon, which parses, validates,
checks, stores and syncs them (controller.apply_requests) and answers once the change is
enforced. Without a daemon that takes them (`up --no-daemon`, one that is starting or did
not answer), the CLI does the same work itself: the same functions, so the same lines, the
same warnings and the same errors (tests/test_apply_daemon_path.py)."""

from __future__ import annotations

import argparse
from typing import Any

from podnet.cli.common import add_manifest_args, without_cycle_collection
from podnet.cli.live import (
    add_cluster_arg,
    check_next_state,
    keep_daemon,
    open_store,
    preflight,
    wait_synced,
)
from podnet.cli.output import print_error, print_warnings
from podnet.model.errors import InputError, problem_from_json


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
        from podnet.model.manifests import read_texts

        if (status := preflight("apply", args.cluster)) is not None:
            return status
        texts = read_texts(args.files)  # InputError: exit 2, naming the file
        served = through_daemon(args.cluster, texts)
        if served is not None:
            return served
        from podnet.model.load import validate_documents
        from podnet.model.manifests import documents_of
        from podnet.state.changes import apply_objects

        documents = [d for name, text in texts for d in documents_of(name, text)]
        incoming = validate_documents(documents)  # InputError: naming file, object, field
        print_warnings(incoming.warnings)
        with open_store(args.cluster) as store:
            lines, revision = apply_objects(store, incoming.objects, check_next_state)
    for line in lines:
        print(line)
    return wait_synced(args.cluster, revision)


def through_daemon(cluster: str, texts: list[tuple[str, str]]) -> int | None:
    """Apply through the cluster's daemon: the exit status, or None when no daemon took the
    files (or a big file parsed here holds values JSON cannot carry as they are, such as
    YAML's dates)."""
    from podnet.daemon import supervisor
    from podnet.state.store import state_dir

    if keep_daemon(cluster) != "running":
        return None
    sources = [source(name, text) for name, text in texts]
    if any(s is None for s in sources):
        return None
    reply = supervisor.request_apply(state_dir(cluster), sources)
    if reply is None or "error" in reply:
        # No answer, or the daemon failed before storing anything (a bug it logged, or an
        # older daemon that reads another request): the CLI's own path does the work.
        return None
    for group in reply.get("warnings", ()):
        print_warnings([problem_from_json(p) for p in group])
    if "problems" in reply:
        raise InputError([problem_from_json(p) for p in reply["problems"]])
    for line in reply["lines"]:
        print(line)
    if "sync_error" in reply:  # as wait_synced says it
        print_error(f"the change is stored, but {reply['sync_error']}")
        return 1
    if not reply["sync"].get("ok"):
        print_error(f"the change is stored but not in force: {reply['sync'].get('error')}")
        return 1
    return 0


def source(name: str, text: str) -> dict[str, Any] | None:
    """What the daemon gets of one file: its text, which it parses as this process would;
    a big one parsed here (on two cores when it needs PyYAML, which the daemon does not
    fork for), its documents, or None when JSON would not carry them unchanged."""
    from podnet.model.manifests import PARALLEL_MIN_BYTES, documents_of

    if len(text) < PARALLEL_MIN_BYTES:
        return {"name": name, "text": text}
    documents = [[i, doc] for _, i, doc in documents_of(name, text)]
    return {"name": name, "documents": documents} if plain(documents) else None


def plain(value: Any) -> bool:
    """`value` goes through JSON unchanged: strings as mapping keys, and only JSON's
    scalars (YAML's dates, binary or integer keys would arrive as something else)."""
    if isinstance(value, dict):
        return all(type(k) is str and plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain(v) for v in value)
    return value is None or isinstance(value, str | int | float)
