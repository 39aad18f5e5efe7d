"""Which pod nginx runs in, and what a probe expects from its ports 80 and 443.

Kept apart from `state.ingress_addon` (which builds the add-on's model objects), as
`state.dns_identity` is from `state.addons`: the daemon's stand-in needs only this rule and
serves without importing the models.
"""

from __future__ import annotations

import hashlib

NAMESPACE = "ingress-nginx"
CONTROLLER = "k8s.io/ingress-nginx"  # spec.controller of the classes podnet serves
CLASS = "nginx"
SERVICE = "ingress-nginx-controller"
HTTP_PORT, HTTPS_PORT, METRICS_PORT = 80, 443, 10254
NGINX_PORTS = frozenset({(HTTP_PORT, "TCP"), (HTTPS_PORT, "TCP")})
# What `podnet probe` expects from the controller pod's ports 80 and 443: nginx answers
# there (an HTTP status line to the probe's request, on 443 nginx's "plain HTTP request
# was sent to HTTPS port"), not the stand-in.
INGRESS_IDENTITY = "<ingress nginx>"


def pod_name() -> str:
    """`ingress-nginx-controller-<hash>-<5>`, the shape of a Deployment's pod, derived."""
    h = hashlib.sha256(b"podnet/ingress-nginx-controller").hexdigest()
    return f"{SERVICE}-{h[:10]}-{h[10:15]}"


def is_ingress_pod(namespace: str | None, name: str) -> bool:
    """The pod nginx runs in: the one rule, for the stand-in (which leaves ports 80 and 443
    to nginx), the controller and the probe's expectations. A dump's own ingress-nginx pods
    are ordinary pods here: podnet's nginx runs in its own controller pod only."""
    return namespace == NAMESPACE and name == pod_name()
