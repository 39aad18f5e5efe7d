"""An `apply` that changes nothing the rules between objects read, checked against the
stored copies of the objects it touches only.

The next state of an apply is valid when every object is valid on its own (the loader has
checked the incoming ones, the store holds only valid ones) and the rules between objects
hold: unique keys, declared namespaces, workload expansion (model.cluster.build), Service
allocation, placement and kernel names (state.changes._commit). The stored state held those
rules; a change that leaves every field they read as stored cannot break them, so it is
written without reading, validating and building the whole stored cluster, which at 5,000
pods cost each `apply` 2.6-6 s in the CLI (bench/README.md).

Local changes:
- a NetworkPolicy, new or updated, in a namespace the store holds: no rule between objects
  reads a policy (an apply replaces an object of the same key; placement and the kernel
  names never look at policies);
- an update of a stored Pod or Namespace that differs from it only in `metadata.labels` and
  `metadata.annotations`: names, node, addresses, ports and owners stay as stored, and no
  rule between objects reads a pod's or namespace's labels (Services select by them, which
  allocates nothing and refuses nothing; node selectors read Node labels);
- an Ingress, new or updated, in a namespace the store holds, once the ingress controller
  is installed: its rules (backends name stored Services and ports, the default class, its
  status) read only the objects it names (state.ingress_local).

Any other change (another kind, a new pod, a changed spec, a key given twice) is not local:
the caller validates the whole next state, as `up` does. Either way the same input gets the
same lines, the same errors, and the same objects written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from podnet.model.errors import Origin
from podnet.model.kinds import CLUSTER_SCOPED
from podnet.model.load import Loaded, LoadResult, validate_object
from podnet.state.store import Store

# What an update of these kinds may change and stay local.
LABEL_KINDS = frozenset({"Pod", "Namespace"})
# New or updated objects of these kinds are local in a namespace the store holds.
NAMESPACED_LOCAL = frozenset({"NetworkPolicy", "Ingress"})
FREE_METADATA = ("labels", "annotations")
BodyOf = Callable[[Any], dict[str, Any]]  # state.changes.body_of: an object as stored


def local_writes(
    store: Store, incoming: list[Loaded], body_of: BodyOf
) -> list[tuple[Loaded, str, dict[str, Any]]] | None:
    """For a local change: each incoming object with kubectl's verb ("created",
    "configured", "unchanged", as the whole-state path says them) and the body to store.
    None when the change is not local. Reads the store (the caller's write transaction)."""
    keys = [_key(o) for o in incoming]
    if not incoming or len(set(keys)) != len(keys):
        return None
    out = []
    for o, (kind, ns, name) in zip(incoming, keys, strict=True):
        body = body_of(o.obj)
        stored = store.get(kind, ns or None, name)
        before = _stored_body(kind, stored.body, body_of) if stored is not None else None
        if stored is not None and before is None:
            return None  # a stored body the model refuses: the whole path reports it
        if kind in NAMESPACED_LOCAL:
            if store.get("Namespace", None, ns) is None:
                return None  # the whole path creates the namespace and warns
        elif kind not in LABEL_KINDS or not _only_free_metadata(before, body):
            return None
        verb = "created" if before is None else "unchanged" if before == body else "configured"
        out.append((o, verb, body))
    ingresses = [o for o in incoming if o.kind == "Ingress"]
    if ingresses:
        from podnet.state.ingress_local import checked_ingresses  # only for Ingresses

        statuses = checked_ingresses(store, ingresses, lambda k, ns, n: _read(store, k, ns, n))
        if statuses is None:
            return None
        status_of = iter(statuses)
        dumped: dict[int, dict[str, Any]] = {}  # every Ingress of ours shares one status
        out = [
            (o, verb, _with_status(body, next(status_of), body_of, dumped))
            if o.kind == "Ingress"
            else (o, verb, body)
            for o, verb, body in out
        ]
    return out


def _with_status(
    body: dict[str, Any], status: Any, body_of: BodyOf, dumped: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    """An Ingress's body with the status the whole path writes (None: as given). `dumped`:
    the statuses dumped so far, by id (the bodies are written as JSON: sharing one dict
    among them is safe)."""
    if status is None:
        return body
    out = {k: v for k, v in body.items() if k != "status"}
    if id(status) not in dumped:
        dumped[id(status)] = body_of(status)
    if dumped[id(status)]:
        out["status"] = dumped[id(status)]
    return out


def _key(o: Loaded) -> tuple[str, str, str]:
    ns = "" if o.kind in CLUSTER_SCOPED else (o.obj.metadata.namespace or "default")
    return (o.kind, ns, o.obj.metadata.name)


def _stored_body(kind: str, body: dict[str, Any], body_of: BodyOf) -> dict[str, Any] | None:
    """The stored object as the whole-state path compares it: read back through the model
    (as state.snapshot reads every object) and dumped again. None if it does not validate
    (then the whole path reports it)."""
    obj = _model_of(kind, body)
    return None if obj is None else body_of(obj)


def _model_of(kind: str, body: dict[str, Any]) -> Any:
    """A stored body as the model reads it; None if it does not validate. The loader
    mutates (raw defaults): `body` must be the caller's own, as every Store read parses
    the stored text anew (Store._stored), and is not read again."""
    raw = body
    raw.setdefault("kind", kind)
    result = LoadResult()
    if validate_object(raw, Origin("<store>", 0), result, Counter()) or not result.objects:
        return None
    return result.objects[0].obj


def _read(store: Store, kind: str, ns: str, name: str) -> Any:
    """A stored object as the model reads it. Services as state.changes reads their
    allocations (their stored body is the model's own dump: no raw defaults to fill)."""
    stored = store.get(kind, ns or None, name)
    if stored is None:
        return None
    if kind == "Service":
        from podnet.model.service import Service

        try:
            return Service.model_validate(stored.body)
        except ValueError:
            return None
    return _model_of(kind, stored.body)


def _only_free_metadata(before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    """Whether an update of a stored object changes labels and annotations at most."""
    if before is None:
        return False

    def rest(body: dict[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in body.get("metadata", {}).items() if k not in FREE_METADATA}
        return {**body, "metadata": meta}

    return rest(before) == rest(after)
