"""What `podnet exec TARGET` enters: a pod (NS/POD), a node (node/NAME) or `internet`."""

from __future__ import annotations

from dataclasses import dataclass

from podnet.enter.hosts import PodHosts, host_network_hosts, kubelet_hosts, pod_hostname
from podnet.enter.resolv import OUTSIDE_RESOLV, PodDNS, kubelet_resolv, pod_resolv
from podnet.render.runtime import Runtime

USAGE = "NS/POD, node/NAME or internet"


class TargetError(Exception):
    """No such pod, node or container: one line for the user."""


@dataclass(frozen=True)
class Target:
    netns: str
    hostname: str
    resolv_name: str  # file name stem in <statedir>/exec/
    resolv: str  # the file's content
    label: str  # for messages: "pod default/a", "node node-1", "the internet client"
    hosts_name: str = ""  # file name stem in <statedir>/exec/ of the pod's /etc/hosts
    hosts: str | None = None  # its content; None: /etc/hosts is left as it is


def resolve(
    runtime: Runtime,
    spec: str,
    container: str | None = None,
    dns: PodDNS | None = None,
    naming: PodHosts | None = None,
    node_hosts: str = "",
) -> Target:
    """`dns`: the pod's dnsPolicy and dnsConfig (None: ClusterFirst without dnsConfig);
    `naming`: its hostname, subdomain and hostAliases (None: the pod's name only);
    `node_hosts`: the node's /etc/hosts, which a hostNetwork pod's file starts from."""
    if spec == "internet":
        _no_container(spec, container)
        return Target(
            runtime.internet_netns, "internet", "outside", OUTSIDE_RESOLV, "the internet client"
        )
    kind, sep, name = spec.partition("/")
    if not sep or not kind or not name or "/" in name:
        raise TargetError(f"{spec!r}: a target is {USAGE}")
    if kind == "node" and (node := runtime.node(name)) is not None:
        _no_container(spec, container)
        return Target(node.netns, node.name, "outside", OUTSIDE_RESOLV, f"node {name}")
    pod = runtime.pod(spec)
    if pod is None:
        if kind == "node":
            known = ", ".join(n.name for n in runtime.nodes) or "none"
            raise TargetError(f"no node {name} in cluster {runtime.cluster} (nodes: {known})")
        raise TargetError(f"no pod {spec} in cluster {runtime.cluster}")
    names = [c.name for c in pod.containers]
    if container is not None and container not in names:
        raise TargetError(
            f"pod {spec} has no container {container} (containers: {', '.join(names) or 'none'})"
        )
    dns = dns or PodDNS(host_network=pod.host_network)
    resolv = kubelet_resolv(dns, pod.namespace, runtime.dns_ip, runtime.dns_domain)
    if resolv == OUTSIDE_RESOLV:
        name = "outside"
    elif resolv == pod_resolv(pod.namespace, runtime.dns_ip, runtime.dns_domain):
        name = f"pod-{pod.namespace}"
    else:  # a dnsConfig or policy of its own
        name = f"pod-{pod.namespace}.{pod.name}"
    naming = naming or PodHosts(pod.name)
    if pod.host_network:  # the node's namespace, name and hosts file (kubelet's heading)
        host, hosts = pod.node, host_network_hosts(naming, node_hosts)
    else:
        host = pod_hostname(naming)
        hosts = kubelet_hosts(naming, [pod.ip], pod.namespace, runtime.dns_domain)
    return Target(
        pod.netns, host, name, resolv, f"pod {spec}", f"pod-{pod.namespace}.{pod.name}", hosts
    )


def _no_container(spec: str, container: str | None) -> None:
    if container is not None:
        raise TargetError(f"-c {container}: {spec} has no containers; -c applies to pods")
