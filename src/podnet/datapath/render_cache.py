"""render_node with the peer computations shared between nodes (same text, much faster).

`podnet.render.policy_nft.NodeRuleset` evaluates every peer of every admitting rule for every
pod it renders, pod by pod, on every node: at 1,000 policies over 1,000 pods that is a
million `match_pod` calls and 45 s per sync. The answers depend only on the peer and the
policy's namespace, so this subclass computes each peer's pods once per sync with the
vectorised selector compiler of `podnet.policy.matrix` (the same one the analyzer's matrix
uses, held equal to the evaluator by the property tests), then shares the result between all
pods and nodes. The rendered text is identical (tests/test_nft_sync.py compares them).

Kept here rather than in render/policy_nft.py while that file is being worked on; it belongs
there (NodeRuleset taking a shared cache) and can move in one step.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from podnet.model.networkpolicy import NetworkPolicy, NetworkPolicyPeer
from podnet.policy.addresses import AddressSet
from podnet.policy.classes import classify
from podnet.policy.endpoints import PodEndpoint
from podnet.policy.engine import Engine
from podnet.policy.matrix import _Compiler
from podnet.policy.peers import ipblock_set
from podnet.policy.verdict import Direction
from podnet.render.policy_nft import NodeRuleset


class SharedPeers:
    """Per engine (one sync): peer -> pods and addresses, computed once."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._compiler: _Compiler | None = None
        self._class_of: np.ndarray | None = None
        self._addresses: np.ndarray | None = None
        self.addresses: dict[tuple[int, str], AddressSet] = {}
        self.candidates: dict[tuple[int, str], list[PodEndpoint]] = {}
        self.selecting = _SelectingCache(engine)

    def matching_pods(self, peer: NetworkPolicyPeer, policy_ns: str) -> list[PodEndpoint]:
        pods = self.engine.pods
        return [pods[i] for i in np.flatnonzero(self._mask(peer, policy_ns))]

    def matching_addresses(self, peer: NetworkPolicyPeer, policy_ns: str) -> list[int]:
        if self._addresses is None:
            self._addresses = np.fromiter(
                (p.address for p in self.engine.pods), dtype=np.int64, count=len(self.engine.pods)
            )
        return [int(a) for a in self._addresses[self._mask(peer, policy_ns)]]

    def _mask(self, peer: NetworkPolicyPeer, policy_ns: str) -> np.ndarray:
        if self._compiler is None:
            # Classes by namespace, labels, ports and host network; ipBlock peers never
            # come here, so no address atoms are needed.
            classes = classify(self.engine.pods, [])
            self._compiler = _Compiler(self.engine, classes)
            self._class_of = classes.class_of
        assert self._class_of is not None
        return self._compiler.peer(peer, policy_ns)[self._class_of]


class _SelectingCache:
    """The engine, with `selecting` answered once per (namespace, labels, direction): the
    answer depends on nothing else of the pod."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._cache: dict[tuple[object, ...], list[NetworkPolicy]] = {}

    def __getattr__(self, name: str) -> object:
        return getattr(self._engine, name)

    def selecting(self, pod: PodEndpoint, direction: Direction) -> list[NetworkPolicy]:
        key = (pod.namespace, tuple(sorted(pod.labels.items())), pod.host_network, direction)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._engine.selecting(pod, direction)
        return found


class CachedRuleset(NodeRuleset):
    def __init__(self, engine: Engine, node: str, cluster: str, shared: SharedPeers) -> None:
        super().__init__(engine, node, cluster)
        self.shared = shared
        self.e = shared.selecting  # type: ignore[assignment]

    def _peer_addresses(self, peers: Iterable[NetworkPolicyPeer], policy_ns: str) -> AddressSet:
        key = (id(peers), policy_ns)  # the peers tuple lives as long as the cluster
        found = self.shared.addresses.get(key)
        if found is None:
            # NodeRuleset._peer_addresses, with pod addresses from the shared vectors.
            ips: list[int] = []
            blocks = AddressSet()
            for peer in peers:
                if peer.ip_block is not None:
                    s = ipblock_set(peer.ip_block)
                    if self.e.ipblock_pods == "ignore":
                        s = s.minus(self._cluster_addrs)
                    blocks = blocks.union(s)
                    continue
                ips += self.shared.matching_addresses(peer, policy_ns)
            found = AddressSet.of((a, a) for a in ips).union(blocks)
            self.shared.addresses[key] = found
        return found

    def _matching_pods(self, peer: NetworkPolicyPeer, policy_ns: str) -> list[PodEndpoint]:
        return self.shared.matching_pods(peer, policy_ns)

    def _egress_candidates(
        self, peers: tuple[NetworkPolicyPeer, ...] | None, ns: str
    ) -> list[PodEndpoint]:
        key = (id(peers), ns)
        found = self.shared.candidates.get(key)
        if found is None:
            found = self.shared.candidates[key] = super()._egress_candidates(peers, ns)
        return found


def render_node_cached(engine: Engine, node: str, cluster: str, shared: SharedPeers) -> str:
    return CachedRuleset(engine, node, cluster, shared).build()
