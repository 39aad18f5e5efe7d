"""Whether one NetworkPolicyPeer matches one endpoint, and why not.

Reference (NetworkPolicyPeer): "podSelector ... If namespaceSelector is also set, then the
NetworkPolicyPeer as a whole selects the Pods matching PodSelector in the Namespaces selected
by NamespaceSelector. Otherwise it selects the Pods matching PodSelector in the policy's own
namespace." "namespaceSelector ... If podSelector is also set ... Otherwise it selects all
Pods in the Namespaces selected by NamespaceSelector." "ipBlock defines policy on a
particular IPBlock."
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from podnet.model.networkpolicy import IPBlock, NetworkPolicyPeer
from podnet.policy.addresses import AddressSet, net_interval
from podnet.policy.endpoints import PodEndpoint

IpBlockPods = Literal["match", "ignore"]
# How a hostNetwork pod is read (docs/policy-semantics.md, "Host-network pods"): "node", its
# traffic is its node's, which no podSelector selects and no policy isolates; "pod", it is a
# pod like any other, at its node's address.
HostNetworkPods = Literal["node", "pod"]


def ipblock_set(block: IPBlock) -> AddressSet:
    """The ipBlock's addresses: "a particular CIDR ... except" — cidr minus every except.

    podnet models an IPv4 single-stack cluster: an IPv6 ipBlock holds no address of it.
    """
    if block.network.version != 4:
        return AddressSet()
    return AddressSet((net_interval(block.network),)).minus(
        AddressSet.of(net_interval(e) for e in block.excepts)
    )


@dataclass(frozen=True, slots=True)
class PeerMatch:
    matched: bool
    why: str  # for a miss: the nearest reason; for a match: what matched
    nearness: int = 0  # how many of the peer's conditions held (to pick the nearest miss)


def match_pod(
    peer: NetworkPolicyPeer,
    policy_ns: str,
    ep: PodEndpoint,
    ns_labels: Mapping[str, Mapping[str, str]],
    ipblock_pods: IpBlockPods,
    hostnetwork_pods: HostNetworkPods = "node",
) -> PeerMatch:
    if peer.ip_block is not None:
        block = peer.ip_block
        if ipblock_pods == "ignore":
            return PeerMatch(
                False,
                f"ipBlock {block.cidr} matches only addresses outside the cluster "
                f"(--ipblock-pods ignore), not pod {ep.key}",
            )
        if ipblock_set(block).contains(ep.address):
            return PeerMatch(True, f"ipBlock {_block_text(block)} holds {ep.ip}")
        return PeerMatch(False, f"ipBlock {_block_text(block)} does not hold {ep.key} ({ep.ip})")
    if ep.host_network and hostnetwork_pods == "node":
        # Undefined by the API; here, as in most implementations, a host-network pod's
        # traffic is its node's traffic, which no pod or namespace selector matches.
        return PeerMatch(False, f"{ep.key} uses the host network: selectors do not match it")
    labels = ns_labels.get(ep.namespace, {})
    if peer.namespace_selector is None:
        if ep.namespace != policy_ns:
            return PeerMatch(
                False,
                f"podSelector without namespaceSelector selects pods of namespace {policy_ns} "
                f"only; {ep.key} is in namespace {ep.namespace}",
            )
        ns_text = f"namespace {policy_ns} (the policy's own)"
    else:
        miss = peer.namespace_selector.first_miss(labels)
        if miss is not None:
            return PeerMatch(
                False,
                f"namespaceSelector {peer.namespace_selector} does not match namespace "
                f"{ep.namespace} {_labels(labels)} (no {miss})",
            )
        ns_text = f"namespaceSelector {peer.namespace_selector}"
    if peer.pod_selector is None:
        return PeerMatch(True, f"{ns_text} selects all its pods", 1)
    miss = peer.pod_selector.first_miss(ep.labels)
    if miss is not None:
        return PeerMatch(
            False,
            f"podSelector {peer.pod_selector} does not match pod {ep.key} "
            f"{_labels(ep.labels)} (no {miss}) [{ns_text} matches]",
            1,
        )
    return PeerMatch(True, f"{ns_text} and podSelector {peer.pod_selector} match {ep.key}", 2)


def external_set(peer: NetworkPolicyPeer) -> AddressSet:
    """The outside addresses a peer matches: only ipBlocks match anything outside."""
    return ipblock_set(peer.ip_block) if peer.ip_block is not None else AddressSet()


def _block_text(block: IPBlock) -> str:
    return block.cidr + (f" except {', '.join(block.except_)}" if block.except_ else "")


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(labels.items())) + "}"
