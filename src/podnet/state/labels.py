"""`podnet label`'s change of the store: set or remove labels of a pod or namespace.

Labels cannot break what holds between objects (names, addresses), and the stored object
was valid before, so only the new labels are checked, with the model's own label rules
(podnet.model.names, the ones the model's `Labels` type runs). This module imports no
pydantic and no model classes: `podnet label` is on the way of a change to enforcement,
and building the model's classes would cost the command ~0.25 s of start-up."""

from __future__ import annotations

import json

from podnet.model.errors import InputError
from podnet.model.names import check_label_key, check_label_value
from podnet.state.store import Store

NS_NAME_LABEL = "kubernetes.io/metadata.name"


def label_object(
    store: Store,
    kind: str,
    ns: str,
    name: str,
    changes: list[tuple[str, str | None]],
    overwrite: bool = False,
) -> int:
    """Set (value) or remove (None) labels of a pod or namespace, in one transaction; the
    revision after it."""
    with store.transaction():
        stored = store.get(kind, ns, name)
        if stored is None:
            where = f" in namespace {ns}" if ns else ""
            raise InputError.line(f'{kind} "{name}" not found{where}')
        body = json.loads(json.dumps(stored.body))
        labels = dict(body.setdefault("metadata", {}).get("labels") or {})
        ident = f"{kind} {ns + '/' if ns else ''}{name}"
        for key, value in changes:
            if kind == "Namespace" and key == NS_NAME_LABEL:
                raise InputError.line(
                    f"{ident}: metadata.labels: {NS_NAME_LABEL} is set by the API server"
                )
            if value is not None and labels.get(key, value) != value and not overwrite:
                raise InputError.line(
                    f"{ident}: metadata.labels: {key!r} already has a value "
                    f"({labels[key]}), and --overwrite is false"
                )
            try:
                check_label_key(key)
                if value is not None:
                    check_label_value(value)
            except ValueError as e:
                raise InputError.line(f"{ident}: metadata.labels: {e}") from None
            if value is None:
                labels.pop(key, None)
            else:
                labels[key] = value
        if labels:
            body["metadata"]["labels"] = labels
        else:  # the store omits empty fields (state.changes.body_of)
            body["metadata"].pop("labels", None)
        store.put(kind, ns or None, name, body)
        return store.revision()
