"""Which nodes' tables a change can touch: the change tracker of an incremental policy sync
(kube-proxy's partial sync). Pure: two engines in, a set of node names out (or None: render
every node).

A node's table (render/policy_nft) is a function of the node's own pods, the policies that
select them, and the peers of those policies' rules (pod addresses, resolved named ports).
So, between two engines that differ only in pods (labels, ports, pods added or deleted),
namespace labels and policies, a node's table can change only if

- one of its own pods changed (its chains are rebuilt from scratch), or
- it holds a pod (before or after) selected by a policy that changed, or by a policy one of
  whose peers matches (before or after) a changed pod or a namespace whose labels changed:
  only such a policy's rules or address sets can differ.

Everything else (nodes, node addresses, a pod that moved or got another address, the
ipBlock reading) answers None: every node is rendered, as in a full sync. The answer may
be larger than needed (an ipBlock is taken without its `except`s, a peerless egress rule
with a named port depends on every pod), never smaller: tests/test_policy_scope.py holds
the rendered tables of the scope plus the previous ones equal to a whole render.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from podnet.model.networkpolicy import NetworkPolicy, NetworkPolicyPeer
from podnet.policy.endpoints import PodEndpoint
from podnet.policy.engine import Engine

PolicyKey = tuple[str, str]


def _policies(engine: Engine) -> dict[PolicyKey, NetworkPolicy]:
    return {
        (p.metadata.namespace or "default", p.metadata.name): p for p in engine.cluster.policies
    }


def _changed(old: Mapping[str, object], new: Mapping[str, object]) -> list[str]:
    return [
        k
        for k in old.keys() | new.keys()
        if old.get(k) is not new.get(k) and old.get(k) != new.get(k)
    ]


def _may_match(
    peer: NetworkPolicyPeer,
    policy_ns: str,
    pod: PodEndpoint,
    ns_labels: Mapping[str, Mapping[str, str]],
) -> bool:
    """A superset of policy.peers.match_pod (host-network pods and ipBlock excepts are
    not looked at): False only when the peer cannot match the pod."""
    if peer.ip_block is not None:
        net = peer.ip_block.network
        return net.version == 4 and pod.address >> (32 - net.prefixlen) == int(
            net.network_address
        ) >> (32 - net.prefixlen)
    if peer.namespace_selector is None:
        if pod.namespace != policy_ns:
            return False
    elif not peer.namespace_selector.matches(ns_labels.get(pod.namespace, {})):
        return False
    return peer.pod_selector is None or peer.pod_selector.matches(pod.labels)


@dataclass(frozen=True)
class _Changes:
    """The changed pods and namespaces, as peers see them."""

    relabelled: list[tuple[PodEndpoint, PodEndpoint]]  # only labels differ: before, after
    other: list[PodEndpoint]  # added, deleted, or more than labels changed (both versions)
    old_ns: Mapping[str, Mapping[str, str]]
    new_ns: Mapping[str, Mapping[str, str]]
    namespaces: list[str]  # whose labels changed (or that came or went)


def _touched_by(pol: NetworkPolicy, c: _Changes) -> bool:
    """Whether a rule of `pol` can have other peers (addresses, or named-port candidates,
    which are the pods at those addresses) after the change: some pod's membership of one
    of its peers may differ."""
    ns = pol.metadata.namespace or "default"
    for direction in ("ingress", "egress"):
        for rule in pol.spec.rules(direction):
            peers = rule.peers
            if not peers:
                # Egress named ports resolve against every pod (labels do not matter).
                named = any(isinstance(rp.port, str) for rp in rule.ports or ())
                if direction == "egress" and named and c.other:
                    return True
                continue
            for peer in peers:
                if any(
                    _may_match(peer, ns, p, c.old_ns) or _may_match(peer, ns, p, c.new_ns)
                    for p in c.other
                ):
                    return True
                if any(
                    _may_match(peer, ns, a, c.old_ns) != _may_match(peer, ns, b, c.new_ns)
                    for a, b in c.relabelled
                ):
                    return True
                sel = peer.namespace_selector
                if sel is not None and any(
                    n not in c.old_ns
                    or n not in c.new_ns
                    or sel.matches(c.old_ns[n]) != sel.matches(c.new_ns[n])
                    for n in c.namespaces
                ):
                    return True
    return False


# id(policy) -> (that policy, the pod label keys its peers' podSelectors read). An unchanged
# policy is the same object from sync to sync (state.follow patches the snapshot), so this
# is computed once per policy, not once per sync; the entry is checked by identity.
_KEYS: dict[int, tuple[NetworkPolicy, frozenset[str]]] = {}


def _peer_keys(pol: NetworkPolicy) -> frozenset[str]:
    hit = _KEYS.get(id(pol))
    if hit is not None and hit[0] is pol:
        return hit[1]
    keys: set[str] = set()
    for direction in ("ingress", "egress"):
        for rule in pol.spec.rules(direction):
            for peer in rule.peers or ():
                sel = peer.pod_selector
                if sel is not None:
                    keys.update(sel.match_labels)
                    keys.update(r.key for r in sel.match_expressions)
    _KEYS[id(pol)] = (pol, frozenset(keys))
    return _KEYS[id(pol)][1]


def _relabel_keys(c: _Changes) -> frozenset[str] | None:
    """The label keys a pure relabelling changed (no pod otherwise changed, no namespace
    relabelled): a policy none of whose peers reads one of them is not touched (its peers'
    answers for the relabelled pods stay the same). None: not such a change."""
    if c.other or c.namespaces:
        return None
    keys: set[str] = set()
    for a, b in c.relabelled:
        keys.update(
            k for k in a.labels.keys() | b.labels.keys() if a.labels.get(k) != b.labels.get(k)
        )
    return frozenset(keys)


def _selected(engine: Engine, pols: Iterable[NetworkPolicy]) -> list[PodEndpoint]:
    """The pods each policy's podSelector picks, in either direction (the engine's pods
    are in the cluster's order: a namespace's are one range of them)."""
    out: list[PodEndpoint] = []
    for pol in pols:
        sel = pol.spec.pod_selector
        ns = pol.metadata.namespace or "default"
        lo = bisect_left(engine.pods, (ns, ""), key=_order)
        hi = bisect_left(engine.pods, (ns + "\0", ""), key=_order)
        out += (p for p in engine.pods[lo:hi] if sel.matches(p.labels))
    return out


def _order(p: PodEndpoint) -> tuple[str, str]:
    return (p.namespace, p.name)


@dataclass(frozen=True)
class Scope:
    """What a change can touch: the nodes whose table may differ, and the pods (keys, of
    either engine) whose part of their node's table may differ (render/policy_nft.PodRules:
    their chains, and the sets and counters those name)."""

    nodes: frozenset[str]
    pods: frozenset[str]


def affected_nodes(old: Engine, new: Engine) -> frozenset[str] | None:
    """The nodes whose table may differ between `old` and `new`; None: possibly all."""
    scope = affected(old, new)
    return None if scope is None else scope.nodes


def affected(old: Engine, new: Engine, pods: Iterable[str] | None = None) -> Scope | None:
    """The nodes and pods whose rules may differ between `old` and `new`; None: possibly
    all. A pod's chains are a function of the pod and of the policies that select it
    (their rules and peers), so they can differ only if the pod changed or a touched
    policy selects it before or after. `pods`: the keys (ns/name) of every pod that may
    differ between the two, when the caller knows them (state.follow does): the others
    are then not compared."""
    if old.ipblock_pods != new.ipblock_pods or old.ipblock_pods != "match":
        return None
    if [n.metadata.name for n in old.cluster.nodes] != [n.metadata.name for n in new.cluster.nodes]:
        return None
    if old.placement.node_ip != new.placement.node_ip:
        return None
    if pods is None:
        pod_keys = _changed(old.by_key, new.by_key)
    else:
        pod_keys = [k for k in pods if old.by_key.get(k) != new.by_key.get(k)]
    before = [old.by_key[k] for k in pod_keys if k in old.by_key]
    after = [new.by_key[k] for k in pod_keys if k in new.by_key]
    relabelled: list[tuple[PodEndpoint, PodEndpoint]] = []
    other: list[PodEndpoint] = []
    for k in pod_keys:
        a, b = old.by_key.get(k), new.by_key.get(k)
        if a is not None and b is not None and (b.node, b.ip) != (a.node, a.ip):
            return None  # a pod that stays must stay where it is, with its address
        if a is not None and b is not None and replace(a, labels=b.labels) == b:
            relabelled.append((a, b))
        else:
            other += [p for p in (a, b) if p is not None]
    changes = _Changes(
        relabelled, other, old.ns_labels, new.ns_labels, _changed(old.ns_labels, new.ns_labels)
    )
    old_pols, new_pols = _policies(old), _policies(new)
    changed_pols = {
        k for k in old_pols.keys() | new_pols.keys()
        if old_pols.get(k) is not new_pols.get(k) and old_pols.get(k) != new_pols.get(k)
    }  # fmt: skip
    hit_pods = before + after
    seen: dict[int, bool] = {}  # id(policy) -> touched; an unchanged policy is one object
    relabel = _relabel_keys(changes)
    if len(_KEYS) > 2 * (len(old_pols) + len(new_pols)) + 64:
        _KEYS.clear()  # policies gone for good
    for engine, pols in ((old, old_pols), (new, new_pols)):
        touched = []
        for key, pol in pols.items():
            hit = seen.get(id(pol))
            if hit is None and relabel is not None and relabel.isdisjoint(_peer_keys(pol)):
                hit = seen[id(pol)] = False
            if hit is None:
                hit = seen[id(pol)] = _touched_by(pol, changes)
            if hit or key in changed_pols:
                touched.append(pol)
        hit_pods += _selected(engine, touched)
    return Scope(frozenset(p.node for p in hit_pods), frozenset(p.key for p in hit_pods))
