"""The answer to one question (may src reach dst on port/protocol?) with its reasons."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Direction = Literal["ingress", "egress"]


@dataclass
class RuleMiss:
    rule: str  # "ns/policy ingress[0]"
    why: str


@dataclass
class DirectionVerdict:
    direction: Direction
    subject: str  # the pod whose policies decide this direction
    allowed: bool
    isolated: bool
    note: str = ""  # why the direction is open or not judged
    policies: list[str] = field(default_factory=list)  # policies selecting the subject
    admitted_by: list[str] = field(default_factory=list)
    misses: list[RuleMiss] = field(default_factory=list)


@dataclass
class Verdict:
    source: str
    destination: str
    port: int
    protocol: str
    allowed: bool
    reason: str = ""  # set when a rule outside NetworkPolicy decides (same pod, own node)
    egress: DirectionVerdict | None = None
    ingress: DirectionVerdict | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
