"""The cluster add-on every Kubernetes cluster gets at bootstrap and manifests rarely carry:
cluster DNS. kubeadm installs CoreDNS as Deployment `kube-system/coredns` (pods labelled
`k8s-app: kube-dns`) behind Service `kube-system/kube-dns` at the DNS address (10.96.0.10).

A live cluster (`up`) gets whichever of those its input lacks: the Service when no
`kube-dns` Service exists, one DNS pod when no kube-system pod carries the label (a dump of
a real cluster brings its own CoreDNS pods: those are kept and serve). podnet's DNS server
answers inside those pods' namespaces. The analyzer adds nothing: it answers about the
manifests as given.
"""

from __future__ import annotations

import dataclasses
import hashlib

from podnet.model.cluster import Cluster
from podnet.model.cluster_objects import Namespace
from podnet.model.meta import ObjectMeta
from podnet.model.pod import Container, ContainerPort, Pod, PodSpec
from podnet.model.service import Service, ServicePort, ServiceSpec
from podnet.state.dns_identity import (  # noqa: F401 (re-exported)
    DNS_IDENTITY,
    DNS_LABELS,
    DNS_NAMESPACE,
    DNS_PORT,
    DNS_SERVICE,
    is_dns_pod,
)
from podnet.state.network import NetworkConfig

NS_NAME_LABEL = "kubernetes.io/metadata.name"


def dns_pod_name() -> str:
    """`coredns-<hash>-<5>`, the shape of a Deployment's pod, derived (not random)."""
    h = hashlib.sha256(b"podnet/coredns").hexdigest()
    return f"coredns-{h[:10]}-{h[10:15]}"


def _dns_service(net: NetworkConfig) -> Service:
    return Service(
        metadata=ObjectMeta(
            name=DNS_SERVICE,
            namespace=DNS_NAMESPACE,
            labels={**DNS_LABELS, "kubernetes.io/name": "CoreDNS"},
        ),
        spec=ServiceSpec.model_validate(
            {
                "selector": dict(DNS_LABELS),
                "clusterIP": net.dns_ip,
                "clusterIPs": [net.dns_ip],
                "ports": [
                    ServicePort(name="dns", protocol="UDP", port=53, target_port=53),
                    ServicePort(name="dns-tcp", protocol="TCP", port=53, target_port=53),
                    ServicePort(name="metrics", protocol="TCP", port=9153, target_port=9153),
                ],
            }
        ),
    )


def _dns_pod() -> Pod:
    return Pod(
        metadata=ObjectMeta(name=dns_pod_name(), namespace=DNS_NAMESPACE, labels=dict(DNS_LABELS)),
        spec=PodSpec(
            containers=(
                Container(
                    name="coredns",
                    image="podnet/dns",
                    ports=(
                        ContainerPort(name="dns", container_port=53, protocol="UDP"),
                        ContainerPort(name="dns-tcp", container_port=53, protocol="TCP"),
                        ContainerPort(name="metrics", container_port=9153, protocol="TCP"),
                    ),
                ),
            ),
        ),
    )


def with_cluster_dns(cluster: Cluster, net: NetworkConfig) -> Cluster:
    """The cluster with the DNS Service, a DNS pod and kube-system, where missing."""
    has_service = any(
        s.metadata.namespace == DNS_NAMESPACE and s.metadata.name == DNS_SERVICE
        for s in cluster.services
    )
    has_pods = any(
        p.metadata.namespace == DNS_NAMESPACE
        and DNS_LABELS.items() <= p.metadata.labels.items()
        and not p.spec.host_network
        for p in cluster.pods
    )
    has_ns = any(n.metadata.name == DNS_NAMESPACE for n in cluster.namespaces)
    if has_service and has_pods and has_ns:
        return cluster
    update: dict[str, object] = {}
    if not has_ns:
        ns = Namespace(
            metadata=ObjectMeta(name=DNS_NAMESPACE, labels={NS_NAME_LABEL: DNS_NAMESPACE})
        )
        update["namespaces"] = tuple(
            sorted((*cluster.namespaces, ns), key=lambda n: n.metadata.name)
        )
    if not has_pods:
        update["pods"] = tuple(
            sorted(
                (*cluster.pods, _dns_pod()),
                key=lambda p: (p.metadata.namespace or "", p.metadata.name),
            )
        )
    if not has_service:
        update["services"] = tuple(
            sorted(
                (*cluster.services, _dns_service(net)),
                key=lambda s: (s.metadata.namespace or "", s.metadata.name),
            )
        )
    return dataclasses.replace(cluster, **update)  # type: ignore[arg-type]
