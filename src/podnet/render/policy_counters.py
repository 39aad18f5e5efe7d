"""Policy counters: the nft counters a node's ruleset keeps, attributed back to the
NetworkPolicies that own them (what `podnet get networkpolicies` shows). Pure."""

from __future__ import annotations

from collections.abc import Mapping

from podnet.policy.engine import Engine, policy_name
from podnet.policy.verdict import Direction
from podnet.render.policy_nft import counter_name, short_hash


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
        out[policy_name(pol)] = [counters.get(counter_name(pol, "accept"), (0, 0))[0], 0]
    for pod in engine.pods:
        if pod.host_network:
            continue
        drops: tuple[tuple[Direction, str], ...] = (("ingress", "in_drop_"), ("egress", "eg_drop_"))
        for direction, prefix in drops:
            dropped = counters.get(f"{prefix}{short_hash(pod.key)}", (0, 0))[0]
            if not dropped:
                continue
            for pol in engine.selecting(pod, direction):
                out[policy_name(pol)][1] += dropped
    return {k: (v[0], v[1]) for k, v in out.items()}
