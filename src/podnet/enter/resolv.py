"""The /etc/resolv.conf that `podnet exec` shows a command, as kubelet writes it
(pkg/kubelet/network/dns: getPodDNSType, then appendDNSConfig).

dnsPolicy (the API's field comments):
- ClusterFirst (the default): "DNS queries that do not match the configured cluster domain
  suffix are forwarded to an upstream nameserver"; the pod gets the cluster's DNS, its
  search path and `ndots:5`. A hostNetwork pod falls back to Default.
- ClusterFirstWithHostNet: ClusterFirst, for hostNetwork pods too.
- Default: "the Pod inherits the name resolution configuration from the node".
- None: "all DNS settings are supplied using the dnsConfig field".

Then dnsConfig is merged in: its nameservers and searches appended after the policy's
(duplicates dropped, first kept), its options merged by name (a dnsConfig option replaces
the policy's of the same name, e.g. ndots). Limits as kubelet enforces them: 3 nameservers
(glibc reads no more), 32 search domains and 2,048 characters of search list.

The node's own file (what Default and hostNetwork pods inherit) has no nameserver: the
host's resolvers are outside the sealed fabric and unreachable from it, and pretending
otherwise would only make lookups hang. The files live in the cluster's state directory and
are bind-mounted over /etc/resolv.conf in a private mount namespace: no host file is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from podnet.state.files import StateFiles, write_if_changed

MAX_NAMESERVERS = 3  # glibc's MAXNS; kubelet drops the rest
MAX_SEARCHES = 32  # kubelet's maxDNSSearchPaths
MAX_SEARCH_CHARS = 2048  # kubelet's maxDNSSearchListChars
CLUSTER_OPTIONS = ("ndots:5",)  # kubelet's defaultDNSOptions


@dataclass(frozen=True)
class PodDNS:
    """A pod's DNS fields (spec.dnsPolicy, spec.dnsConfig, spec.hostNetwork), as plain
    values: this package reads no model."""

    policy: str = "ClusterFirst"
    host_network: bool = False
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[tuple[str, str | None], ...] = ()  # (name, value)
    configured: bool = False  # spec.dnsConfig was given


def pod_resolv(namespace: str, dns_ip: str, domain: str) -> str:
    """ClusterFirst for a pod without dnsConfig: what nearly every pod gets."""
    return kubelet_resolv(PodDNS(), namespace, dns_ip, domain)


def kubelet_resolv(pod: PodDNS, namespace: str, dns_ip: str, domain: str) -> str:
    policy = pod.policy
    if policy == "ClusterFirst" and pod.host_network:
        policy = "Default"
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        servers = [dns_ip]
        searches = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain]
        options = list(CLUSTER_OPTIONS)
    # Default: the node's file, which has nothing to add (see the module's docstring).
    if pod.configured:
        servers = _unique([*servers, *pod.nameservers])
        searches = _unique([*searches, *pod.searches])
        options = _merge_options(options, pod.options)
    return _text(servers[:MAX_NAMESERVERS], _fit(searches), options, policy)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _merge_options(base: list[str], extra: tuple[tuple[str, str | None], ...]) -> list[str]:
    """kubelet's mergeDNSOptions: one option per name, dnsConfig's value winning."""
    merged: dict[str, str | None] = {}
    for opt in base:
        key, _, text = opt.partition(":")
        merged[key] = text or None
    for key, value in extra:
        merged[key] = value
    return [f"{n}:{v}" if v is not None else n for n, v in merged.items()]


def _fit(searches: list[str]) -> list[str]:
    """At most MAX_SEARCHES domains and MAX_SEARCH_CHARS characters, as kubelet trims."""
    out: list[str] = []
    size = 0
    for s in searches[:MAX_SEARCHES]:
        size += len(s) + (1 if out else 0)
        if size > MAX_SEARCH_CHARS:
            break
        out.append(s)
    return out


def _text(servers: list[str], searches: list[str], options: list[str], policy: str) -> str:
    if not servers and not searches and not options:
        return OUTSIDE_RESOLV
    lines = []
    if searches:
        lines.append("search " + " ".join(searches))
    lines += [f"nameserver {s}" for s in servers]
    if options:
        lines.append("options " + " ".join(options))
    if not servers:  # Default (the node's file) or None without nameservers
        lines.insert(0, f"# podnet: dnsPolicy {policy}: no nameserver inside the sealed fabric")
    return "\n".join(lines) + "\n"


OUTSIDE_RESOLV = (
    "# podnet: no nameserver. The host's resolvers are outside the sealed fabric;\n"
    "# cluster DNS is for pods (dnsPolicy ClusterFirst), not for nodes or the internet.\n"
)


def resolv_file(root: Path, name: str, content: str) -> Path:
    """The file holding `content` in the state directory, (re)written when it differs."""
    return write_if_changed(StateFiles(root).exec_dir / f"{name}.resolv.conf", content)
