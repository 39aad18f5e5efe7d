"""The per-pair evaluator: exact NetworkPolicy semantics, with the reasons for `explain`.

The vectorised matrix (matrix.py) computes the same function for every pair at once; the
property tests hold the two equal.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from podnet.model.cluster import Cluster
from podnet.model.networkpolicy import NetworkPolicy, Rule
from podnet.model.quarantine_label import is_quarantine
from podnet.policy.addresses import AddressSet
from podnet.policy.endpoints import PodEndpoint, patched_endpoints, pod_endpoints
from podnet.policy.peers import HostNetworkPods, IpBlockPods, PeerMatch, external_set, match_pod
from podnet.policy.ports import PortProto, ports_admit
from podnet.policy.verdict import Direction, DirectionVerdict, RuleMiss, Verdict
from podnet.state.placement import Placement, place


@dataclass(frozen=True, slots=True)
class External:
    """A peer outside the cluster: every address of a CIDR (all must be allowed)."""

    text: str
    addresses: AddressSet

    @property
    def key(self) -> str:
        return self.text


Endpoint = PodEndpoint | External


def policy_name(p: NetworkPolicy) -> str:
    return f"{p.metadata.namespace}/{p.metadata.name}"


class Engine:
    """NetworkPolicy semantics over one cluster snapshot and its placement."""

    def __init__(
        self,
        cluster: Cluster,
        placement: Placement | None = None,
        ipblock_pods: IpBlockPods = "match",
        hostnetwork_pods: HostNetworkPods = "node",
        like: Engine | None = None,
        changed: Collection[tuple[str, str]] | None = None,
    ) -> None:
        """`like`: the engine of an earlier snapshot of the same cluster, whose endpoints of
        unchanged pods (the very same pod objects) are taken over; with `changed`, the
        (namespace, name) of every pod that may differ from that snapshot in any way (its
        object or its placement), the others are not even looked at."""
        self.cluster = cluster
        self.placement = placement or place(cluster)
        self.ipblock_pods = ipblock_pods
        self.hostnetwork_pods = hostnetwork_pods
        known: dict[int, tuple[object, PodEndpoint]] = {}
        self.by_key: dict[str, PodEndpoint]
        # For what is derived from an engine (render.policy_nft.PeerIndex): the engine this
        # one was patched from and the pods that differ. Only one step back is kept, so
        # that a daemon's engines do not hold on to every predecessor.
        self.previous: tuple[Engine, Collection[tuple[str, str]]] | None = None
        if like is not None and changed is not None:
            self.previous = (like, changed)
            like.previous = None
        if like is not None and changed is not None:
            self.pods: list[PodEndpoint] = patched_endpoints(
                like.pods, cluster, self.placement, changed
            )
            self.by_key = dict(like.by_key)
            for ns, name in changed:
                self.by_key.pop(f"{ns}/{name}", None)
            for ns, name in changed:
                e = self._endpoint_of(ns, name)
                if e is not None:
                    self.by_key[e.key] = e
        else:
            if like is not None:
                old_pods: list[PodEndpoint] = like.pods
                known = {id(p): (p, e) for p, e in zip(like.cluster.pods, old_pods, strict=True)}
            self.pods = pod_endpoints(cluster, self.placement, known)
            self.by_key = {p.key: p for p in self.pods}
        self.ns_labels: Mapping[str, Mapping[str, str]] = {
            n.metadata.name: n.metadata.labels for n in cluster.namespaces
        }
        self._outside: dict[int, AddressSet] = {}  # id(rule) -> what its ipBlocks hold
        self.policies_by_ns: dict[str, list[NetworkPolicy]] = defaultdict(list)
        for pol in cluster.policies:
            self.policies_by_ns[pol.metadata.namespace or "default"].append(pol)

    def _endpoint_of(self, ns: str, name: str) -> PodEndpoint | None:
        i = bisect_left(self.pods, (ns, name), key=lambda e: (e.namespace, e.name))
        hit = self.pods[i] if i < len(self.pods) else None
        return hit if hit is not None and (hit.namespace, hit.name) == (ns, name) else None

    def selecting(self, pod: PodEndpoint, direction: Direction) -> list[NetworkPolicy]:
        """Policies that isolate `pod` for `direction`.

        "podSelector selects the pods to which this NetworkPolicy object applies" — within
        the policy's namespace; policyTypes says which directions it affects. Host-network
        pods are never selected (their traffic is the node's) unless read as pods.
        """
        if self.is_node_traffic(pod):
            return []
        kind = "Ingress" if direction == "ingress" else "Egress"
        pols = [
            p
            for p in self.policies_by_ns.get(pod.namespace, ())
            if kind in p.spec.policy_types and p.spec.pod_selector.matches(pod.labels)
        ]
        # Quarantine (podnet's, docs/policy-semantics.md): a policy labelled
        # podnet.io/quarantine that selects the pod for this direction is a deny evaluated
        # before the additive allows, as an AdminNetworkPolicy Deny at top priority, its
        # own rules (the kept forensic path) allows before that deny. So only the quarantine
        # policies' rules count, and every other policy's allow is overridden.
        quarantine = [p for p in pols if is_quarantine(p.metadata.labels)]
        return quarantine or pols

    def overridden(self, pod: PodEndpoint, direction: Direction) -> list[NetworkPolicy]:
        """Policies that would select `pod` for `direction` but a quarantine overrides."""
        chosen = self.selecting(pod, direction)
        if not chosen or not is_quarantine(chosen[0].metadata.labels):
            return []
        kind = "Ingress" if direction == "ingress" else "Egress"
        return [
            p
            for p in self.policies_by_ns.get(pod.namespace, ())
            if kind in p.spec.policy_types
            and p.spec.pod_selector.matches(pod.labels)
            and not is_quarantine(p.metadata.labels)
        ]

    def is_node_traffic(self, pod: PodEndpoint) -> bool:
        """A hostNetwork pod read as its node (--hostnetwork-pods node, the default)."""
        return pod.host_network and self.hostnetwork_pods == "node"

    def allowed(self, src: Endpoint, dst: Endpoint, pp: PortProto) -> bool:
        return self.explain(src, dst, pp, trace=False).allowed

    def explain(self, src: Endpoint, dst: Endpoint, pp: PortProto, trace: bool = True) -> Verdict:
        v = Verdict(src.key, dst.key, pp.port, pp.protocol, allowed=True)
        if isinstance(src, External) and isinstance(dst, External):
            v.reason = "neither end is a pod: NetworkPolicy does not apply"
            return v
        both_pods = isinstance(src, PodEndpoint) and isinstance(dst, PodEndpoint)
        if both_pods and src.key == dst.key:
            # A pod's traffic to itself goes over its own loopback and never reaches
            # the pod network (upstream e2e: reachability.AllowLoopback()).
            v.reason = "a pod reaching itself (loopback) is always allowed"
            return v
        if isinstance(dst, PodEndpoint) and (pp.port, pp.protocol) in dst.localhost:
            v.allowed = False
            v.reason = f"{dst.key} binds {pp} to 127.0.0.1 (podnet.io/localhost-ports): only its own containers reach it"
            return v
        if (
            isinstance(src, PodEndpoint)
            and isinstance(dst, PodEndpoint)
            and (self.is_node_traffic(src) or self.is_node_traffic(dst))
            and src.node == dst.node
        ):
            # "traffic to and from the node where a Pod is running is always allowed"
            v.reason = f"traffic between a pod and its own node ({src.node}) is always allowed"
            return v
        if isinstance(src, PodEndpoint):
            v.egress = self._direction("egress", src, dst, pp, trace)
        if isinstance(dst, PodEndpoint):
            v.ingress = self._direction("ingress", dst, src, pp, trace)
        v.allowed = all(d.allowed for d in (v.egress, v.ingress) if d is not None)
        return v

    def _direction(
        self,
        direction: Direction,
        subject: PodEndpoint,
        peer: Endpoint,
        pp: PortProto,
        trace: bool,
    ) -> DirectionVerdict:
        """Judge one direction at `subject`: ingress at the destination, egress at the source.

        "If any NetworkPolicy objects select a particular pod, and that policy has a
        policyTypes containing [the direction], then the pod is isolated for it ... the only
        allowed connections are those allowed by the list of rules of any policy that
        applies" — the union of every rule of every selecting policy.
        """
        dv = DirectionVerdict(direction, subject.key, allowed=True, isolated=False)
        if self.is_node_traffic(subject):
            dv.note = f"{subject.key} uses the host network: no policy selects it"
            return dv
        policies = self.selecting(subject, direction)
        dv.policies = [policy_name(p) for p in policies]
        if not policies:
            dv.note = f"no policy selects {subject.key} for {direction}: not isolated"
            return dv
        dv.isolated, dv.allowed = True, False
        if trace and is_quarantine(policies[0].metadata.labels):
            others = ", ".join(policy_name(p) for p in self.overridden(subject, direction))
            dv.note = f"{subject.key} is quarantined: only {', '.join(dv.policies)} counts" + (
                f" ({others} overridden)" if others else ""
            )
        dst = subject if direction == "ingress" else peer
        dst_pod = dst if isinstance(dst, PodEndpoint) else None
        covered = AddressSet()
        for pol in policies:
            ns = pol.metadata.namespace or "default"
            for i, rule in enumerate(pol.spec.rules(direction)):
                name = f"{policy_name(pol)} {direction}[{i}]"
                if not ports_admit(rule.ports, pp, dst_pod):
                    if trace:
                        dv.misses.append(RuleMiss(name, self._port_miss(rule.ports, pp, dst_pod)))
                    continue
                peers = rule.peers
                if not peers:
                    # "If this field is empty or missing, this rule matches all sources
                    # (traffic not restricted by source)" / "... all destinations".
                    dv.allowed = True
                    dv.admitted_by.append(
                        f"{name} (all {'sources' if direction == 'ingress' else 'destinations'}, port {pp})"
                    )
                    if not trace:
                        return dv
                    continue
                if isinstance(peer, External):
                    held = self._outside_set(rule)
                    covered = covered.union(held) if covered else held
                    if covered.covers(peer.addresses):
                        dv.allowed = True
                        dv.admitted_by.append(f"{name} (ipBlock)")
                        if not trace:
                            return dv
                    elif trace:
                        dv.misses.append(
                            RuleMiss(name, f"no ipBlock of this rule holds all of {peer.text}")
                        )
                    continue
                matches = [
                    match_pod(p, ns, peer, self.ns_labels, self.ipblock_pods, self.hostnetwork_pods)
                    for p in peers
                ]
                hit = next((m for m in matches if m.matched), None)
                if hit is not None:
                    dv.allowed = True
                    dv.admitted_by.append(f"{name}: {hit.why}")
                    if not trace:
                        return dv
                elif trace:
                    dv.misses.append(RuleMiss(name, _nearest(matches)))
        if not rules_exist(policies, direction) and trace and not dv.note:
            dv.note = f"the selecting policies have no {direction} rules: all {direction} is denied"
        return dv

    def _outside_set(self, rule: Rule) -> AddressSet:
        """The outside addresses a rule's peers hold (only ipBlocks hold any), computed once
        per rule: the rules belong to self.cluster, so their ids stay theirs."""
        held = self._outside.get(id(rule))
        if held is None:
            held = AddressSet.of(i for p in rule.peers or () for i in external_set(p).intervals)
            self._outside[id(rule)] = held
        return held

    @staticmethod
    def _port_miss(ports: object, pp: PortProto, dst: PodEndpoint | None) -> str:
        listed = ", ".join(_port_text(p) for p in ports or ())  # type: ignore[attr-defined]
        if dst is not None and any(isinstance(p.port, str) for p in ports or ()):  # type: ignore[attr-defined]
            named = (
                ", ".join(f"{n.name}={n.port}/{n.protocol}" for n in dst.ports if n.name) or "none"
            )
            return f"port {pp} is not among {listed} (named ports of {dst.key}: {named})"
        return f"port {pp} is not among {listed}"


def rules_exist(policies: list[NetworkPolicy], direction: Direction) -> bool:
    return any(p.spec.rules(direction) for p in policies)


def _nearest(matches: list[PeerMatch]) -> str:
    return max(matches, key=lambda m: m.nearness).why


def _port_text(p: object) -> str:
    port = getattr(p, "port", None)
    end = getattr(p, "end_port", None)
    proto = getattr(p, "protocol", "TCP")
    if port is None:
        return f"all/{proto}"
    return f"{port}-{end}/{proto}" if end else f"{port}/{proto}"
