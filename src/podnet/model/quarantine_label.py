"""What marks a quarantined pod and its quarantine NetworkPolicy (`podnet quarantine`).

Both carry the label QUARANTINE_LABEL with one value derived from the pod's name: the pod,
so that the policy's podSelector picks exactly it; the policy, so that the engine (and with
it the renderer, `analyze`, `explain` and `probe`'s expectations) reads it as a deny that
wins over every allow of the additive NetworkPolicies (docs/policy-semantics.md,
"Quarantine"); the endpoints controllers read the pod's label as not ready
(state.endpoint_slices). Plain labels on plain objects: `get networkpolicies -o yaml` and
`get pods` show them, and a store dump read back keeps the meaning.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

QUARANTINE_LABEL = "podnet.io/quarantine"
POLICY_PREFIX = "quarantine-"
_VALUE_MAX = 63  # a label value's limit


def label_value(pod: str) -> str:
    """The label's value for pod `pod` (a name of its namespace): the name itself when it
    fits a label value, else its first 52 characters, '-' and 10 hex of its hash."""
    if len(pod) <= _VALUE_MAX:
        return pod
    digest = hashlib.sha256(pod.encode()).hexdigest()[:10]
    return f"{pod[:52].rstrip('.-')}-{digest}"


def policy_name(pod: str) -> str:
    """The quarantine NetworkPolicy's name: `quarantine-<pod>` (a name may have 253)."""
    return f"{POLICY_PREFIX}{pod}"[:253].rstrip(".-")


def is_quarantine(labels: Mapping[str, str]) -> bool:
    """Labels of a quarantined pod, or of a quarantine policy."""
    return QUARANTINE_LABEL in labels


def policy_body(
    namespace: str, pod: str, keep_ingress_from: tuple[dict[str, Any], ...] = ()
) -> dict[str, Any]:
    """The quarantine NetworkPolicy of `namespace/pod`: both directions, no egress rule,
    one ingress rule admitting the kept forensic peers (none: no ingress rule)."""
    value = label_value(pod)
    ingress = [{"from": list(keep_ingress_from)}] if keep_ingress_from else []
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": policy_name(pod),
            "namespace": namespace,
            "labels": {QUARANTINE_LABEL: value},
            "annotations": {"podnet.io/quarantined-pod": f"{namespace}/{pod}"},
        },
        "spec": {
            "podSelector": {"matchLabels": {QUARANTINE_LABEL: value}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": [],
        },
    }
