"""Policy counters: the nft counters a node's ruleset keeps, attributed back to the
NetworkPolicies that own them (what `podnet get networkpolicies` shows). Pure."""

from __future__ import annotations

from collections.abc import Mapping

from podnet.policy.engine import Engine, policy_name
from podnet.policy.verdict import Direction
from podnet.render import kernel_names as names


def policy_counts(
    engine: Engine, counters: Mapping[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    """{"ns/name": (accepted, dropped)} connections per policy, from the summed counters.

    Only a connection's first packet (`ct state new`) reaches the per-pod chains, so packets
    counted are connections (a retransmitted SYN that is rejected again counts again).
    Accepted: the policy's own counter `pol_<h>_accept` (the first admitting rule counts).
    Dropped: a pod's `in_drop_` / `eg_drop_` counter, attributed to every policy that
    isolates that pod in that direction (each of them would have had to admit it)."""
    out: dict[str, list[int]] = {}
    for pol in engine.cluster.policies:
        accepted = counters.get(names.policy_accept_counter(policy_name(pol)), (0, 0))[0]
        out[policy_name(pol)] = [accepted, 0]
    for pod in engine.pods:
        if pod.host_network:
            continue
        drops: tuple[tuple[Direction, str], ...] = (
            ("ingress", names.ingress_drop_counter(pod.key)),
            ("egress", names.egress_drop_counter(pod.key)),
        )
        for direction, counter in drops:
            dropped = counters.get(counter, (0, 0))[0]
            if not dropped:
                continue
            for pol in engine.selecting(pod, direction):
                out[policy_name(pol)][1] += dropped
    return {k: (v[0], v[1]) for k, v in out.items()}
