"""The kinds of object the store keeps, in the order a snapshot reads and validates them.

Each kind with the attribute of `model.cluster.Cluster` that holds its objects: `up` stores
`getattr(cluster, attr)`, the reconciler reads every kind back, `apply` diffs by kind.
"""

from __future__ import annotations

STORED_KINDS: tuple[tuple[str, str], ...] = (
    ("Namespace", "namespaces"),
    ("Node", "nodes"),
    ("Pod", "pods"),
    ("NetworkPolicy", "policies"),
    ("Service", "services"),
    ("Endpoints", "endpoints"),
    ("EndpointSlice", "endpoint_slices"),
    ("Ingress", "ingresses"),
    ("IngressClass", "ingress_classes"),
    ("Secret", "secrets"),
)
KIND_NAMES: tuple[str, ...] = tuple(kind for kind, _ in STORED_KINDS)

__all__ = ["KIND_NAMES", "STORED_KINDS"]
