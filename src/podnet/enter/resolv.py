"""The /etc/resolv.conf that `podnet exec` shows a command, as kubelet writes it.

kubelet's ClusterFirst policy (the default; containerd writes the file in this order):

    search NS.svc.cluster.local svc.cluster.local cluster.local
    nameserver 10.96.0.10
    options ndots:5

Nodes, hostNetwork pods (ClusterFirst falls back to the node's file for them) and the
internet client get a file with no nameserver: the host's resolvers are outside the sealed
fabric and unreachable from it, and pretending otherwise would only make lookups hang.
The files live in the cluster's state directory and are bind-mounted over /etc/resolv.conf
in a private mount namespace: no host file is written.
"""

from __future__ import annotations

from pathlib import Path

from podnet.state.files import StateFiles, write_atomic


def pod_resolv(namespace: str, dns_ip: str, domain: str) -> str:
    search = f"{namespace}.svc.{domain} svc.{domain} {domain}"
    return f"search {search}\nnameserver {dns_ip}\noptions ndots:5\n"


OUTSIDE_RESOLV = (
    "# podnet: no nameserver. The host's resolvers are outside the sealed fabric;\n"
    "# cluster DNS is for pods (dnsPolicy ClusterFirst), not for nodes or the internet.\n"
)


def resolv_file(root: Path, name: str, content: str) -> Path:
    """The file holding `content` in the state directory, (re)written when it differs."""
    path = StateFiles(root).exec_dir / f"{name}.resolv.conf"
    try:
        if path.read_text() == content:
            return path
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, content)
    return path
