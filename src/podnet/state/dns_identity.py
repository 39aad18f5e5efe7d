"""Which pods the cluster DNS server answers in, and what a probe expects from them.

Kept apart from `state.addons` (which builds the add-on's model objects) so that the
daemon's stand-in, which needs only this rule, serves without importing the models: a
restarted daemon answers again before pydantic has even loaded.
"""

from __future__ import annotations

DNS_NAMESPACE = "kube-system"
DNS_SERVICE = "kube-dns"
DNS_LABELS = {"k8s-app": "kube-dns"}
DNS_PORT = 53
# What `podnet probe` expects from a DNS pod's port 53: the DNS server answers there, not
# the stand-in, so a well-formed DNS response is the reply (probing.send).
DNS_IDENTITY = "<cluster DNS>"


def is_dns_pod(namespace: str | None, labels: dict[str, str], host_network: bool) -> bool:
    """A pod the cluster DNS server answers in (the kube-dns Service's pods): the one rule,
    for the DNS server's list, the stand-in and the probe's expectations."""
    return (
        namespace == DNS_NAMESPACE
        and labels.get("k8s-app") == DNS_LABELS["k8s-app"]
        and not host_network
    )
