"""Grouping pods that behave identically, so that a matrix of hundreds of pods stays readable.

Pods of one policy class (same namespace, labels, ports, address atom) are indistinguishable
to every policy; a group is named by its namespace and the longest common name prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

from podnet.policy.answer_set import Indices
from podnet.policy.endpoints import PodEndpoint


@dataclass(frozen=True)
class Group:
    label: str
    members: tuple[int, ...]  # pod indices


def group_pods(
    indices: Indices, pods: list[PodEndpoint], class_of: Indices, by_class: bool
) -> list[Group]:
    if not by_class:
        return [Group(pods[i].key, (int(i),)) for i in indices]
    buckets: dict[int, list[int]] = {}
    for i in indices:
        buckets.setdefault(int(class_of[i]), []).append(int(i))
    out = []
    for members in buckets.values():
        if len(members) == 1:
            out.append(Group(pods[members[0]].key, tuple(members)))
            continue
        ns = pods[members[0]].namespace
        prefix = _common_prefix([pods[i].name for i in members]).rstrip("-") or "*"
        out.append(Group(f"{ns}/{prefix}* ({len(members)})", tuple(members)))
    return sorted(out, key=lambda g: g.label)


def _common_prefix(names: list[str]) -> str:
    first, last = min(names), max(names)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]
