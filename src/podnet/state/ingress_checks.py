"""The input-wide rules of Ingresses, checked at `up` and `apply` with the rest of the next
state (InputError: one line per problem, nothing changed), and the status the controller
writes on the Ingresses it serves.

A backend must name a Service of the Ingress's namespace and one of its ports, by number or
by name. A real API server accepts a dangling reference (the controller then answers 503);
podnet refuses it at once, because a typo there is the commonest Ingress mistake and the
store is the user's input. A Service deleted later leaves the reference dangling: the
controller serves 503 for it and reports it (docs/ingress.md), and a later `apply` checks
only the Ingresses it creates or changes (an admission check, as the API server's are), so
an unrelated change is not refused for a stored Ingress it does not touch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from podnet.model.errors import InputError, Origin, Problem
from podnet.model.ingress import Ingress, IngressStatus
from podnet.model.kinds import identity
from podnet.model.service import LoadBalancerIngress, LoadBalancerStatus, Service
from podnet.state.ingress_classes import default_classes, served
from podnet.state.ingress_identity import NAMESPACE, SERVICE

if TYPE_CHECKING:  # the local path of `apply` (state.ingress_local) does without the build
    from podnet.model.cluster import Cluster


def problems(cluster: Cluster, unchanged: Collection[int] = ()) -> list[Problem]:
    """The problems of the Ingresses of `cluster` but those in `unchanged` (ids of stored
    objects the change keeps as they are)."""
    services = {s.key: s for s in cluster.services}
    several_defaults = len(default_classes(cluster.ingress_classes)) > 1
    out: list[Problem] = []
    for ing in cluster.ingresses:
        if id(ing) in unchanged:
            continue
        ident = identity("Ingress", ing.metadata.namespace, ing.metadata.name)
        out += ingress_problems(ing, cluster.origins.get(ident), services.get, several_defaults)
    return out


def ingress_problems(
    ing: Ingress,
    origin: Origin | None,
    service: Callable[[str], Service | None],
    several_defaults: bool,
) -> list[Problem]:
    """The problems of one Ingress: `service(namespace/name)` looks its backends up (the
    whole next state's Services, or the stored ones for a local change, state.ingress_local)."""
    ident = identity("Ingress", ing.metadata.namespace, ing.metadata.name)
    out: list[Problem] = []
    if several_defaults and ing.class_name is None:
        out.append(
            Problem(
                origin,
                ident,
                "spec.ingressClassName",
                "Required value: several IngressClasses are marked as the default "
                "(ingressclass.kubernetes.io/is-default-class); name one",
            )
        )
    for path, backend in ing.spec.backends():
        svc = service(f"{ing.metadata.namespace}/{backend.name}")
        if svc is None:
            out.append(
                Problem(
                    origin,
                    ident,
                    f"{path}.name",
                    f'Not found: Service "{backend.name}" in namespace "{ing.metadata.namespace}"',
                )
            )
            continue
        if _port(svc, backend.port.name, backend.port.number) is None:
            want = backend.port.name or backend.port.number
            have = ", ".join(
                f"{p.port}" + (f" ({p.name})" if p.name else "")
                for p in svc.spec.ports
                if p.protocol == "TCP"
            )
            out.append(
                Problem(
                    origin,
                    ident,
                    f"{path}.port",
                    f"Not found: Service {svc.key} has no TCP port {want!r} "
                    f"(its TCP ports: {have or 'none'})",
                )
            )
    return out


def check(cluster: Cluster, unchanged: Collection[int] = ()) -> None:
    found = problems(cluster, unchanged)
    if found:
        raise InputError(found)


def _port(svc: Service, name: str | None, number: int | None) -> int | None:
    for p in svc.spec.ports:
        if p.protocol == "TCP" and (p.name == name if name else p.port == number):
            return p.port
    return None


def with_ingress_status(cluster: Cluster) -> Cluster:
    """status.loadBalancer.ingress of every Ingress podnet serves: the controller Service's
    load-balancer addresses (what ingress-nginx's status updater publishes); the others'
    status is left as it is (another controller's to write)."""
    ctl = next(
        (s for s in cluster.services if s.key == f"{NAMESPACE}/{SERVICE}"),
        None,
    )
    if ctl is None or not cluster.ingresses:
        return cluster
    ours = {i.key for i in served(cluster.ingresses, cluster.ingress_classes)}
    status = status_of(ctl)

    def updated(ing: Ingress) -> Ingress:
        if ing.key not in ours or ing.status == status:
            return ing
        return ing.model_copy(update={"status": status})

    return dataclasses.replace(cluster, ingresses=tuple(updated(i) for i in cluster.ingresses))


def status_of(controller: Service) -> IngressStatus:
    """The status of an Ingress podnet serves, from the controller Service."""
    lb = tuple(
        LoadBalancerIngress(ip=i.ip) for i in controller.status.load_balancer.ingress if i.ip
    )
    return IngressStatus(load_balancer=LoadBalancerStatus(ingress=lb))
