"""The adapter between the dashboard and the two commands other work brings: the live flows
of `podnet flows` (a reader yielding flow records) and the actions of `podnet quarantine`.

Neither is in this build yet. Until an adapter for each is written against its real API,
both panels stay disabled and say so; the dashboard never shows flows or actions it did
not get from them (no made-up records). This module is the one place that changes when
they land: `FLOWS` and `QUARANTINE` become available with a reader and an action.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    name: str
    available: bool
    note: str

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "available": self.available, "note": self.note}


def _feature(name: str, command: str, module: str) -> Feature:
    if importlib.util.find_spec(module) is None:
        note = f"not available in this build: `podnet {command}` is not part of it"
    else:
        note = (
            f"not available in this build: `podnet {command}` exists, but the dashboard's "
            "adapter for it is not written yet"
        )
    return Feature(name, False, note)


def features() -> dict[str, Feature]:
    """Which of the optional panels this build can serve, and why not."""
    return {
        "flows": _feature("flows", "flows", "podnet.cli.flows"),
        "quarantine": _feature("quarantine", "quarantine", "podnet.cli.quarantine"),
    }
