"""The ingress controller add-on: what `helm install ingress-nginx` puts in a cluster, added
by `up` (and by an `apply` that brings the first Ingress) the way `state.addons` adds
cluster DNS (docs/ingress.md, "When the controller is installed").

- Namespace `ingress-nginx`;
- Pod `ingress-nginx/ingress-nginx-controller-<hash>-<5>` (the shape of a Deployment's pod,
  derived, not random), ports http 80, https 443 (nginx's, in the pod's namespace) and
  metrics 10254 (the stand-in's, which proves the pod is up, as a kubelet probe would);
- Service `ingress-nginx/ingress-nginx-controller`, type LoadBalancer (an address from the
  fabric's pool) with externalTrafficPolicy Local, so that the client's address reaches
  nginx unmasqueraded and X-Forwarded-For/X-Real-IP carry it, as the cloud manifests of
  ingress-nginx do;
- IngressClass `nginx` (spec.controller `k8s.io/ingress-nginx`) unless the input has a class
  of that controller; it is the default class unless the input names another default.

The analyzer adds nothing (it answers about the manifests as given).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from podnet.model.cluster import Cluster
from podnet.model.cluster_objects import Namespace
from podnet.model.ingress import DEFAULT_CLASS_ANNOTATION, IngressClass, IngressClassSpec
from podnet.model.meta import ObjectMeta
from podnet.model.pod import Container, ContainerPort, Pod, PodSpec
from podnet.model.service import Service, ServicePort, ServiceSpec
from podnet.state.ingress_identity import (
    CLASS,
    CONTROLLER,
    HTTP_PORT,
    HTTPS_PORT,
    METRICS_PORT,
    NAMESPACE,
    SERVICE,
    is_ingress_pod,
    pod_name,
)

LABELS = {
    "app.kubernetes.io/name": "ingress-nginx",
    "app.kubernetes.io/instance": "ingress-nginx",
    "app.kubernetes.io/component": "controller",
}
NS_NAME_LABEL = "kubernetes.io/metadata.name"


def wanted(cluster: Cluster) -> bool:
    """`up --ingress auto`: an input with an Ingress or an IngressClass gets the controller."""
    return bool(cluster.ingresses or cluster.ingress_classes)


def _namespace() -> Namespace:
    return Namespace(metadata=ObjectMeta(name=NAMESPACE, labels={NS_NAME_LABEL: NAMESPACE}))


def _pod() -> Pod:
    ports = (
        ContainerPort(name="http", container_port=HTTP_PORT, protocol="TCP"),
        ContainerPort(name="https", container_port=HTTPS_PORT, protocol="TCP"),
        ContainerPort(name="metrics", container_port=METRICS_PORT, protocol="TCP"),
    )
    return Pod(
        metadata=ObjectMeta(name=pod_name(), namespace=NAMESPACE, labels=dict(LABELS)),
        spec=PodSpec(containers=(Container(name="controller", image="nginx", ports=ports),)),
    )


def _service() -> Service:
    spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "externalTrafficPolicy": "Local",
        "selector": dict(LABELS),
        "ports": [
            ServicePort(name="http", port=HTTP_PORT, target_port="http"),
            ServicePort(name="https", port=HTTPS_PORT, target_port="https"),
        ],
    }
    return Service(
        metadata=ObjectMeta(name=SERVICE, namespace=NAMESPACE, labels=dict(LABELS)),
        spec=ServiceSpec.model_validate(spec),
    )


def _class(default: bool) -> IngressClass:
    annotations = {DEFAULT_CLASS_ANNOTATION: "true"} if default else {}
    return IngressClass(
        metadata=ObjectMeta(name=CLASS, labels=dict(LABELS), annotations=annotations),
        spec=IngressClassSpec(controller=CONTROLLER),
    )


def installed(cluster: Cluster) -> bool:
    return any(is_ingress_pod(p.metadata.namespace, p.metadata.name) for p in cluster.pods)


def with_ingress_controller(cluster: Cluster) -> Cluster:
    """The cluster with the controller's namespace, pod, Service and class, where missing."""

    def key(o: Any) -> tuple[str, str]:
        return (o.metadata.namespace or "", o.metadata.name)

    update: dict[str, Any] = {}
    if not any(n.metadata.name == NAMESPACE for n in cluster.namespaces):
        update["namespaces"] = tuple(sorted((*cluster.namespaces, _namespace()), key=key))
    if not installed(cluster):
        update["pods"] = tuple(sorted((*cluster.pods, _pod()), key=key))
    if not any(
        s.metadata.namespace == NAMESPACE and s.metadata.name == SERVICE for s in cluster.services
    ):
        update["services"] = tuple(sorted((*cluster.services, _service()), key=key))
    classes = cluster.ingress_classes
    if not any(c.spec.controller == CONTROLLER for c in classes) and not any(
        c.metadata.name == CLASS for c in classes
    ):
        default = not any(c.is_default for c in classes)
        update["ingress_classes"] = tuple(sorted((*classes, _class(default)), key=key))
    return dataclasses.replace(cluster, **update) if update else cluster
