"""The /etc/hosts that `podnet exec` shows a pod's command, as kubelet writes it
(pkg/kubelet/kubelet_pods.go: managedHostsFileContent, GeneratePodHostNameAndDomain).

- The pod's hostname is `spec.hostname`, else the pod's name cut to 63 characters (a
  hostname is one DNS label; kubelet's truncatePodHostnameIfNeeded also drops the `-` and
  `.` the cut leaves at the end).
- With `spec.subdomain`, the pod's address maps to its FQDN first, then the short name:
  `<hostname>.<subdomain>.<ns>.svc.<cluster domain>	<hostname>` (the name that the
  headless Service named like the subdomain gives it in DNS); without, to the short name.
- `spec.hostAliases` follow under kubelet's own heading, one line per address.
- A hostNetwork pod gets the node's file: the node's namespace shares this machine's
  /etc/hosts, so kubelet's host-network heading, then that file, then the aliases.

The files live in the cluster's state directory and are bind-mounted over /etc/hosts in the
command's private mount namespace, as resolv.conf is (podnet.enter.resolv): no host file is
written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from podnet.state.files import StateFiles, write_if_changed

HEADER = "# Kubernetes-managed hosts file.\n"
HEADER_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"
LOCAL = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)
HOSTNAME_MAX = 63  # one DNS label


@dataclass(frozen=True)
class PodHosts:
    """A pod's naming fields (metadata.name, spec.hostname, spec.subdomain,
    spec.hostAliases as (ip, hostnames)), as plain values: this package reads no model."""

    name: str
    hostname: str | None = None
    subdomain: str | None = None
    aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()


def pod_hostname(pod: PodHosts) -> str:
    """kubelet's hostname of a pod (also what `hostname` prints inside it)."""
    if pod.hostname:
        return pod.hostname
    if len(pod.name) <= HOSTNAME_MAX:
        return pod.name
    return pod.name[:HOSTNAME_MAX].rstrip("-.")


def pod_domain(pod: PodHosts, namespace: str, cluster_domain: str) -> str:
    """`<subdomain>.<ns>.svc.<cluster domain>`, or "" without a subdomain."""
    return f"{pod.subdomain}.{namespace}.svc.{cluster_domain}" if pod.subdomain else ""


def kubelet_hosts(pod: PodHosts, ips: list[str], namespace: str, cluster_domain: str) -> str:
    hostname = pod_hostname(pod)
    domain = pod_domain(pod, namespace, cluster_domain)
    lines = [HEADER, LOCAL]
    for ip in ips:
        lines.append(
            f"{ip}\t{hostname}.{domain}\t{hostname}\n" if domain else f"{ip}\t{hostname}\n"
        )
    return "".join(lines) + _aliases(pod)


def host_network_hosts(pod: PodHosts, node_file: str) -> str:
    return HEADER_HOST_NETWORK + node_file + _aliases(pod)


def _aliases(pod: PodHosts) -> str:
    """kubelet's hostsEntriesFromHostAliases: a blank line, a heading, one line per entry."""
    if not pod.aliases:
        return ""
    lines = ["\n# Entries added by HostAliases.\n"]
    lines += [f"{ip}\t{chr(9).join(names)}\n" for ip, names in pod.aliases]
    return "".join(lines)


def hosts_file(root: Path, name: str, content: str) -> Path:
    """The file holding `content` in the state directory, (re)written when it differs."""
    return write_if_changed(StateFiles(root).exec_dir / f"{name}.hosts", content)
