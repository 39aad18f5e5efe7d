"""The adapter between the dashboard and the two commands it shows: the live flows of
`podnet flows` (the flow log's reader API, flowlog.history) and the action of `podnet
quarantine` (given by the composition root, cli.dashboard, which may import the CLI; this
package may not).

Flows: `flow_rows` reads `history.records(sdir, follow_on=True, stop=...)` as documented
(the history, then what the collector appends) on a thread of its own, and hands batches of
rows to the event stream. A batch longer than the panel keeps (FLOW_ROWS) is cut to its
newest rows and says how many it skipped: a page that fell behind catches up, it does not
replay. A row is the record's JSON line (flow_record) reduced to what the panel draws, the
deciding policy named as `podnet flows` names it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podnet.flowlog.flow_record import Decision, Flow, Lost, Record
from podnet.flowlog.history import records

FLOW_ROWS = 500  # rows the panel keeps; a batch is cut to them
BATCH_SECONDS = 0.2  # rows are sent at most this often: one event, one redraw

# (cluster, "ns/pod", undo) -> (exit status, what the command printed)
QuarantineAction = Callable[[str, str, bool], tuple[int, str]]


@dataclass(frozen=True)
class Feature:
    name: str
    available: bool
    note: str

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "available": self.available, "note": self.note}


def features(quarantine: QuarantineAction | None, root: bool) -> dict[str, Feature]:
    """Which of the optional panels this server can serve, and why not."""
    if quarantine is None:
        q = Feature("quarantine", False, "this server was started without the action")
    elif not root:
        q = Feature("quarantine", False, "podnet quarantine needs root: run the dashboard as root")
    else:
        q = Feature("quarantine", True, "")
    return {"flows": Feature("flows", True, ""), "quarantine": q}


def _decision_text(d: Decision | None) -> str:
    if d is None:
        return ""
    if d.verdict == "allowed":
        return d.policy or (d.reason or "not isolated")
    if d.verdict == "blocked":
        return ", ".join(d.policies) or "blocked"
    return d.reason or d.verdict


def deciding_policy(f: Flow) -> str:
    """The policy that decided: the blocking one(s) of a blocked flow, the admitting one of
    each direction of an allowed flow."""
    sides = [("egress", f.egress), ("ingress", f.ingress)]
    if f.verdict == "blocked":
        for side, d in sides:
            if d is not None and d.verdict == "blocked":
                return f"{side}: {_decision_text(d)}"
        return "blocked"
    return "; ".join(f"{side}: {_decision_text(d)}" for side, d in sides if d is not None)


def row(record: Record) -> dict[str, Any]:
    """One row of the panel."""
    if isinstance(record, Lost):
        return {
            "type": "lost",
            "time": record.time,
            "node": record.node,
            "text": f"{record.node}: {record.source} lost {record.overruns} overruns, "
            f"{record.messages} messages",
        }
    return {
        "type": "flow",
        "time": record.time,
        "proto": record.proto,
        "src": record.src.name or record.src.ip,
        "dst": record.dst.name or record.dst.ip,
        "port": record.dst.port,
        "service": record.service.name if record.service else None,
        "verdict": record.verdict,
        "policy": deciding_policy(record),
    }


async def flow_batches(
    sdir: Path, gone: Callable[[], Awaitable[bool]]
) -> AsyncIterator[dict[str, Any]]:
    """{"rows": [...], "skipped": N} every BATCH_SECONDS while records come, until `gone()`
    (awaitable) says the page left. The reader runs on a thread of its own (it blocks,
    polling the file): the event loop's default pool is kept for short work."""
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    pending: list[dict[str, Any]] = []
    dropped = [0]  # rows cut while the page was not reading
    lock = threading.Lock()

    def read() -> None:
        for record in records(sdir, follow_on=True, stop=stop.is_set):
            r = row(record)
            with lock:
                pending.append(r)
                if len(pending) > 4 * FLOW_ROWS:  # the page is not reading: keep the newest
                    dropped[0] += len(pending) - FLOW_ROWS
                    del pending[:-FLOW_ROWS]
            if stop.is_set():
                break

    thread = threading.Thread(target=read, name="dashboard-flows", daemon=True)
    thread.start()
    try:
        while not await gone():
            await asyncio.sleep(BATCH_SECONDS)
            with lock:
                batch, pending[:] = pending[:], []
                cut, dropped[0] = dropped[0], 0
            if not batch:
                if not thread.is_alive():
                    break
                continue
            skipped = max(0, len(batch) - FLOW_ROWS)
            yield {"rows": batch[skipped:], "skipped": skipped + cut, "sent": time.time()}
    finally:
        stop.set()
        await loop.run_in_executor(None, thread.join, 1.0)
