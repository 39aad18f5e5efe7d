"""The analysis as one JSON-ready document for browsers: the HTML report inlines it and the
dashboard serves it. The same grouping as `analyze`'s table (report.groups), the verdict of
every group cell per port, the policies, and `explain`'s answer for the cells.

Cells are counted exactly over every member pair (numpy, by group blocks), so that a cell
is "mixed" only when its pairs really differ (node traffic of hostNetwork pods can split a
policy class). Explanations are `Engine.explain` of one representative pair per cell (one
allowed and one denied pair of a mixed cell); the directions' texts are interned, since
the same policies and rules decide many cells.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from podnet.policy.analysis import Analysis
from podnet.policy.engine import policy_name
from podnet.policy.verdict import DirectionVerdict, Verdict
from podnet.report.groups import Group, group_pods
from podnet.report.human import GROUP_OVER

# Explaining one cell costs ~65 µs and ~40 bytes once interned; beyond this many cells the
# report would take seconds to write and megabytes to hold, so the rest carry their
# verdict and the `podnet explain` question that answers them. Denied and mixed cells are
# explained first: they are what a reviewer asks about.
EXPLAIN_LIMIT = 20_000
ALLOWED, DENIED, MIXED, NONE = "a", "d", "m", "."


@dataclass
class _Strings:
    """Interned strings: the document refers to each by its index."""

    items: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)

    def ref(self, text: str) -> int:
        n = self.index.get(text)
        if n is None:
            n = self.index[text] = len(self.items)
            self.items.append(text)
        return n


def _sorted_members(groups: list[Group]) -> tuple[np.ndarray, np.ndarray]:
    """(member pod indices in group order, start offset of each group)."""
    order = np.concatenate([g.members for g in groups]) if groups else np.empty(0, np.int64)
    sizes = np.array([len(g.members) for g in groups], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if groups else sizes
    return order.astype(np.int64), starts.astype(np.int64)


def _block_sums(m: np.ndarray, row_starts: np.ndarray, col_starts: np.ndarray) -> np.ndarray:
    if m.shape[0] == 0 or m.shape[1] == 0:
        return np.zeros((len(row_starts), len(col_starts)), dtype=np.int64)
    rows = np.add.reduceat(m.astype(np.int64), row_starts, axis=0)
    return np.add.reduceat(rows, col_starts, axis=1)


def _port_cells(
    a: Analysis, k: int, rows: list[Group], cols: list[Group]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(cell codes row by row, asked pairs, allowed pairs) of port k, self pairs excluded."""
    srcs, relevant_cols, m = a.block(k)
    src_pos = np.full(len(a.pods), -1, dtype=np.int64)
    src_pos[srcs] = np.arange(len(srcs))
    col_pos = np.full(len(a.pods), -1, dtype=np.int64)
    col_pos[relevant_cols] = np.arange(len(relevant_cols))
    r_order, r_starts = _sorted_members(rows)
    c_order, c_starts = _sorted_members(cols)
    relevant = col_pos[c_order] >= 0
    # the dense block in group order; columns not asked about on this port count nothing
    full = np.zeros((len(r_order), len(c_order)), dtype=bool)
    full[:, relevant] = m[src_pos[r_order]][:, col_pos[c_order][relevant]]
    asked_cols = np.add.reduceat(relevant.astype(np.int64), c_starts) if len(cols) else c_starts
    r_sizes = np.diff(np.append(r_starts, len(r_order)))
    asked = r_sizes[:, None] * asked_cols[None, :]
    allowed = _block_sums(full, r_starts, c_starts)
    # self pairs: a pod both a row member and an asked column member (always "allowed")
    self_mask = np.zeros_like(full)
    where_r = {int(p): n for n, p in enumerate(r_order)}
    for n, p in enumerate(c_order):
        if relevant[n] and int(p) in where_r:
            self_mask[where_r[int(p)], n] = True
    selfs = _block_sums(self_mask, r_starts, c_starts)
    asked = asked - selfs
    allowed = allowed - selfs
    codes = np.full(asked.shape, NONE, dtype="<U1")
    codes[(asked > 0) & (allowed == asked)] = ALLOWED
    codes[(asked > 0) & (allowed == 0)] = DENIED
    codes[(asked > 0) & (allowed > 0) & (allowed < asked)] = MIXED
    return ["".join(row) for row in codes], asked, allowed


@dataclass
class Block:
    """Port k's dense matrix and where each pod sits in it (computed once per port)."""

    m: np.ndarray
    src_pos: dict[int, int]
    col_pos: dict[int, int]

    @classmethod
    def of(cls, a: Analysis, k: int) -> Block:
        srcs, cols, m = a.block(k)
        return cls(
            m,
            {int(i): n for n, i in enumerate(srcs)},
            {int(j): n for n, j in enumerate(cols)},
        )

    def pair(self, row: Group, col: Group, want: bool | None) -> tuple[int, int] | None:
        """A member pair (src, dst) of the cell whose verdict is `want` (None: any)."""
        for i in row.members:
            for j in col.members:
                if i == j or int(j) not in self.col_pos:
                    continue
                if want is None or bool(self.m[self.src_pos[int(i)], self.col_pos[int(j)]]) == want:
                    return int(i), int(j)
        return None


class _Directions:
    """Each direction's answer, with its subject left out (it is the cell's pod), stored once
    as [ingress?, allowed, isolated, note, [policies], [admitted by], [rule, why, ...]] over
    interned strings: many cells share one answer, and answers share their lines."""

    def __init__(self, s: _Strings) -> None:
        self.s = s
        self.items: list[list[Any]] = []
        self.index: dict[str, int] = {}

    def ref(self, d: DirectionVerdict | None) -> int:
        if d is None:
            return -1
        ref = self.s.ref
        doc = [
            int(d.direction == "ingress"),
            int(d.allowed),
            int(d.isolated),
            ref(d.note),
            [ref(p) for p in d.policies],
            [ref(a) for a in d.admitted_by],
            [n for m in d.misses for n in (ref(m.rule), ref(m.why))],
        ]
        key = json.dumps(doc, separators=(",", ":"))
        n = self.index.get(key)
        if n is None:
            n = self.index[key] = len(self.items)
            self.items.append(doc)
        return n


def _explained(v: Verdict, src: int, dst: int, dirs: _Directions) -> list[int]:
    """[src pod, dst pod, allowed, reason, egress, ingress] (by index; -1: none)."""
    return [
        src,
        dst,
        int(v.allowed),
        dirs.s.ref(v.reason) if v.reason else -1,
        dirs.ref(v.egress),
        dirs.ref(v.ingress),
    ]


def _policies(a: Analysis) -> list[dict[str, Any]]:
    out = []
    for pol in a.engine.cluster.policies:
        spec = pol.model_dump(mode="json", by_alias=True, exclude_none=True).get("spec", {})
        out.append(
            {
                "key": policy_name(pol),
                "types": list(pol.spec.policy_types or ()),
                "spec": spec,
            }
        )
    return out


def groups(a: Analysis) -> tuple[list[Group], list[Group]]:
    """(row groups, column groups): pods as `analyze`'s table groups them."""
    class_of = a.matrix.classes.class_of
    rows = group_pods(a.sources, a.pods, class_of, len(a.sources) > GROUP_OVER)
    cols = group_pods(a.destinations, a.pods, class_of, len(a.destinations) > GROUP_OVER)
    return rows, cols


def cell_verdicts(
    a: Analysis, block: Block, k: int, row: Group, col: Group, code: str
) -> list[tuple[int, int, Verdict]]:
    """`explain` of one representative pair of a cell (of an allowed and a denied pair when
    the cell is mixed): [(src pod index, dst pod index, verdict)]."""
    out = []
    for want in [None] if code != MIXED else [True, False]:
        pair = block.pair(row, col, want)
        if pair is not None:
            out.append((*pair, a.engine.explain(a.pods[pair[0]], a.pods[pair[1]], a.ports[k])))
    return out


def document(a: Analysis, explain: bool = True, title: str = "podnet analyze") -> dict[str, Any]:
    """Everything a page needs to draw `analyze`'s matrices. `explain=False` leaves
    explanations to the caller (the dashboard asks the engine when a cell is clicked)."""
    pods = a.pods
    rows, cols = groups(a)
    used = sorted({int(i) for g in (*rows, *cols) for i in g.members})
    number = {p: n for n, p in enumerate(used)}
    strings = _Strings()
    dirs = _Directions(strings)
    ports: list[dict[str, Any]] = []
    todo: list[tuple[int, int, int, str]] = []  # (port, row, col, code)
    for k, pp in enumerate(a.ports):
        cells, _asked, _allowed = _port_cells(a, k, rows, cols)
        allowed, asked = a.counts(k)
        ports.append(
            {
                "port": pp.port,
                "protocol": pp.protocol,
                "allowed": allowed,
                "asked": asked,
                "cells": cells,
                "explain": {},
            }
        )
        for r, line in enumerate(cells):
            todo += [(k, r, c, code) for c, code in enumerate(line) if code != NONE]
    explained = 0
    if explain:
        # denied and mixed first, then allowed; stable within each
        todo.sort(key=lambda t: t[3] == ALLOWED)
        blocks: dict[int, Block] = {}
        for k, r, c, code in todo[:EXPLAIN_LIMIT]:
            block = blocks.get(k) or blocks.setdefault(k, Block.of(a, k))
            ports[k]["explain"][f"{r},{c}"] = [
                _explained(v, number[i], number[j], dirs)
                for i, j, v in cell_verdicts(a, block, k, rows[r], cols[c], code)
            ]
            explained += 1
    return {
        "title": title,
        "pods": [
            {
                "key": pods[i].key,
                "node": pods[i].node,
                "ip": pods[i].ip,
                "labels": dict(pods[i].labels),
                "hostNetwork": pods[i].host_network,
            }
            for i in used
        ],
        "rows": [{"label": g.label, "members": [number[int(i)] for i in g.members]} for g in rows],
        "cols": [{"label": g.label, "members": [number[int(i)] for i in g.members]} for g in cols],
        "ports": ports,
        "outside": [r.to_json() for r in a.outside_results],
        "policies": _policies(a),
        "strings": strings.items,
        "directions": dirs.items,
        "cells": len(todo),
        "explained": explained,
        "explainLimit": EXPLAIN_LIMIT,
    }
