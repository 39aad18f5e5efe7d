"""What every answer to an `analyze` question shares, numpy or not: the result of one pair,
the outside peers' answers, the ports asked about, and the interface the text and machine
renderers read (podnet.report.human, .machine). Two analyses implement it: the matrix
(policy.analysis, numpy, for any size) and the pair by pair one (policy.pair_analysis, pure
Python, for small questions: it spares the start-up numpy's import costs)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from podnet.model.errors import InputError, Problem
from podnet.policy.endpoints import PodEndpoint
from podnet.policy.engine import Engine, External
from podnet.policy.ports import PortProto
from podnet.policy.verdict import Direction


@dataclass(frozen=True, slots=True)
class Result:
    source: str
    destination: str
    port: int
    protocol: str
    allowed: bool

    def to_json(self) -> dict[str, object]:
        return {
            "from": self.source,
            "to": self.destination,
            "port": self.port,
            "protocol": self.protocol,
            "allowed": self.allowed,
        }


# A sequence of pod indices (numpy's int array in the matrix, a list pair by pair).
Indices = Any


class Answers(Protocol):
    """An analysis as the renderers read it. Pods are named by their index in `pods`."""

    engine: Engine
    outside_sources: list[External]
    outside_destinations: list[External]
    outside_results: list[Result]

    @property
    def sources(self) -> Indices: ...
    @property
    def destinations(self) -> Indices: ...
    @property
    def pods(self) -> list[PodEndpoint]: ...
    @property
    def ports(self) -> list[PortProto]: ...
    @property
    def class_of(self) -> Indices:
        """The policy class of each pod (policy.classes.classify): who may share a row."""
        ...

    @property
    def class_count(self) -> int: ...

    def block(self, k: int) -> tuple[Indices, Indices, Any]:
        """(source indices, destination indices asked about on port k, m) where
        m[row][column] is whether that source reaches that destination."""
        ...

    def results(self) -> Iterator[Result]: ...
    def counts(self, k: int) -> tuple[int, int]:
        """(allowed, asked) pod pairs on port k, self pairs excluded."""
        ...

    def isolated_count(self, direction: Direction, among: Indices) -> int:
        """How many of the pods `among` some policy isolates for `direction`."""
        ...


def declared_ports(pods: list[PodEndpoint]) -> list[PortProto]:
    return sorted({PortProto(p.port, p.protocol) for pod in pods for p in pod.ports})


def outside_answers(
    engine: Engine,
    sources: list[PodEndpoint],
    destinations: list[PodEndpoint],
    outside_sources: list[External],
    outside_destinations: list[External],
    ports: list[PortProto] | None,
) -> list[Result]:
    """The answers for outside peers, pair by pair (the engine's address sets)."""
    if (outside_sources or outside_destinations) and ports is None and outside_destinations:
        raise InputError(
            [
                Problem(
                    None,
                    "",
                    "--ports",
                    "an outside destination has no declared ports: give --ports",
                )
            ]
        )
    port_list = ports if ports is not None else declared_ports(destinations)
    outside: list[Result] = []
    for ext in outside_sources:
        for d in destinations:
            for pp in port_list if ports is not None else declared_ports([d]):
                outside.append(
                    Result(ext.key, d.key, pp.port, pp.protocol, engine.allowed(ext, d, pp))
                )
    for ext in outside_destinations:
        for s in sources:
            for pp in port_list:
                outside.append(
                    Result(s.key, ext.key, pp.port, pp.protocol, engine.allowed(s, ext, pp))
                )
    return outside
