"""The flow log's tags: what a policy rule of a node's table writes to nfnetlink_log when it
decides a new connection, and how the collector (podnet.flowlog) reads the tag back.

Every admitting rule of a pod's chain carries `log prefix "pn:a:<policy hash>:<i|e>:<rule>"
group 7` before its counter's verdict, and every pod chain's final reject carries
`log prefix "pn:d:<i|e>:<pod hash>" group 7`. Only a connection's first packet reaches these
chains (the base chain accepts established and related packets first), so there is one
message per new connection and decision, and one per blocked attempt (a client's retry
is another attempt).

The hashes are the ones of the counter names (kernel_names.nft_hash of "ns/name" of the
policy, of "ns/pod" of the pod): short (nft's prefix holds 127 bytes; these are at most
22), and the collector maps them back through the cluster's own policies and pods.
The rule index is the policy's rule (`spec.ingress[i]` / `spec.egress[i]`), not the
nft rule: one policy rule with several ports becomes several nft rules with one tag.

nfnetlink_log groups belong to a network namespace, so one group number serves every node
of every cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from podnet.nftables.expr import Log
from podnet.policy.verdict import Direction
from podnet.render.kernel_names import nft_hash

GROUP = 7  # the nfnetlink_log group of podnet's policy rules, in each node namespace
TAG = "pn"
_DIR = {"ingress": "i", "egress": "e"}
_DIR_BACK: dict[str, Direction] = {"i": "ingress", "e": "egress"}


@dataclass(frozen=True, slots=True)
class Tag:
    """What a log message's prefix says: a policy rule admitted the connection
    (`verdict` "allowed", `policy_hash` and `rule` set), or a pod's chain rejected it
    (`verdict` "blocked", `pod_hash` set)."""

    verdict: Literal["allowed", "blocked"]
    direction: Direction
    policy_hash: str = ""
    rule: int = -1
    pod_hash: str = ""
    # of the policies that isolated the pod when the rule was written (policies_digest):
    # the collector names them only if its picture of the cluster has the same ones
    policies_hash: str = ""


def policies_digest(policies: Iterable[str]) -> str:
    """A short digest of a set of policy names (`ns/name`)."""
    return nft_hash(",".join(sorted(policies)))


def admitted(policy_key: str, direction: Direction, rule: int) -> Log:
    """The log statement of an admitting rule of policy `ns/name`, its rule `rule`."""
    return Log(GROUP, f"{TAG}:a:{nft_hash(policy_key)}:{_DIR[direction]}:{rule}")


def rejected(pod_key: str, direction: Direction, policies: Iterable[str]) -> Log:
    """The log statement of the final reject of pod `ns/name`'s chain, which `policies`
    isolate."""
    digest = policies_digest(policies)
    return Log(GROUP, f"{TAG}:d:{_DIR[direction]}:{nft_hash(pod_key)}:{digest}")


def parse(prefix: str) -> Tag | None:
    """The tag of a prefix, or None when it is not one of ours (or malformed)."""
    parts = prefix.split(":")
    if len(parts) < 4 or parts[0] != TAG:
        return None
    try:
        if parts[1] == "a" and len(parts) == 5 and parts[3] in _DIR_BACK:
            return Tag("allowed", _DIR_BACK[parts[3]], policy_hash=parts[2], rule=int(parts[4]))
        if parts[1] == "d" and len(parts) in (4, 5) and parts[2] in _DIR_BACK:
            digest = parts[4] if len(parts) == 5 else ""
            return Tag("blocked", _DIR_BACK[parts[2]], pod_hash=parts[3], policies_hash=digest)
    except ValueError:
        return None
    return None
