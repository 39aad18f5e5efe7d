"""`podnet quarantine`'s change of the store, and its undo, each one transaction.

Quarantine labels the pod (QUARANTINE_LABEL, model.quarantine) and creates its quarantine
NetworkPolicy, validated with the whole next state as `apply` validates
(state.changes.apply_objects, which joins this transaction). Undo takes exactly that
away: the label (the pod's labels are then those it had before: quarantine refuses a
pod that already carries the label) and the policy; the endpoints controllers put the pod
back among its Services' ready endpoints on the next sync. Any problem is an InputError
naming the object and field, and nothing is written."""

from __future__ import annotations

from collections import Counter
from typing import Any

from podnet.model.errors import InputError, Origin
from podnet.model.load import LoadResult, validate_object
from podnet.model.quarantine_label import QUARANTINE_LABEL, label_value, policy_body, policy_name
from podnet.state.changes import Check, apply_objects, no_check
from podnet.state.labels import label_object
from podnet.state.store import Store

ORIGIN = "<podnet quarantine>"


def quarantine(
    store: Store,
    ns: str,
    pod: str,
    keep_ingress_from: tuple[dict[str, Any], ...] = (),
    check: Check = no_check,
) -> int:
    """Label `ns/pod` and create its quarantine policy; the store's revision after it."""
    with store.transaction():
        body = _pod_body(store, ns, pod)
        labels = body.get("metadata", {}).get("labels") or {}
        name = policy_name(pod)
        if QUARANTINE_LABEL in labels or store.get("NetworkPolicy", ns, name) is not None:
            raise InputError.line(
                f"Pod {ns}/{pod}: metadata.labels: {QUARANTINE_LABEL} is set or NetworkPolicy "
                f"{ns}/{name} exists: already quarantined (--undo lifts it)"
            )
        if (body.get("spec") or {}).get("hostNetwork"):
            raise InputError.line(
                f"Pod {ns}/{pod}: spec.hostNetwork: a pod on its node's network is node "
                "traffic, which NetworkPolicy cannot isolate"
            )
        label_object(store, "Pod", ns, pod, [(QUARANTINE_LABEL, label_value(pod))])
        result = LoadResult()
        problems = validate_object(
            policy_body(ns, pod, keep_ingress_from), Origin(ORIGIN, 0), result, Counter()
        )
        if problems:
            raise InputError(problems)
        _, revision = apply_objects(store, result.objects, check)
        return revision


def release(store: Store, ns: str, pod: str) -> int:
    """Undo `quarantine` of `ns/pod`: its label and policy go; the revision after it."""
    with store.transaction():
        body = _pod_body(store, ns, pod)
        labels = body.get("metadata", {}).get("labels") or {}
        name = policy_name(pod)
        policy = store.get("NetworkPolicy", ns, name)
        if QUARANTINE_LABEL not in labels and policy is None:
            raise InputError.line(
                f"Pod {ns}/{pod}: metadata.labels: no {QUARANTINE_LABEL}: not quarantined"
            )
        if QUARANTINE_LABEL in labels:
            label_object(store, "Pod", ns, pod, [(QUARANTINE_LABEL, None)])
        if policy is not None:
            store.delete("NetworkPolicy", ns, name)
        return store.revision()


def _pod_body(store: Store, ns: str, pod: str) -> dict[str, Any]:
    stored = store.get("Pod", ns, pod)
    if stored is None:
        raise InputError.line(f'Pod "{pod}" not found in namespace {ns}')
    return dict(stored.body)
