"""The connectivity matrix of every pod pair on every port, vectorised.

Per port and direction, each rule is a pair of class masks (who it admits, whom it
protects); the union over rules is a boolean matrix product computed in float32 through
BLAS, in row blocks to bound memory. Rules that do not restrict ports are folded once
for all ports; rules with identical peer masks are merged first. The result equals
Engine.allowed for every pair (tests/test_matrix_property.py holds them equal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np

from podnet.model.networkpolicy import NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort
from podnet.policy.classes import (
    PodClasses,
    classify,
    in_network,
    ipblock_networks,
    selected_label_keys,
)
from podnet.policy.endpoints import PodEndpoint
from podnet.policy.engine import Engine
from podnet.policy.ports import PortProto
from podnet.policy.selector_masks import LabelTable

BLOCK = 2048  # source rows per matrix-product block: 2048 x C float32 at a time


KEEP_ALL_BYTES = 512 * 2**20  # above this, one port's (C, C) matrix is kept at a time


class PortMatrices(Sequence[np.ndarray]):
    """The (C, C) matrix of each port, computed when first asked for. At 100,000 pods there
    are some 23,000 classes: 500 MiB a port, 9 GiB for 18 ports if all were kept, so past
    KEEP_ALL_BYTES only the last one asked for is (readers go port by port)."""

    def __init__(
        self,
        ports: list[PortProto],
        compute: Callable[[PortProto], np.ndarray],
        keep_all: bool,
    ) -> None:
        self._ports = ports
        self._compute = compute
        self._keep_all = keep_all
        self._kept: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._ports)

    @overload
    def __getitem__(self, k: int) -> np.ndarray: ...
    @overload
    def __getitem__(self, k: slice) -> Sequence[np.ndarray]: ...
    def __getitem__(self, k: int | slice) -> np.ndarray | Sequence[np.ndarray]:
        if isinstance(k, slice):
            return [self[i] for i in range(len(self))[k]]
        k = range(len(self))[k]  # negative indices; IndexError past the end
        m = self._kept.get(k)
        if m is None:
            m = self._compute(self._ports[k])
            if not self._keep_all:
                self._kept.clear()
            self._kept[k] = m
        return m


@dataclass
class _Rule:
    """One rule as the connections it admits: from `src` classes to `dst` classes (ingress:
    peers to selected pods; egress: selected pods to peers). Its ports, named ones resolved
    on the destination, narrow `dst` per port."""

    src: np.ndarray  # (C,)
    dst: np.ndarray  # (C,)
    ports: tuple[NetworkPolicyPort, ...] | None


@dataclass
class Matrix:
    """Allowed pairs per port: class-level matrices plus what expands them to pods."""

    pods: list[PodEndpoint]
    ports: list[PortProto]
    classes: PodClasses
    allowed: Sequence[np.ndarray]  # per port: (C, C) bool, [src class, dst class]
    relevant: list[np.ndarray]  # per port: (N,) bool, destinations asked about
    _node_id: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    _node_traffic: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, bool))
    # (N,) each pod's class in `allowed`: classes that ignore labels no selector reads,
    # coarser than `classes` (which reports group pods by)
    _policy_class: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, np.int64))

    def dense(self, k: int, cols: np.ndarray | None = None) -> np.ndarray:
        """(N, len(cols)) bool for port k: every source pod against the given destinations.

        Applies what classes cannot express: a pod reaches itself over loopback, and
        traffic between a host-network pod and the pods of its own node is node traffic.
        """
        cols = np.flatnonzero(self.relevant[k]) if cols is None else cols
        co = self._policy_class
        m = self.allowed[k][co[:, None], co[cols][None, :]]
        hostnet = self._node_traffic
        if hostnet.any():
            same = self._node_id[:, None] == self._node_id[cols][None, :]
            m |= same & (hostnet[:, None] | hostnet[cols][None, :])
        pp = self.ports[k]
        local = [
            pos for pos, j in enumerate(cols) if (pp.port, pp.protocol) in self.pods[j].localhost
        ]
        if local:
            m[:, local] = False  # bound to 127.0.0.1: nobody else reaches it, its node neither
        m[cols, np.arange(len(cols))] = True
        return m

    def pairs(self, k: int) -> Iterator[tuple[int, int, bool]]:
        """(src index, dst index, allowed) for every relevant pair of port k, self excluded."""
        cols = np.flatnonzero(self.relevant[k])
        m = self.dense(k, cols)
        for i in range(len(self.pods)):
            row = m[i]
            for j_pos, j in enumerate(cols):
                if i != j:
                    yield i, int(j), bool(row[j_pos])

    def count(self, k: int) -> tuple[int, int]:
        """(allowed pairs, pairs) of port k over relevant destinations, self pairs excluded."""
        cols = np.flatnonzero(self.relevant[k])
        rows = np.arange(len(self.pods))
        total = len(rows) * len(cols) - len(cols)
        return self.allowed_count(k, rows, cols) - len(cols), total

    def allowed_count(self, k: int, rows: np.ndarray, cols: np.ndarray) -> int:
        """np.count_nonzero(self.dense(k, cols)[rows]) without the (rows x cols) matrix.

        The class matrix is weighted by how many rows and columns each class holds; what
        dense() applies per pod is then added: same-node pairs with a node-traffic pod (a
        handful of nodes' pods), columns bound to localhost (only their own row), and self
        pairs. tests/test_matrix_property.py holds it equal to counting dense().
        """
        if not len(rows) or not len(cols):
            return 0
        pp = self.ports[k]
        local = np.fromiter(
            ((pp.port, pp.protocol) in self.pods[j].localhost for j in cols),
            dtype=bool,
            count=len(cols),
        )
        open_cols = cols[~local]
        co = self._policy_class
        a = self.allowed[k]
        c = len(a)
        # Exact in floating point: float32 holds every integer up to 2**24 (more pods than
        # any cluster has rows), float64 every count of pairs up to 2**53.
        ws = np.bincount(co[rows], minlength=c).astype(np.float32)
        wd = np.bincount(co[open_cols], minlength=c).astype(np.float64)
        count = round(float((ws @ a.astype(np.float32)).astype(np.float64) @ wd))
        count += self._node_traffic_extra(a, rows, open_cols)
        in_rows = np.zeros(len(self.pods), dtype=bool)
        in_rows[rows] = True
        own = open_cols[in_rows[open_cols]]  # open columns whose pod is also a row
        held = a[co[own], co[own]] | self._node_traffic[own]
        count += int(np.count_nonzero(~held))  # self pairs that only the diagonal allows
        count += int(np.count_nonzero(in_rows[cols[local]]))  # localhost: its own row
        return count

    def _node_traffic_extra(self, a: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> int:
        """Pairs on one node with a node-traffic end that the class matrix denies."""
        hostnet = self._node_traffic
        if not hostnet.any():
            return 0
        nodes = np.unique(self._node_id[hostnet])
        co = self._policy_class
        extra = 0
        for n in nodes:
            r = rows[self._node_id[rows] == n]
            d = cols[self._node_id[cols] == n]
            if not len(r) or not len(d):
                continue
            either = hostnet[r][:, None] | hostnet[d][None, :]
            extra += int(np.count_nonzero(either & ~a[co[r][:, None], co[d][None, :]]))
        return extra


class ClassCompiler:
    """Turns policies into class masks, memoising selectors over classes and namespaces."""

    def __init__(self, engine: Engine, classes: PodClasses) -> None:
        self.engine = engine
        self.reps = classes.reps
        self.ip = classes.ip
        self.c = len(self.reps)
        self.pod_labels = LabelTable([p.labels for p in self.reps])
        ns_names = sorted(engine.ns_labels)
        self.ns_index = {n: i for i, n in enumerate(ns_names)}
        self.ns_labels = LabelTable([engine.ns_labels[n] for n in ns_names])
        self.ns_of = np.fromiter(
            (self.ns_index[p.namespace] for p in self.reps), dtype=np.int64, count=self.c
        )
        self.hostnet = np.fromiter(
            (engine.is_node_traffic(p) for p in self.reps), dtype=bool, count=self.c
        )
        self._named: dict[tuple[str, str, int], np.ndarray] = {}
        self._resolved: dict[tuple[str, str], list[frozenset[int]]] = {}

    def in_namespace(self, ns: str) -> np.ndarray:
        idx = self.ns_index.get(ns)
        return self.ns_of == idx if idx is not None else np.zeros(self.c, dtype=bool)

    def selected(self, pol: NetworkPolicy) -> np.ndarray:
        ns = pol.metadata.namespace or "default"
        return self.in_namespace(ns) & self.pod_labels.match(pol.spec.pod_selector) & ~self.hostnet

    def peer(self, peer: NetworkPolicyPeer, policy_ns: str) -> np.ndarray:
        if peer.ip_block is not None:
            if self.engine.ipblock_pods == "ignore" or peer.ip_block.network.version != 4:
                return np.zeros(self.c, dtype=bool)  # only IPv4 addresses exist in the model
            m = in_network(self.ip, peer.ip_block.network)  # type: ignore[arg-type]
            for e in peer.ip_block.excepts:
                m &= ~in_network(self.ip, e)  # type: ignore[arg-type]
            return m
        if peer.namespace_selector is None:
            m = self.in_namespace(policy_ns)
        else:
            m = self.ns_labels.match(peer.namespace_selector)[self.ns_of]
        if peer.pod_selector is not None:
            m = m & self.pod_labels.match(peer.pod_selector)
        return m & ~self.hostnet

    def peers(self, peers: tuple[NetworkPolicyPeer, ...] | None, policy_ns: str) -> np.ndarray:
        if not peers:
            return np.ones(self.c, dtype=bool)
        m = np.zeros(self.c, dtype=bool)
        for p in peers:
            m |= self.peer(p, policy_ns)
        return m

    def named(self, name: str, pp: PortProto) -> np.ndarray:
        """Per class: does the container port called `name` resolve to pp?"""
        key = (name, pp.protocol, pp.port)
        arr = self._named.get(key)
        if arr is None:
            numbers = self._resolved.get((name, pp.protocol))
            if numbers is None:
                numbers = [p.resolve(name, pp.protocol) for p in self.reps]
                self._resolved[(name, pp.protocol)] = numbers
            arr = np.fromiter((pp.port in n for n in numbers), dtype=bool, count=self.c)
            self._named[key] = arr
        return arr

    def admits(
        self, ports: tuple[NetworkPolicyPort, ...] | None, pp: PortProto
    ) -> np.ndarray | bool:
        """Per destination class (or one bool for all): does the rule's port list admit pp?"""
        if not ports:
            return True
        out: np.ndarray | bool = False
        for rp in ports:
            if rp.protocol != pp.protocol:
                continue
            if rp.port is None:
                return True
            if isinstance(rp.port, str):
                out = out | self.named(rp.port, pp)
            elif rp.port <= pp.port <= (rp.end_port or rp.port):
                return True
        return out


def _union_product(left: list[np.ndarray], right: list[np.ndarray], c: int) -> np.ndarray:
    """OR over r of outer(left[r], right[r]) as a (C, C) bool; rules with one left mask merge."""
    merged: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
    for lm, rm in zip(left, right, strict=True):
        if not lm.any() or not rm.any():
            continue
        key = np.packbits(lm).tobytes()
        prev = merged.get(key)
        merged[key] = (lm, rm.copy()) if prev is None else (prev[0], prev[1] | rm)
    out = np.zeros((c, c), dtype=bool)
    if not merged:
        return out
    a = np.stack([lm for lm, _ in merged.values()]).astype(np.float32)  # (R, C) sources
    b = np.stack([rm for _, rm in merged.values()]).astype(np.float32)  # (R, C) destinations
    for start in range(0, c, BLOCK):
        out[start : start + BLOCK] = (a[:, start : start + BLOCK].T @ b) > 0
    return out


def _admitted(rules: list[_Rule], pp: PortProto | None, comp: ClassCompiler) -> np.ndarray:
    """(C, C) bool: pairs some rule admits — with pp None, the rules without ports (any
    port); else the rules with ports, on port pp."""
    src, dst = [], []
    for r in rules:
        if pp is None:
            if not r.ports:
                src.append(r.src)
                dst.append(r.dst)
            continue
        if r.ports:
            a = comp.admits(r.ports, pp)
            if a is not False:
                src.append(r.src)
                dst.append(r.dst & a)
    return _union_product(src, dst, comp.c)


def compute(engine: Engine, ports: list[PortProto], declared_only: bool) -> Matrix:
    """The matrix over `ports`; with declared_only, each destination only on its own ports."""
    pods = engine.pods
    policies = engine.cluster.policies
    nets = ipblock_networks(policies) if engine.ipblock_pods == "match" else []
    classes = classify(pods, nets)
    reduced = classify(classes.reps, nets, selected_label_keys(policies))
    comp = ClassCompiler(engine, reduced)
    c = comp.c
    iso_in = np.zeros(c, dtype=bool)
    iso_eg = np.zeros(c, dtype=bool)
    ingress: list[_Rule] = []
    egress: list[_Rule] = []
    for pol in engine.cluster.policies:
        ns = pol.metadata.namespace or "default"
        sel = comp.selected(pol)
        if not sel.any():
            continue
        if pol.affects_ingress:
            iso_in |= sel
            ingress += [
                _Rule(comp.peers(r.from_, ns), sel, r.ports) for r in pol.spec.ingress or ()
            ]
        if pol.affects_egress:
            iso_eg |= sel
            egress += [_Rule(sel, comp.peers(r.to, ns), r.ports) for r in pol.spec.egress or ()]

    # A direction admits (s, d) when its rules do, or when d (ingress) / s (egress) is not
    # isolated; rules that admit every port are one product for all ports.
    base_in = _admitted(ingress, None, comp) | ~iso_in[None, :]
    base_eg = _admitted(egress, None, comp) | ~iso_eg[:, None]

    def port_matrix(pp: PortProto) -> np.ndarray:
        return (base_in | _admitted(ingress, pp, comp)) & (base_eg | _admitted(egress, pp, comp))

    allowed = PortMatrices(ports, port_matrix, keep_all=c * c * len(ports) <= KEEP_ALL_BYTES)

    if declared_only:
        declared = [{(n.port, n.protocol) for n in p.ports} for p in pods]
        relevant = [
            np.fromiter(
                ((pp.port, pp.protocol) in d for d in declared), dtype=bool, count=len(pods)
            )
            for pp in ports
        ]
    else:
        relevant = [np.ones(len(pods), dtype=bool) for _ in ports]
    node_names = {n: i for i, n in enumerate(sorted({p.node for p in pods}))}
    node_id = np.fromiter((node_names[p.node] for p in pods), dtype=np.int64, count=len(pods))
    node_traffic = np.fromiter(
        (engine.is_node_traffic(p) for p in pods), dtype=bool, count=len(pods)
    )
    policy_class = reduced.class_of[classes.class_of]
    return Matrix(pods, ports, classes, allowed, relevant, node_id, node_traffic, policy_class)


def declared_ports(pods: list[PodEndpoint]) -> list[PortProto]:
    return sorted({PortProto(p.port, p.protocol) for pod in pods for p in pod.ports})
