"""`podnet apply`, `podnet delete`, `podnet label`: change a running cluster.

Each command reads the store, computes the cluster's next state whole (stored objects plus
the change), validates it exactly as `up` does (model build, placement, topology names) and
writes the difference, all in one write transaction (BEGIN IMMEDIATE): a concurrent change
waits for it and then starts from its result, so no change is lost. Any problem is one line
naming the file, object and field, exit 2, and nothing is written. It then asks the
cluster's daemon to sync (`supervisor.request_sync`) and returns once the daemon reports a
sync of that revision (or, without a daemon, syncs itself): the rules are enforced when the
command returns.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from typing import Any

from podnet.cli.cluster import _preflight, _pruned, add_cluster_arg
from podnet.cli.common import add_manifest_args
from podnet.cli.inspect import ALIASES, KINDS
from podnet.cli.output import print_error, print_warnings
from podnet.model.cluster import Cluster, build
from podnet.model.errors import InputError, Origin, Problem
from podnet.model.kinds import CLUSTER_SCOPED, WORKLOAD_KINDS
from podnet.model.load import Loaded, LoadResult, load, validate_object
from podnet.render.topology import render
from podnet.state.kinds import KIND_NAMES, STORED_KINDS
from podnet.state.placement import place
from podnet.state.store import Store, state_dir

SYNC_TIMEOUT = 30.0
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
    add_manifest_args(ap)
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
        lines, revision = apply_objects(store, incoming.objects)
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
        revision = delete_object(store, kind, ns, args.name)
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
        revision = label_object(store, kind, ns, args.name, changes, args.overwrite)
    print(f"{_ref(kind, args.name)} labeled")
    return _sync(args.cluster, revision)


# --- the changes: read, validate and write in one transaction -----------------------------
def apply_objects(store: Store, incoming: list[Loaded]) -> tuple[list[str], int]:
    """Create or update `incoming` (a workload replaces the pods it expanded into before);
    returns kubectl's lines ("pod/a created") and the store's revision after the change."""
    with store.transaction():
        current = _stored(store)
        replaced = {_key(o) for o in incoming}
        owners = {_owner(o) for o in incoming if o.kind in WORKLOAD_KINDS}
        kept = [o for o in current if _key(o) not in replaced and not _owned_by(o, owners)]
        lines = []
        before = {_key(o): o for o in current}
        for o in incoming:
            k = _key(o)
            verb = "created"
            if k in before:
                verb = "unchanged" if _body(before[k].obj) == _body(o.obj) else "configured"
            if o.kind in WORKLOAD_KINDS:
                verb = (
                    "configured" if any(_owned_by(c, {_owner(o)}) for c in current) else "created"
                )
            lines.append(f"{_ref(o.kind, o.obj.metadata.name)} {verb}")
        return lines, _commit(store, [*kept, *incoming])


def delete_object(store: Store, kind: str, ns: str, name: str) -> int:
    """Delete one object (a namespace with its objects); the store's revision after it."""
    where = f" in namespace {ns}" if ns else ""
    with store.transaction():
        if kind != "Namespace":
            # Removing one object (not a namespace) leaves every other object valid.
            if not store.delete(kind, ns or None, name):
                raise _bad(f'{kind} "{name}" not found{where}')
            return store.revision()
        current = _stored(store)
        target = (kind, ns, name)
        if target not in {_key(o) for o in current}:
            raise _bad(f'{kind} "{name}" not found{where}')
        # The namespace's objects go with it.
        kept = [
            o for o in current if _key(o) != target and (o.obj.metadata.namespace or "") != name
        ]
        return _commit(store, kept)


def label_object(
    store: Store,
    kind: str,
    ns: str,
    name: str,
    changes: list[tuple[str, str | None]],
    overwrite: bool = False,
) -> int:
    """Set (value) or remove (None) labels of a pod or namespace; the revision after it.
    Labels cannot break what holds between objects (names, addresses), so only the object
    itself is validated again: no whole-cluster build on this hot path."""
    with store.transaction():
        stored = store.get(kind, ns, name)
        if stored is None:
            where = f" in namespace {ns}" if ns else ""
            raise _bad(f'{kind} "{name}" not found{where}')
        body = json.loads(json.dumps(stored.body))
        labels = dict(body.setdefault("metadata", {}).get("labels") or {})
        ident = f"{kind} {ns + '/' if ns else ''}{name}"
        for key, value in changes:
            if kind == "Namespace" and key == NS_NAME_LABEL:
                raise _bad(f"{ident}: metadata.labels: {NS_NAME_LABEL} is set by the API server")
            if value is not None and labels.get(key, value) != value and not overwrite:
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
        store.put(kind, ns or None, name, _body(obj))
        return store.revision()


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
    """Validate the whole next state as `up` would, then write the difference, in one
    transaction (the caller's, which read the store, when there is one); returns the store's
    revision after it."""
    from podnet.daemon.reconcile import network_config

    cluster = build(LoadResult(objects=list(objects)), node_count=None)
    net = network_config(store.get_meta("config"))
    placement = place(cluster, net, held=store.held(), strict=True)
    name, mode = str(store.get_meta("cluster", "podnet")), str(store.get_meta("mode", "host-gw"))
    render(cluster, placement, name, mode, net)  # names that cannot be built: InputError
    print_warnings([*placement.warnings])
    desired = _desired(cluster)
    with store.transaction():
        existing = {(o.kind, o.namespace, o.name) for kind in KIND_NAMES for o in store.list(kind)}
        for (kind, ns, name), body in desired.items():
            store.put(kind, ns, name, body)
        for kind, ns, name in sorted(existing - desired.keys()):
            store.delete(kind, ns, name)
        return store.revision()


def _desired(cluster: Cluster) -> dict[Key, dict[str, Any]]:
    out: dict[Key, dict[str, Any]] = {}
    for kind, attr in STORED_KINDS:
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
    """Have the cluster synced to `revision` or later: by its daemon, or here without one.
    0 when it succeeded, 1 when it failed (the store keeps the change; the daemon's next
    sync is full and retries it)."""
    from podnet.daemon import supervisor

    sdir = state_dir(cluster).resolve()
    if supervisor.running_pid(sdir) is None:
        from podnet.daemon.reconcile import Reconciler

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
