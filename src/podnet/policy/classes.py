"""Equivalence classes of pods: pods the policies cannot tell apart share one class.

Two pods behave identically as source and destination when they have the same namespace,
labels, declared ports, host-network flag (and node, for host-network pods, whose traffic is
their node's), and lie in the same atom of the address space cut by every ipBlock. The
vectorised matrix is computed over classes and expanded to pods at the end; realistic
clusters have far fewer classes than pods (replicas share everything but their name).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from podnet.model.networkpolicy import NetworkPolicy
from podnet.policy.endpoints import PodEndpoint

if TYPE_CHECKING:  # imported where used: the pair by pair analysis numbers classes without it
    import numpy as np


@dataclass(frozen=True)
class PodClasses:
    class_of: np.ndarray  # (N,) int: the class of each pod
    reps: list[PodEndpoint]  # one representative pod per class
    ip: np.ndarray  # (C,) uint32 address of each representative


def ipblock_networks(policies: tuple[NetworkPolicy, ...]) -> list[ipaddress.IPv4Network]:
    nets: set[ipaddress.IPv4Network] = set()
    for pol in policies:
        for rule in (*(pol.spec.ingress or ()), *(pol.spec.egress or ())):
            peers = getattr(rule, "from_", None) or getattr(rule, "to", None) or ()
            for peer in peers:
                if peer.ip_block is not None:
                    nets.add(peer.ip_block.network)  # type: ignore[arg-type]
                    nets.update(peer.ip_block.excepts)  # type: ignore[arg-type]
    return sorted(
        (n for n in nets if n.version == 4), key=lambda n: (int(n.network_address), n.prefixlen)
    )


def selected_label_keys(policies: tuple[NetworkPolicy, ...]) -> frozenset[str]:
    """Every pod label key some podSelector of a policy reads (its own or a peer's): a label
    no selector reads cannot tell two pods apart, so the classes need not keep it (a
    StatefulSet's `statefulset.kubernetes.io/pod-name` would otherwise make a class a pod)."""
    keys: set[str] = set()
    for pol in policies:
        selectors = [pol.spec.pod_selector]
        for direction in ("ingress", "egress"):
            for rule in pol.spec.rules(direction):
                peers = rule.peers or ()
                selectors += [p.pod_selector for p in peers if p.pod_selector is not None]
        for sel in selectors:
            keys.update(sel.match_labels)
            keys.update(r.key for r in sel.match_expressions)
    return frozenset(keys)


def in_network(ips: np.ndarray, net: ipaddress.IPv4Network) -> np.ndarray:
    import numpy as np

    mask = np.uint32(int(net.netmask))
    return (ips & mask) == np.uint32(int(net.network_address))


def class_key(
    p: PodEndpoint, atom: bytes = b"", label_keys: frozenset[str] | None = None
) -> tuple[object, ...]:
    """What makes two pods indistinguishable to every policy (`atom`: the ipBlock networks
    that hold its address, packed)."""
    return (
        p.namespace,
        tuple(
            sorted(
                p.labels.items()
                if label_keys is None
                else ((k, v) for k, v in p.labels.items() if k in label_keys)
            )
        ),
        p.ports,
        p.localhost,
        p.host_network,
        p.node if p.host_network else "",
        atom,
    )


def classify(
    pods: list[PodEndpoint],
    nets: list[ipaddress.IPv4Network],
    label_keys: frozenset[str] | None = None,
) -> PodClasses:
    """Classes of pods; with `label_keys`, only those labels count (see selected_label_keys)."""
    import numpy as np

    n = len(pods)
    ips = np.fromiter((p.address for p in pods), dtype=np.uint32, count=n)
    # Which ipBlock networks hold each pod: one bit column per network, packed per pod.
    if nets and n:
        member = np.stack([in_network(ips, net) for net in nets], axis=1)
        atoms = np.packbits(member, axis=1)
        atom_keys = [row.tobytes() for row in atoms]
    else:
        atom_keys = [b""] * n
    keys: dict[tuple[object, ...], int] = {}
    class_of = np.empty(n, dtype=np.int64)
    reps: list[PodEndpoint] = []
    for i, p in enumerate(pods):
        key = class_key(p, atom_keys[i], label_keys)
        c = keys.get(key)
        if c is None:
            c = keys[key] = len(reps)
            reps.append(p)
        class_of[i] = c
    rep_ips = np.fromiter((p.address for p in reps), dtype=np.uint32, count=len(reps))
    return PodClasses(class_of, reps, rep_ips)


def class_numbers(pods: list[PodEndpoint], nets: list[ipaddress.IPv4Network]) -> list[int]:
    """classify(pods, nets).class_of without numpy: the same classes, numbered alike (in
    the order of their first pod), for the pair by pair analysis of small questions."""
    cuts = [(int(net.netmask), int(net.network_address)) for net in nets]
    keys: dict[tuple[object, ...], int] = {}
    out = []
    for p in pods:
        atom = bytes((p.address & mask) == base for mask, base in cuts) if cuts else b""
        out.append(keys.setdefault(class_key(p, atom), len(keys)))
    return out
