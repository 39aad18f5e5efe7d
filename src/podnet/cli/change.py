"""`podnet apply`, `podnet delete`, `podnet label`: change a running cluster.

Each command computes the cluster's next state whole (stored objects plus the change),
validates it exactly as `up` does (model build, placement, topology names), and only then
writes the store in one transaction; any problem is one line naming the file, object and
field, exit 2, and nothing is written. It then asks the cluster's daemon to sync (SIGUSR1)
and returns once the daemon reports a sync of that revision (or, without a daemon, syncs
itself): the rules are enforced when the command returns.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from podnet.cli.cluster import _preflight, _pruned, add_cluster_arg
from podnet.cli.inspect import ALIASES, KINDS
from podnet.cli.output import print_error, print_warnings
from podnet.model.cluster import Cluster, build
from podnet.model.errors import InputError, Origin, Problem
from podnet.model.kinds import CLUSTER_SCOPED, WORKLOAD_KINDS
from podnet.model.load import Loaded, LoadResult, load, validate_object
from podnet.render.topology import render
from podnet.state.placement import place
from podnet.state.store import Store, state_dir

SYNC_TIMEOUT = 30.0
POLL = 0.005
LABELLED = {"pods": "Pod", "namespaces": "Namespace"}
NS_NAME_LABEL = "kubernetes.io/metadata.name"
API_GROUP = {
    "NetworkPolicy": "networking.k8s.io",
    "Ingress": "networking.k8s.io",
    "IngressClass": "networking.k8s.io",
    "EndpointSlice": "discovery.k8s.io",
    "Deployment": "apps",
    "ReplicaSet": "apps",
    "StatefulSet": "apps",
    "DaemonSet": "apps",
    "Job": "batch",
    "CronJob": "batch",
}
Key = tuple[str, str, str]  # kind, namespace ("" for cluster-scoped), name


def register(sub: Any) -> None:
    ap = sub.add_parser(
        "apply",
        help="create or update objects of a running cluster",
        description="Create or update any supported object (pods, workloads, namespaces, "
        "policies, services, ...) of a running cluster; returns once the cluster enforces it.",
    )
    ap.add_argument(
        "-f",
        "--filename",
        dest="files",
        action="append",
        required=True,
        metavar="PATH",
        help="manifest file, folder or - for stdin; repeatable",
    )
    add_cluster_arg(ap)
    ap.set_defaults(func=run_apply)
    de = sub.add_parser(
        "delete",
        help="delete an object of a running cluster",
        description="Delete one object (a namespace takes its objects with it).",
    )
    de.add_argument("kind", metavar="KIND")
    de.add_argument("name", metavar="NAME")
    de.add_argument("-n", "--namespace", default="default")
    add_cluster_arg(de)
    de.set_defaults(func=run_delete)
    la = sub.add_parser(
        "label",
        help="set or remove labels of a pod or namespace",
        description="KEY=VALUE sets a label, KEY- removes it; changing a label that has a "
        "value needs --overwrite (as kubectl).",
    )
    la.add_argument("kind", metavar="KIND", help="pods or namespaces")
    la.add_argument("name", metavar="NAME")
    la.add_argument("labels", nargs="+", metavar="KEY=VALUE|KEY-")
    la.add_argument("-n", "--namespace", default="default")
    la.add_argument("--overwrite", action="store_true", help="replace existing values")
    add_cluster_arg(la)
    la.set_defaults(func=run_label)


# --- commands ---------------------------------------------------------------------------
def run_apply(args: argparse.Namespace) -> int:
    if (status := _preflight("apply", args.cluster)) is not None:
        return status
    incoming = load(args.files)  # InputError: exit 2, naming file, object and field
    print_warnings(incoming.warnings)
    with _open(args.cluster) as store:
        current = _stored(store)
        replaced = {_key(o) for o in incoming.objects}
        owners = {
            (o.obj.metadata.namespace or "default", o.kind, o.obj.metadata.name)
            for o in incoming.objects
            if o.kind in WORKLOAD_KINDS
        }
        kept = [o for o in current if _key(o) not in replaced and not _owned_by(o, owners)]
        lines = []
        before = {_key(o): o for o in current}
        for o in incoming.objects:
            k = _key(o)
            verb = "created"
            if k in before:
                verb = "unchanged" if _body(before[k].obj) == _body(o.obj) else "configured"
            if o.kind in WORKLOAD_KINDS:
                verb = (
                    "configured" if any(_owned_by(c, {_owner(o)}) for c in current) else "created"
                )
            lines.append(f"{_ref(o.kind, o.obj.metadata.name)} {verb}")
        revision = _commit(store, [*kept, *incoming.objects])
    for line in lines:
        print(line)
    return _sync(args.cluster, revision)


def run_delete(args: argparse.Namespace) -> int:
    if (status := _preflight("delete", args.cluster)) is not None:
        return status
    kind = _kind(args.kind)
    if kind == "Node":
        raise _bad("nodes cannot be deleted from a running cluster (`podnet down`, then up)")
    ns = "" if kind in CLUSTER_SCOPED else args.namespace
    with _open(args.cluster) as store:
        if kind != "Namespace":
            # Removing one object (not a namespace) leaves every other object valid.
            with store.transaction():
                if not store.delete(kind, ns or None, args.name):
                    where = f" in namespace {ns}" if ns else ""
                    raise _bad(f'{kind} "{args.name}" not found{where}')
                revision = store.revision()
            print(f'{_ref(kind, args.name).split("/")[0]} "{args.name}" deleted')
            return _sync(args.cluster, revision)
        current = _stored(store)
        target = (kind, ns, args.name)
        if target not in {_key(o) for o in current}:
            where = f" in namespace {ns}" if ns else ""
            raise _bad(f'{kind} "{args.name}" not found{where}')
        kept = [
            o
            for o in current
            if _key(o) != target
            and not (kind == "Namespace" and (o.obj.metadata.namespace or "") == args.name)
        ]
        revision = _commit(store, kept)
    print(f'{_ref(kind, args.name).split("/")[0]} "{args.name}" deleted')
    return _sync(args.cluster, revision)


def run_label(args: argparse.Namespace) -> int:
    if (status := _preflight("label", args.cluster)) is not None:
        return status
    kind = LABELLED.get(ALIASES.get(args.kind.lower(), ""))
    if kind is None:
        raise _bad(f"label works on pods and namespaces, not {args.kind!r}")
    changes = [_parse_label(text) for text in args.labels]
    ns = "" if kind in CLUSTER_SCOPED else args.namespace
    with _open(args.cluster) as store:
        # Labels cannot break what holds between objects (names, addresses), so only the
        # object itself is validated again: no whole-cluster build on this hot path.
        stored = store.get(kind, ns, args.name)
        if stored is None:
            where = f" in namespace {ns}" if ns else ""
            raise _bad(f'{kind} "{args.name}" not found{where}')
        body = json.loads(json.dumps(stored.body))
        labels = dict(body.setdefault("metadata", {}).get("labels") or {})
        ident = f"{kind} {ns + '/' if ns else ''}{args.name}"
        for key, value in changes:
            if kind == "Namespace" and key == NS_NAME_LABEL:
                raise _bad(f"{ident}: metadata.labels: {NS_NAME_LABEL} is set by the API server")
            if value is not None and labels.get(key, value) != value and not args.overwrite:
                raise _bad(
                    f"{ident}: metadata.labels: {key!r} already has a value "
                    f"({labels[key]}), and --overwrite is false"
                )
            if value is None:
                labels.pop(key, None)
            else:
                labels[key] = value
        body["metadata"]["labels"] = labels
        obj = _revalidate(kind, body).obj
        with store.transaction():
            store.put(kind, ns or None, args.name, _body(obj))
            revision = store.revision()
    print(f"{_ref(kind, args.name)} labeled")
    return _sync(args.cluster, revision)


# --- the next state, validated, then written ---------------------------------------------
def _open(cluster: str) -> Store:
    sdir = state_dir(cluster)
    if not Store.exists(sdir):
        raise _bad(f"no cluster {cluster} ({sdir} not found); `podnet up` creates it")
    return Store.open(sdir)


def _stored(store: Store) -> list[Loaded]:
    from podnet.daemon.reconcile import stored_objects

    return list(stored_objects(store).objects)


def _commit(store: Store, objects: list[Loaded]) -> int:
    """Validate the whole next state as `up` would, then write the difference in one
    transaction; returns the store's revision after it."""
    from podnet.daemon.reconcile import STORED_KINDS, network_config

    cluster = build(LoadResult(objects=list(objects)), node_count=None)
    net = network_config(store.get_meta("config"))
    placement = place(cluster, net, held=store.held(), strict=True)
    name, mode = str(store.get_meta("cluster", "podnet")), str(store.get_meta("mode", "host-gw"))
    render(cluster, placement, name, mode, net)  # names that cannot be built: InputError
    print_warnings([*placement.warnings])
    desired = _desired(cluster)
    with store.transaction():
        existing = {
            (o.kind, o.namespace, o.name) for kind in STORED_KINDS for o in store.list(kind)
        }
        for (kind, ns, name), body in desired.items():
            store.put(kind, ns, name, body)
        for kind, ns, name in sorted(existing - desired.keys()):
            store.delete(kind, ns, name)
        return store.revision()


def _desired(cluster: Cluster) -> dict[Key, dict[str, Any]]:
    from podnet.cli.cluster import STORED_KINDS as ATTRS

    out: dict[Key, dict[str, Any]] = {}
    for kind, attr in ATTRS:
        for obj in getattr(cluster, attr):
            out[(kind, obj.metadata.namespace or "", obj.metadata.name)] = _body(obj)
    return out


def _body(obj: Any) -> dict[str, Any]:
    return _pruned(obj.model_dump(mode="json", by_alias=True, exclude_none=True))


def _revalidate(kind: str, body: dict[str, Any]) -> Loaded:
    result = LoadResult()
    body = {**body, "kind": kind}
    body.setdefault("apiVersion", "v1")
    problems = validate_object(body, Origin("<label>", 0), result, Counter())
    if problems:
        raise InputError(problems)
    return result.objects[0]


def _key(o: Loaded) -> Key:
    ns = "" if o.kind in CLUSTER_SCOPED else (o.obj.metadata.namespace or "default")
    return (o.kind, ns, o.obj.metadata.name)


def _owner(o: Loaded) -> tuple[str, str, str]:
    return (o.obj.metadata.namespace or "default", o.kind, o.obj.metadata.name)


def _owned_by(o: Loaded, owners: set[tuple[str, str, str]]) -> bool:
    """A stored pod that a workload of this apply expanded into (it is expanded anew)."""
    if o.kind != "Pod" or not owners:
        return False
    ns = o.obj.metadata.namespace or "default"
    for ref in o.obj.metadata.owner_references:
        if (ns, ref.kind, ref.name) in owners:
            return True
        if ref.kind == "ReplicaSet":
            for ons, okind, oname in owners:
                if (
                    okind == "Deployment"
                    and ons == ns
                    and re.fullmatch(rf"{re.escape(oname)}-[a-z0-9]+", ref.name)
                ):
                    return True
    return False


def _kind(text: str) -> str:
    plural = ALIASES.get(text.lower())
    if plural is None:
        raise _bad(f"unknown kind {text!r}; one of {', '.join(KINDS)}")
    return KINDS[plural]


def _ref(kind: str, name: str) -> str:
    group = API_GROUP.get(kind)
    return f"{kind.lower()}{'.' + group if group else ''}/{name}"


_LABEL = re.compile(r"^([^=\s]+)=(.*)$")


def _parse_label(text: str) -> tuple[str, str | None]:
    if text.endswith("-") and "=" not in text:
        return text[:-1], None
    m = _LABEL.match(text)
    if not m:
        raise _bad(f"label {text!r}: expected KEY=VALUE or KEY-")
    return m.group(1), m.group(2)


def _bad(message: str) -> InputError:
    return InputError([Problem(None, "", "", message)])


# --- the daemon syncs -----------------------------------------------------------------
def _sync(cluster: str, revision: int, timeout: float = SYNC_TIMEOUT) -> int:
    """Ask the daemon to sync and wait for a sync of `revision` or later (without a daemon,
    sync here). 0 when it succeeded, 1 when it failed (the store keeps the change; the
    daemon's next sync is full and retries it)."""
    from podnet.daemon import supervisor
    from podnet.daemon.reconcile import SYNC_SIGNAL, Reconciler

    sdir = state_dir(cluster).resolve()
    pid = supervisor.running_pid(sdir)
    if pid is None:
        result = Reconciler(sdir, cluster).sync()
        if not result.ok:
            print_error(f"the change is stored but not in force: {result.error}")
            return 1
        return 0
    status = wait_synced(sdir, revision, pid, SYNC_SIGNAL, timeout)
    if status is None:
        print_error(f"the daemon did not sync revision {revision} within {timeout:g}s")
        return 1
    if not status.get("ok"):
        print_error(f"the change is stored but not in force: {status.get('error')}")
        return 1
    return 0


def wait_synced(
    sdir: Path, revision: int, pid: int, sig: int, timeout: float
) -> dict[str, Any] | None:
    """Signal the daemon, then the daemon.json "sync" status of a revision >= `revision`."""
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    path = sdir / "daemon.json"
    while time.monotonic() < deadline:
        try:
            status = json.loads(path.read_text()).get("sync") or {}
        except (FileNotFoundError, ValueError):
            status = {}
        if status.get("revision", -1) >= revision:
            return status
        time.sleep(POLL)
    return None
