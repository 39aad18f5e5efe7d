"""What doctor found: one drift per Finding, in Kubernetes terms, with its fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# How a finding is repaired by `doctor --fix`, in the order they are applied.
DAEMON, RESYNC, SERVER, RELOAD = "daemon", "resync", "server", "reload"
REPAIRS = (DAEMON, RESYNC, SERVER, RELOAD)


@dataclass(frozen=True)
class Finding:
    area: str  # namespaces | network | nft | daemon | server | listeners
    subject: str  # "pod shop/db", "node node-1", "Service shop/db", "the daemon"
    problem: str
    repair: str  # one of REPAIRS
    command: str  # what a user runs to fix it by hand
    detail: str = ""  # e.g. the server's name for a SERVER repair

    def to_json(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "subject": self.subject,
            "problem": self.problem,
            "fix": self.command,
        }
