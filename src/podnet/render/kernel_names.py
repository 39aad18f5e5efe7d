"""Kernel names derived from identity.

Every network namespace podnet creates is called `podnet.<cluster>.<role>[.<identity>]`. A
cluster name is a DNS label (no dots), so the prefix `podnet.<cluster>.` belongs to exactly one
cluster: `down` finds leftovers by it even when the store is gone.

Link names live inside those namespaces, so they need no cluster name, but they must fit
IFNAMSIZ: 16 bytes with the trailing NUL, 15 usable. A link named after a pod or node is
`<readable>-<hash>`: up to 6 readable characters of the name, a dash, and 8 hex digits of a
SHA-256 over the full identity (budget 6 + 1 + 8 = 15). Two identities that share a hash on one
node are refused by the renderer rather than silently merged.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

IFNAMSIZ = 15  # usable bytes of a Linux interface name (IFNAMSIZ 16 minus the NUL)
NETNS_NAME_MAX = 255  # a netns is a file under /run/netns: NAME_MAX
CLUSTER_NAME_MAX = 32  # leaves room for `podnet.<cluster>.pod.<ns>.` in NAME_MAX
PREFIX = "podnet"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# Link names that are fixed by convention (Calico/flannel/kind spellings).
POD_IF = "eth0"  # in a pod, and a node's uplink to the fabric
FABRIC_BRIDGE = "br0"
INTERNET_PORT = "internet"  # the fabric's port towards the internet namespace
VXLAN_IF = "flannel.1"  # flannel's device for VNI 1
# Calico gives every host-side veth this MAC; pods hold a permanent neighbour for it.
GATEWAY_MAC = "ee:ee:ee:ee:ee:ee"
GATEWAY_IP = "169.254.1.1"


def check_cluster_name(name: str) -> str | None:
    """None when `name` can name a cluster, else the reason it cannot."""
    if len(name) > CLUSTER_NAME_MAX:
        return (
            f"cluster name {name!r} is {len(name)} characters; at most {CLUSTER_NAME_MAX} fit "
            "the kernel names podnet derives from it"
        )
    if not _DNS_LABEL.match(name):
        return (
            f"cluster name {name!r} must be a DNS label (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit)"
        )
    return None


def short_hash(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def netns_prefix(cluster: str) -> str:
    return f"{PREFIX}.{cluster}."


def fabric_netns(cluster: str) -> str:
    return f"{netns_prefix(cluster)}fabric"


def internet_netns(cluster: str) -> str:
    return f"{netns_prefix(cluster)}internet"


def node_netns(cluster: str, node: str) -> str:
    return _bounded(f"{netns_prefix(cluster)}node.{node}", cluster, "node", node)


def pod_netns(cluster: str, namespace: str, pod: str) -> str:
    # Namespace names are DNS labels (no dots): `<ns>.<pod>` splits back unambiguously.
    return _bounded(f"{netns_prefix(cluster)}pod.{namespace}.{pod}", cluster, "pod", namespace, pod)


def _bounded(name: str, cluster: str, role: str, *identity: str) -> str:
    """Long identities (a pod name may have 253 characters) fall back to a hash."""
    if len(name) <= NETNS_NAME_MAX:
        return name
    return f"{netns_prefix(cluster)}{role}.{short_hash(*identity, length=16)}"


def readable_ifname(name: str, *identity: str) -> str:
    """`<up to 6 readable chars>-<8 hex>`: at most IFNAMSIZ, unique per identity."""
    readable = re.sub(r"[^a-z0-9-]", "-", name.lower())[:6].strip("-") or "x"
    out = f"{readable}-{short_hash(*identity)}"
    assert len(out) <= IFNAMSIZ, out
    return out


def pod_veth(namespace: str, pod: str) -> str:
    """The node-side end of a pod's veth pair (Calico calls it cali<hash>)."""
    return readable_ifname(pod, "pod", namespace, pod)


def node_port(node: str) -> str:
    """The fabric-side end of a node's uplink, enslaved to the fabric bridge."""
    return readable_ifname(node, "node", node)


def pod_mac(cluster: str, namespace: str, pod: str) -> str:
    """A stable, locally administered MAC for a pod's eth0: the node holds a permanent
    neighbour entry for it (no ARP: the kernel's neighbour table is shared by all
    namespaces and overflows at gc_thresh3, 1024 by default, in a 1,000-pod cluster)."""
    h = short_hash(cluster, "pod", namespace, pod, length=10)
    return "0a:" + ":".join(h[i : i + 2] for i in range(0, 10, 2))


def vtep_mac(cluster: str, node: str) -> str:
    """A stable, locally administered unicast MAC for a node's VXLAN device."""
    h = short_hash(cluster, "vtep", node, length=10)
    return "0e:" + ":".join(h[i : i + 2] for i in range(0, 10, 2))


# ---- nftables (NetworkPolicy; one table per node namespace) -------------------------------
# Object names inside the table need no cluster name (the table carries it). nft allows
# 256 bytes per name; podnet's are `<prefix>-<10 hex>` or `<what>_<10 hex>[_accept]`: short
# enough to read in `nft list ruleset`, and 40 bits of SHA-256 make a collision among the
# few thousand objects of a node's table practically impossible.
NFT_TABLE_PREFIX = "podnet_"
NFT_FAMILY: Final = "inet"
NFT_HASH_LEN = 10
FORWARD_CHAIN = "forward"  # the base chain, on the forward hook
INGRESS_MAP = "ingress-pods"  # pod IP -> jump to its ingress chain
EGRESS_MAP = "egress-pods"  # pod IP -> jump to its egress chain
INGRESS_CHAIN = "in"  # `in-<hash of the chain's rules>`: one per pod isolated for ingress
EGRESS_CHAIN = "eg"  # `eg-<hash ...>`, for egress
PEER_SET = "peer"  # `peer-<hash of the elements>`: peer addresses, shared by all chains
PORT_SET = "np"  # `np-<hash ...>`: (pod ip, protocol, port) of a named port


def table_name(cluster: str) -> str:
    """`podnet_<cluster>`, in every node namespace of the cluster."""
    # Cluster names are DNS labels (no '_'), so this mapping cannot collide.
    return NFT_TABLE_PREFIX + cluster.replace("-", "_")


def nft_hash(text: str) -> str:
    """The short hash in podnet's nft object names."""
    return short_hash(text, length=NFT_HASH_LEN)


def nft_object(prefix: str, content: str) -> str:
    """`<prefix>-<hash of content>`: a chain or set named after what it holds, so that
    equal contents share one name and a changed content is a new object."""
    return f"{prefix}-{nft_hash(content)}"


def policy_accept_counter(policy_key: str) -> str:
    """`pol_<hash of "ns/name">_accept`: connections a NetworkPolicy admitted."""
    return f"pol_{nft_hash(policy_key)}_accept"


def ingress_drop_counter(pod_key: str) -> str:
    """`in_drop_<hash of "ns/pod">`: connections to the pod that no policy admitted."""
    return f"in_drop_{nft_hash(pod_key)}"


def egress_drop_counter(pod_key: str) -> str:
    """`eg_drop_<hash of "ns/pod">`: connections from the pod that no policy admitted."""
    return f"eg_drop_{nft_hash(pod_key)}"


# ---- nftables (Services: kube-proxy's nftables mode, in the same table) ------------------
# Static objects: always these names while the cluster has a Service with a virtual IP.
SERVICE_IPS_MAP = "service-ips"  # ip . proto . port -> goto the Service's chain
SERVICE_NODEPORTS_MAP = "service-nodeports"  # proto . nodePort -> goto its external chain
NO_ENDPOINT_SERVICES_MAP = "no-endpoint-services"  # ip . proto . port -> reject (no endpoint)
NO_ENDPOINT_NODEPORTS_MAP = "no-endpoint-nodeports"  # proto . nodePort -> reject
NAT_PREROUTING_CHAIN = "nat-prerouting"
NAT_OUTPUT_CHAIN = "nat-output"
NAT_POSTROUTING_CHAIN = "nat-postrouting"
SERVICES_CHAIN = "services"
MASQUERADING_CHAIN = "masquerading"
MARK_MASQ_CHAIN = "mark-for-masquerade"
FILTER_INPUT_CHAIN = "filter-input"
FILTER_FORWARD_CHAIN = "filter-forward"
FILTER_OUTPUT_CHAIN = "filter-output"
SERVICE_CHECK_CHAIN = "service-endpoints-check"
NODEPORT_CHECK_CHAIN = "nodeport-endpoints-check"
REJECT_CHAIN = "reject-chain"
MASQ_BIT = 0x4000  # kube-proxy's masquerade mark bit
SERVICE_STATIC_NAMES = frozenset(
    {
        SERVICE_IPS_MAP, SERVICE_NODEPORTS_MAP, NO_ENDPOINT_SERVICES_MAP,
        NO_ENDPOINT_NODEPORTS_MAP, NAT_PREROUTING_CHAIN, NAT_OUTPUT_CHAIN,
        NAT_POSTROUTING_CHAIN, SERVICES_CHAIN, MASQUERADING_CHAIN, MARK_MASQ_CHAIN,
        FILTER_INPUT_CHAIN, FILTER_FORWARD_CHAIN, FILTER_OUTPUT_CHAIN, SERVICE_CHECK_CHAIN,
        NODEPORT_CHECK_CHAIN, REJECT_CHAIN,
    }
)  # fmt: skip
# Per Service port and per endpoint: `<prefix>-<10 hex of the identity>-<identity>`, as
# kube-proxy's `service-HASH-ns/name/tcp/port`. Named by identity, not content, so a
# changed endpoint list rewrites one chain in place (an incremental update flushes and
# refills it) and every other Service's objects stay as they are. Budget: nft names may
# hold 255 bytes; the identity is at most 63 (ns) + 63 (name) + 4 + 15 (port name) + 4
# slashes, an endpoint's adds `__` + 21 (`255.255.255.255/65535`): 3 + 1 + 10 + 1 + 171 < 255.
SERVICE_CHAIN = "svc"  # the cluster chain: a random ready endpoint (affinity first)
LOCAL_CHAIN = "svl"  # the same over this node's endpoints (a Local traffic policy)
EXTERNAL_CHAIN = "ext"  # NodePort / LB / externalIP traffic: masquerade or keep the client
ENDPOINT_CHAIN = "ep"  # DNAT to one endpoint (ClientIP affinity only: its set update)
AFFINITY_SET = "aff"  # `aff-<hash of the endpoint chain's identity>`: ClientIP affinity
_SERVICE_PREFIXES = tuple(
    f"{p}-" for p in (SERVICE_CHAIN, LOCAL_CHAIN, EXTERNAL_CHAIN, ENDPOINT_CHAIN, AFFINITY_SET)
)


def service_object(prefix: str, identity: str) -> str:
    """`svc-<hash>-ns/name/tcp/port` and the like; affinity sets have the hash only."""
    h = nft_hash(identity)
    return f"{prefix}-{h}" if prefix == AFFINITY_SET else f"{prefix}-{h}-{identity}"


def is_service_object(name: str) -> bool:
    """Whether a table object belongs to the Service rules (not to the policy rules)."""
    return name in SERVICE_STATIC_NAMES or name.startswith(_SERVICE_PREFIXES)


# ---- nftables (`podnet trace`: a short-lived chain in the same table) --------------------
TRACE_CHAIN = "trace"  # `trace-<8 hex>`: one per run of `podnet trace`


def trace_chain(token: str) -> str:
    """`trace-<8 hex>`: a trace chain, named per run so that two traces never share one; a
    full sync (which replaces the table) removes one a crashed trace left behind."""
    return f"{TRACE_CHAIN}-{short_hash('trace', token)}"
