"""One `analyze` question: which selected sources reach which selected destinations, on
which ports. The answer keeps the matrix (for pods) and explicit results (for outside peers),
so that renderers of huge clusters can count without listing every pair."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from podnet.policy.answer_set import Result as Result  # its users import it here
from podnet.policy.answer_set import declared_ports, outside_answers
from podnet.policy.endpoints import PodEndpoint
from podnet.policy.engine import Engine, External
from podnet.policy.matrix import Matrix, compute
from podnet.policy.ports import PortProto
from podnet.policy.verdict import Direction


@dataclass
class Analysis:
    engine: Engine
    sources: np.ndarray  # pod indices
    destinations: np.ndarray
    outside_sources: list[External]
    outside_destinations: list[External]
    matrix: Matrix
    outside_results: list[Result]

    @property
    def pods(self) -> list[PodEndpoint]:
        return self.engine.pods

    @property
    def ports(self) -> list[PortProto]:
        return self.matrix.ports

    def block(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(source indices, destination indices, allowed bool matrix) for port k."""
        cols = self.destinations[self.matrix.relevant[k][self.destinations]]
        m = self.matrix.dense(k, cols)[self.sources]
        return self.sources, cols, m

    def results(self) -> Iterator[Result]:
        """Every answer, pods first (by source, destination, port), then outside peers."""
        blocks = [self.block(k) for k in range(len(self.ports))]
        index = [{int(j): pos for pos, j in enumerate(cols)} for _, cols, _ in blocks]
        pods = self.pods
        for si, s in enumerate(self.sources):
            for d in self.destinations:
                if s == d:
                    continue
                for k, pp in enumerate(self.ports):
                    pos = index[k].get(int(d))
                    if pos is not None:
                        yield Result(
                            pods[s].key,
                            pods[d].key,
                            pp.port,
                            pp.protocol,
                            bool(blocks[k][2][si, pos]),
                        )
        yield from self.outside_results

    @property
    def class_of(self) -> np.ndarray:
        return self.matrix.classes.class_of

    @property
    def class_count(self) -> int:
        return len(self.matrix.classes.reps)

    def isolated_count(self, direction: Direction, among: np.ndarray) -> int:
        return int(np.count_nonzero(self.matrix.isolated(direction)[among]))

    def counts(self, k: int) -> tuple[int, int]:
        """(allowed, asked) pod pairs on port k, self pairs excluded."""
        cols = self.destinations[self.matrix.relevant[k][self.destinations]]
        self_pairs = int(np.isin(cols, self.sources).sum())
        allowed = self.matrix.allowed_count(k, self.sources, cols)
        return allowed - self_pairs, len(self.sources) * len(cols) - self_pairs


def analyze(
    engine: Engine,
    sources: list[PodEndpoint],
    destinations: list[PodEndpoint],
    outside_sources: list[External],
    outside_destinations: list[External],
    ports: list[PortProto] | None,
) -> Analysis:
    outside = outside_answers(
        engine, sources, destinations, outside_sources, outside_destinations, ports
    )
    index = {p.key: i for i, p in enumerate(engine.pods)}
    src_idx = np.array([index[p.key] for p in sources], dtype=np.int64)
    dst_idx = np.array([index[p.key] for p in destinations], dtype=np.int64)
    port_list = ports if ports is not None else declared_ports(destinations)
    matrix = compute(engine, port_list, declared_only=ports is None)
    return Analysis(
        engine, src_idx, dst_idx, outside_sources, outside_destinations, matrix, outside
    )
