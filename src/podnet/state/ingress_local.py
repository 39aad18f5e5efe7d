"""An `apply` of Ingresses checked against the stored objects they name, not the whole next
state (state.local_change decides what is local; issue 10's sync target).

The whole-state path builds the cluster, adds the controller where missing
(state.ingress_addon), checks every Ingress's backends against every Service
(state.ingress_checks) and writes `status.loadBalancer.ingress` of the Ingresses podnet
serves. For new or updated Ingresses in a cluster whose controller is complete, the same
comes from a few stored objects: the Services the backends name, the IngressClasses, and
the controller Service (its load-balancer address). No other rule between objects reads an
Ingress (placement and kernel names never look at them), so the same input gets the same
problems, lines and stored bodies as on the whole path (tests/test_ingress_local.py
compares the two).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from podnet.model.errors import InputError, Problem
from podnet.model.ingress import IngressClass, IngressStatus
from podnet.model.load import Loaded
from podnet.model.service import Service
from podnet.state.ingress_checks import ingress_problems, status_of
from podnet.state.ingress_classes import class_of, default_classes
from podnet.state.ingress_identity import CLASS, CONTROLLER, NAMESPACE, SERVICE, pod_name
from podnet.state.store import Store

# The stored object of a key as the model reads it (None: absent, or refused by the model).
Read = Callable[[str, str, str], Any]


def checked_ingresses(
    store: Store, ingresses: list[Loaded], read: Read
) -> list[IngressStatus | None] | None:
    """For each Ingress (in the given order) the status the whole path writes (podnet
    serves it), or None (its status stays as given). None instead of the list when the
    change needs the whole path: the controller add-on incomplete (that path adds it), or
    a stored object read here that the model refuses (that path reports it). InputError
    as the whole path raises it: every problem of these Ingresses, in (namespace, name)
    order."""
    classes = _classes(store, read)
    if classes is None:
        return None
    if store.get_meta("ingress_addon") != "off" and not _controller_complete(store, classes):
        return None
    services: dict[str, Service | None] = {}
    refused: list[str] = []

    def service(key: str) -> Service | None:
        if key not in services:
            ns, name = key.split("/", 1)
            svc = read("Service", ns, name)
            if svc is None and store.get("Service", ns, name) is not None:
                refused.append(key)
            services[key] = svc if isinstance(svc, Service) else None
        return services[key]

    several_defaults = len(default_classes(classes)) > 1
    problems: list[Problem] = []
    ordered = sorted(ingresses, key=lambda o: (o.obj.metadata.namespace, o.obj.metadata.name))
    for o in ordered:
        problems += ingress_problems(o.obj, o.origin, service, several_defaults)
    if refused:
        return None
    if problems:
        raise InputError(problems)
    ctl = read("Service", NAMESPACE, SERVICE)
    status = status_of(ctl) if isinstance(ctl, Service) else None
    out: list[IngressStatus | None] = []
    for o in ingresses:
        cls = class_of(o.obj, classes)
        ours = status is not None and cls is not None and cls.spec.controller == CONTROLLER
        out.append(status if ours else None)
    return out


def _classes(store: Store, read: Read) -> list[IngressClass] | None:
    """Every stored IngressClass (a handful), or None when one does not validate."""
    out = []
    for ns, name, _ in store.versions("IngressClass"):
        cls = read("IngressClass", ns, name)
        if not isinstance(cls, IngressClass):
            return None
        out.append(cls)
    return out


def _controller_complete(store: Store, classes: list[IngressClass]) -> bool:
    """Nothing for state.ingress_addon.with_ingress_controller to add."""
    return (
        store.get("Namespace", None, NAMESPACE) is not None
        and store.get("Pod", NAMESPACE, pod_name()) is not None
        and store.get("Service", NAMESPACE, SERVICE) is not None
        and any(c.spec.controller == CONTROLLER or c.metadata.name == CLASS for c in classes)
    )
