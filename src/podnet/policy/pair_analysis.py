"""Small `analyze` questions answered pair by pair, without numpy.

Importing numpy costs more CPU than the whole analysis of a few dozen pods (issue 8: start-up
of `analyze` of the example); below SMALL_CELLS pair and port cells the engine's own per-pair
evaluator (Engine.allowed, what the matrix is held equal to) answers each cell, and the
answer reads as policy.analysis's does (the Answers interface). The result is the same:
tests/test_pair_analysis.py holds every renderer's output equal on random clusters.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property

from podnet.policy.answer_set import Result, declared_ports, outside_answers
from podnet.policy.classes import class_numbers, ipblock_networks
from podnet.policy.endpoints import PodEndpoint
from podnet.policy.engine import Engine, External
from podnet.policy.ports import PortProto
from podnet.policy.verdict import Direction

# Engine.allowed takes 20-50 µs a pair; numpy's import ~0.1 s of CPU and the matrix some more.
SMALL_CELLS = 2_000


def question_cells(
    sources: list[PodEndpoint], destinations: list[PodEndpoint], ports: list[PortProto] | None
) -> int:
    """How many (source, destination, port) cells a question asks about."""
    if ports is not None:
        return len(sources) * len(destinations) * len(ports)
    return len(sources) * sum(len({(p.port, p.protocol) for p in d.ports}) for d in destinations)


class PairAnalysis:
    """policy.analysis.Analysis's answer, cell by cell; blocks are computed when first read."""

    def __init__(
        self,
        engine: Engine,
        sources: list[int],
        destinations: list[int],
        outside_sources: list[External],
        outside_destinations: list[External],
        ports: list[PortProto],
        declared_only: bool,
        outside_results: list[Result],
    ) -> None:
        self.engine = engine
        self.sources = sources
        self.destinations = destinations
        self.outside_sources = outside_sources
        self.outside_destinations = outside_destinations
        self.outside_results = outside_results
        self._ports = ports
        self._declared_only = declared_only
        self._blocks: dict[int, tuple[list[int], list[int], list[list[bool]]]] = {}

    @property
    def pods(self) -> list[PodEndpoint]:
        return self.engine.pods

    @property
    def ports(self) -> list[PortProto]:
        return self._ports

    @cached_property
    def class_of(self) -> list[int]:
        e = self.engine
        nets = ipblock_networks(e.cluster.policies) if e.ipblock_pods == "match" else []
        return class_numbers(e.pods, nets)

    @property
    def class_count(self) -> int:
        return len(set(self.class_of))

    def _asked(self, k: int) -> list[int]:
        """The destinations asked about on port k (with declared_only: those declaring it)."""
        if not self._declared_only:
            return list(self.destinations)
        pp = self._ports[k]
        pods = self.pods
        return [
            d
            for d in self.destinations
            if any(n.port == pp.port and n.protocol == pp.protocol for n in pods[d].ports)
        ]

    def block(self, k: int) -> tuple[list[int], list[int], list[list[bool]]]:
        """(sources, destinations asked about on port k, rows of verdicts); a pod reaches
        itself over loopback, as Matrix.dense has it."""
        hit = self._blocks.get(k)
        if hit is None:
            pods, pp, allowed = self.pods, self._ports[k], self.engine.allowed
            cols = self._asked(k)
            m = [[s == d or allowed(pods[s], pods[d], pp) for d in cols] for s in self.sources]
            hit = self._blocks[k] = (self.sources, cols, m)
        return hit

    def results(self) -> Iterator[Result]:
        """Every answer, pods first (by source, destination, port), then outside peers."""
        blocks = [self.block(k) for k in range(len(self._ports))]
        index = [{j: pos for pos, j in enumerate(cols)} for _, cols, _ in blocks]
        pods = self.pods
        for si, s in enumerate(self.sources):
            for d in self.destinations:
                if s == d:
                    continue
                for k, pp in enumerate(self._ports):
                    pos = index[k].get(d)
                    if pos is not None:
                        yield Result(
                            pods[s].key, pods[d].key, pp.port, pp.protocol, blocks[k][2][si][pos]
                        )
        yield from self.outside_results

    def counts(self, k: int) -> tuple[int, int]:
        """(allowed, asked) pod pairs on port k, self pairs excluded."""
        srcs, cols, m = self.block(k)
        in_srcs = set(srcs)
        self_pairs = sum(1 for d in cols if d in in_srcs)
        allowed = sum(sum(row) for row in m)
        return allowed - self_pairs, len(srcs) * len(cols) - self_pairs

    def isolated_count(self, direction: Direction, among: list[int]) -> int:
        pods = self.pods
        return sum(1 for i in among if self.engine.selecting(pods[i], direction))


def analyze_pairs(
    engine: Engine,
    sources: list[PodEndpoint],
    destinations: list[PodEndpoint],
    outside_sources: list[External],
    outside_destinations: list[External],
    ports: list[PortProto] | None,
) -> PairAnalysis:
    """policy.analysis.analyze's answer, pair by pair."""
    outside = outside_answers(
        engine, sources, destinations, outside_sources, outside_destinations, ports
    )
    index = {p.key: i for i, p in enumerate(engine.pods)}
    return PairAnalysis(
        engine,
        [index[p.key] for p in sources],
        [index[p.key] for p in destinations],
        outside_sources,
        outside_destinations,
        ports if ports is not None else declared_ports(destinations),
        ports is None,
        outside,
    )
