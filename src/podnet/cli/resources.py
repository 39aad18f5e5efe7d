"""The resource names the CLI takes, as kubectl spells them: plurals, singulars and short
names (`po`, `svc`, `netpol`, ...)."""

from __future__ import annotations

KINDS = {
    "pods": "Pod",
    "nodes": "Node",
    "namespaces": "Namespace",
    "services": "Service",
    "endpointslices": "EndpointSlice",
    "endpoints": "Endpoints",
    "networkpolicies": "NetworkPolicy",
    "ingresses": "Ingress",
    "ingressclasses": "IngressClass",
    "secrets": "Secret",
}
ALIASES = {
    **{k: k for k in KINDS},
    **{v.lower(): k for k, v in KINDS.items()},
    "po": "pods",
    "no": "nodes",
    "ns": "namespaces",
    "svc": "services",
    "ep": "endpoints",
    "netpol": "networkpolicies",
    "ing": "ingresses",
}
CLUSTER_SCOPED = {"nodes", "namespaces", "ingressclasses"}


def kind_of(text: str) -> str | None:
    """The kind (`Pod`) a resource name (`pods`, `pod`, `po`) means; None when unknown."""
    plural = ALIASES.get(text.lower())
    return KINDS[plural] if plural else None
