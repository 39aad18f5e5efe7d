"""The connectivity matrix of every pod pair on every port, vectorised.

Per port and direction, each rule is a pair of class masks (who it admits, whom it
protects); the union over rules is an OR of outer products. A rule protects few classes
(its podSelector, within one namespace), so the union is built from that side: each
destination class (ingress) or source class (egress) gets the OR of the peer masks of the
rules that hold it, and classes held by the same rules share one row. Only the columns of
classes asked about on the port are computed. The result equals Engine.allowed for every
pair (tests/test_matrix_property.py holds them equal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np

from podnet.model.networkpolicy import NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort
from podnet.model.quarantine_label import is_quarantine
from podnet.policy.answer_set import declared_ports as declared_ports  # its users import it here
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

BLOCK = 256  # rows per block when a port's matrix is weighted in float32 (count): in cache
AND_BLOCK = 256  # destination rows per block when egress is AND-ed into a port's matrix


KEEP_ALL_BYTES = 512 * 2**20  # above this, one port's matrix is kept at a time


class PortMatrices(Sequence[np.ndarray]):
    """The (C, columns) matrix of each port, computed when first asked for. At 100,000 pods
    there are some 23,000 classes: up to 500 MiB a port, several GiB for 17 ports if all were
    kept, so past KEEP_ALL_BYTES only the last one asked for is (readers go port by port)."""

    def __init__(self, count: int, compute: Callable[[int], np.ndarray], keep_all: bool) -> None:
        self._count = count
        self._compute = compute
        self._keep_all = keep_all
        self._kept: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self._count

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
            m = self._compute(k)
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
    # per port: (C, len(columns)) bool, [src class, dst class]; only the destination classes
    # of `columns` (those with a relevant pod) are computed
    allowed: Sequence[np.ndarray]
    relevant: list[np.ndarray]  # per port: (N,) bool, destinations asked about
    _node_id: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    _node_traffic: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, bool))
    # (N,) each pod's class in `allowed`: classes that ignore labels no selector reads,
    # coarser than `classes` (which reports group pods by)
    _policy_class: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, np.int64))
    # per port: (C,) the column of each class in allowed[k], -1 where it was not computed
    _column: list[np.ndarray] = field(repr=False, default_factory=list)
    # (C,) per class: selected by some policy for ingress / egress
    _isolated: dict[str, np.ndarray] = field(repr=False, default_factory=dict)

    def isolated(self, direction: str) -> np.ndarray:
        """(N,) bool: pods some policy isolates for `direction` ("ingress" or "egress"), as
        Engine.selecting answers it pod by pod."""
        return self._isolated[direction][self._policy_class]

    def _cells(self, k: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """allowed[k] at (source class, destination class) pairs, broadcast as numpy does."""
        pos = self._column[k][dst]
        if (pos < 0).any():
            raise ValueError(f"a destination not asked about on {self.ports[k]}")
        return self.allowed[k][src, pos]

    def dense(self, k: int, cols: np.ndarray | None = None) -> np.ndarray:
        """(N, len(cols)) bool for port k: every source pod against the given destinations
        (relevant ones: only their columns are computed).

        Applies what classes cannot express: a pod reaches itself over loopback, and
        traffic between a host-network pod and the pods of its own node is node traffic.
        """
        cols = np.flatnonzero(self.relevant[k]) if cols is None else cols
        co = self._policy_class
        m = self._cells(k, co[:, None], co[cols][None, :])
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
        pos = self._column[k][co[open_cols]]
        if (pos < 0).any():
            raise ValueError(f"a destination not asked about on {self.ports[k]}")
        ws = np.bincount(co[rows], minlength=len(a)).astype(np.float32)
        wd = np.bincount(pos, minlength=a.shape[1]).astype(np.float64)
        count = _weighted_sum(a, ws, wd)
        count += self._node_traffic_extra(k, rows, open_cols)
        in_rows = np.zeros(len(self.pods), dtype=bool)
        in_rows[rows] = True
        own = open_cols[in_rows[open_cols]]  # open columns whose pod is also a row
        held = self._cells(k, co[own], co[own]) | self._node_traffic[own]
        count += int(np.count_nonzero(~held))  # self pairs that only the diagonal allows
        count += int(np.count_nonzero(in_rows[cols[local]]))  # localhost: its own row
        return count

    def _node_traffic_extra(self, k: int, rows: np.ndarray, cols: np.ndarray) -> int:
        """Pairs on one node with a node-traffic end that the class matrix denies."""
        hostnet = self._node_traffic
        if not hostnet.any():
            return 0
        nodes = np.flatnonzero(np.bincount(self._node_id[hostnet]))  # np.unique, sans numpy.ma
        co = self._policy_class
        extra = 0
        for n in nodes:
            r = rows[self._node_id[rows] == n]
            d = cols[self._node_id[cols] == n]
            if not len(r) or not len(d):
                continue
            either = hostnet[r][:, None] | hostnet[d][None, :]
            extra += int(np.count_nonzero(either & ~self._cells(k, co[r][:, None], co[d][None, :])))
        return extra


def _weighted_sum(a: np.ndarray, ws: np.ndarray, wd: np.ndarray) -> int:
    """ws @ a @ wd for a bool matrix, exactly, in blocks of float32 (no float copy of a).

    Exact in floating point: float32 holds every integer up to 2**24 (more pods than any
    cluster has rows, so every a.T @ ws entry), float64 every count of pairs up to 2**53.
    """
    at = a.T  # a is built transposed (see _port_matrix): rows of at are contiguous
    total = 0.0
    for start in range(0, at.shape[0], BLOCK):
        part = at[start : start + BLOCK].astype(np.float32) @ ws
        total += float(part.astype(np.float64) @ wd[start : start + BLOCK])
    return round(total)


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
        self._admits: dict[tuple[tuple[NetworkPolicyPort, ...], PortProto], np.ndarray | bool] = {}

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
        key = (ports, pp)  # rules share port lists: "ports: [{port: http}]" and the like
        hit = self._admits.get(key)
        if hit is None:
            hit = self._admits[key] = self._admits_uncached(ports, pp)
        return hit

    def _admits_uncached(
        self, ports: tuple[NetworkPolicyPort, ...], pp: PortProto
    ) -> np.ndarray | bool:
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


def _merged(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Stacked (members, masks) of the given rules, rules with one mask merged (their
    members OR-ed) and rules that admit nothing dropped."""
    merged: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
    for member, mask in pairs:
        if not member.any() or not mask.any():
            continue
        key = np.packbits(mask).tobytes()
        prev = merged.get(key)
        merged[key] = (member.copy(), mask) if prev is None else (prev[0] | member, prev[1])
    if not merged:
        return np.zeros((0, 0), dtype=bool), np.zeros((0, 0), dtype=bool)
    return np.stack([m for m, _ in merged.values()]), np.stack([m for _, m in merged.values()])


def _union_rows(members: np.ndarray, masks: np.ndarray, at: np.ndarray, width: int) -> np.ndarray:
    """(len(at), width) bool: for each class of `at`, the OR of masks[r] over the rules r
    whose members hold it — one side of a union of outer products, seen from the side where
    rules hold few classes. Classes held by the same rules share one row, computed once."""
    out = np.zeros((len(at), width), dtype=bool)
    if not len(members) or not len(at):
        return out
    held = members[:, at]  # (rules, len(at))
    used = held.any(axis=1)
    held, masks = held[used], masks[used]
    if not len(held):
        return out
    # classes held by the same rules: one signature (a bit per rule), one row
    signature = np.ascontiguousarray(np.packbits(held, axis=0).T)
    first: dict[bytes, int] = {}
    inverse = np.fromiter(
        (first.setdefault(sig.tobytes(), len(first)) for sig in signature),
        dtype=np.int64,
        count=len(at),
    )
    _, pos = np.unique(inverse, return_index=True)  # a class holding each signature
    rows = np.zeros((len(pos), width), dtype=bool)
    for u, i in enumerate(pos):
        np.any(masks[held[:, i]], axis=0, out=rows[u])
    return np.take(rows, inverse, axis=0, out=out)


def _port_rules(
    rules: list[_Rule], pp: PortProto, comp: ClassCompiler
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(src, dst) of the rules that admit pp somewhere: any port, or pp among their ports
    (dst narrowed to the classes whose named port resolves to it)."""
    out = []
    for r in rules:
        a = comp.admits(r.ports, pp)
        if a is not False:
            out.append((r.src, r.dst if a is True else r.dst & a))
    return out


def _port_matrix(
    ingress: list[_Rule],
    egress: list[_Rule],
    iso_in: np.ndarray,
    iso_eg: np.ndarray,
    pp: PortProto,
    cols: np.ndarray,
    comp: ClassCompiler,
) -> np.ndarray:
    """(C, len(cols)) bool: source classes against the destination classes `cols` on pp.

    A direction admits (s, d) when one of its rules does, or when d (ingress) / s (egress) is
    not isolated. Built transposed, [dst, src]: ingress rules hold few destinations, and
    the egress rows of the (fewer) isolated sources are AND-ed in as columns.
    """
    in_rules = _port_rules(ingress, pp, comp)
    held, peers = _merged([(dst, src) for src, dst in in_rules])
    at = _union_rows(held, peers, cols, comp.c)
    at[~iso_in[cols]] = True
    sources = np.flatnonzero(iso_eg)
    if len(sources):
        eg_rules = _port_rules(egress, pp, comp)
        selected, reached = _merged([(src, dst[cols]) for src, dst in eg_rules])
        eg = _union_rows(selected, reached, sources, len(cols))
        # in blocks of destinations: a column gather over all of `at` would miss the cache
        for start in range(0, len(cols), AND_BLOCK):
            part = at[start : start + AND_BLOCK]
            part[:, sources] &= eg[:, start : start + AND_BLOCK].T
    return at.T


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
    # Quarantine wins over every allow (Engine.selecting): the classes a quarantine policy
    # selects for a direction keep only the quarantine policies' rules there.
    q_in, q_eg = _quarantined(engine.cluster.policies, comp)
    for pol in engine.cluster.policies:
        ns = pol.metadata.namespace or "default"
        sel = comp.selected(pol)
        if not sel.any():
            continue
        plain = not is_quarantine(pol.metadata.labels)
        if pol.affects_ingress:
            iso_in |= sel
            s_in = sel & ~q_in if plain else sel
            ingress += [
                _Rule(comp.peers(r.from_, ns), s_in, r.ports) for r in pol.spec.ingress or ()
            ]
        if pol.affects_egress:
            iso_eg |= sel
            s_eg = sel & ~q_eg if plain else sel
            egress += [_Rule(s_eg, comp.peers(r.to, ns), r.ports) for r in pol.spec.egress or ()]

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
    policy_class = reduced.class_of[classes.class_of]
    # the destination classes of each port: those with a pod asked about on it, sorted
    # (np.unique would do, but its masked-array check imports numpy.ma: ~10 ms a start)
    cols = [np.flatnonzero(np.bincount(policy_class[r], minlength=c)) for r in relevant]
    column = []
    for cs in cols:
        pos = np.full(c, -1, dtype=np.int64)
        pos[cs] = np.arange(len(cs))
        column.append(pos)

    def port_matrix(k: int) -> np.ndarray:
        return _port_matrix(ingress, egress, iso_in, iso_eg, ports[k], cols[k], comp)

    size = c * sum(len(cs) for cs in cols)
    allowed = PortMatrices(len(ports), port_matrix, keep_all=size <= KEEP_ALL_BYTES)
    node_names = {n: i for i, n in enumerate(sorted({p.node for p in pods}))}
    node_id = np.fromiter((node_names[p.node] for p in pods), dtype=np.int64, count=len(pods))
    node_traffic = np.fromiter(
        (engine.is_node_traffic(p) for p in pods), dtype=bool, count=len(pods)
    )
    return Matrix(
        pods,
        ports,
        classes,
        allowed,
        relevant,
        node_id,
        node_traffic,
        policy_class,
        column,
        {"ingress": iso_in, "egress": iso_eg},
    )


def _quarantined(
    policies: tuple[NetworkPolicy, ...] | list[NetworkPolicy], comp: ClassCompiler
) -> tuple[np.ndarray, np.ndarray]:
    """(C,) masks of the classes a quarantine policy selects for ingress, for egress."""
    q_in = np.zeros(comp.c, dtype=bool)
    q_eg = np.zeros(comp.c, dtype=bool)
    for pol in policies:
        if is_quarantine(pol.metadata.labels):
            sel = comp.selected(pol)
            if pol.affects_ingress:
                q_in |= sel
            if pol.affects_egress:
                q_eg |= sel
    return q_in, q_eg
