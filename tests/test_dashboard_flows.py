"""The dashboard's flows adapter over the flow log's reader API: a row names the policy
that decided (the blocking one of a blocked flow, each direction's admitting one of an
allowed flow); the stream sends the history and then what is appended, in batches, and a
batch longer than the panel keeps is cut to its newest rows with the count it skipped."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from podnet.dashboard import integrations
from podnet.dashboard.integrations import FLOW_ROWS, deciding_policy, flow_batches, row
from podnet.flowlog.flow_record import Decision, Flow, Lost, Peer
from podnet.flowlog.history import Writer


def flow(i: int, verdict: str = "allowed", t: float | None = None) -> Flow:
    if verdict == "blocked":
        ingress = Decision("blocked", "x/a", "node-1", policies=("x/deny", "x/allow-web"))
    else:
        ingress = Decision("allowed", "x/a", "node-1", "x/allow-web", 0)
    return Flow(
        time.time() if t is None else t,
        "TCP",
        Peer("10.244.1.3", 40000 + i, "y/c", "pod"),
        Peer("10.244.1.4", 80, "x/a", "pod"),
        verdict,  # type: ignore[arg-type]
        Decision("allowed", "y/c", None, None, None, reason="not isolated"),
        ingress,
        ("node-1",),
    )


def test_the_deciding_policy() -> None:
    assert deciding_policy(flow(0, "blocked")) == "ingress: x/deny, x/allow-web"
    assert deciding_policy(flow(0)) == "egress: not isolated; ingress: x/allow-web"
    r = row(flow(1, "blocked"))
    assert (r["src"], r["dst"], r["port"], r["verdict"]) == ("y/c", "x/a", 80, "blocked")
    lost = row(Lost(1.0, "node-1", "nflog", 2, 5))
    assert lost["type"] == "lost" and "node-1" in lost["text"]


def collect(root: Path, want: int, during: object = None) -> list[dict[str, object]]:
    """The batches of the stream until `want` rows came (or 10 s)."""
    got: list[dict[str, object]] = []
    deadline = time.monotonic() + 10

    async def gone() -> bool:
        return sum(len(b["rows"]) + b["skipped"] for b in got) >= want or (  # type: ignore[misc]
            time.monotonic() > deadline
        )

    async def run() -> None:
        async for batch in flow_batches(root, gone):
            got.append(batch)

    asyncio.run(run())
    return got


def test_history_then_appended_records(tmp_path: Path) -> None:
    w = Writer(tmp_path)
    w.write([flow(i) for i in range(3)])
    later = threading.Timer(0.5, lambda: w.write([flow(9, "blocked")]))
    later.start()
    try:
        batches = collect(tmp_path, 4)
    finally:
        later.cancel()
        w.close()
    rows = [r for b in batches for r in b["rows"]]  # type: ignore[attr-defined]
    assert [(r["port"], r["verdict"]) for r in rows] == [(80, "allowed")] * 3 + [(80, "blocked")]
    assert len(batches) >= 2  # the appended record came in a batch of its own
    assert rows[-1]["policy"] == "ingress: x/deny, x/allow-web"


def test_a_long_batch_keeps_the_newest_rows(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(integrations, "BATCH_SECONDS", 0.5)
    w = Writer(tmp_path)
    n = FLOW_ROWS + 120
    w.write([flow(i, t=float(i)) for i in range(n)])
    w.close()
    batches = collect(tmp_path, n)
    rows = [r for b in batches for r in b["rows"]]  # type: ignore[attr-defined]
    skipped = sum(b["skipped"] for b in batches)  # type: ignore[misc]
    assert skipped + len(rows) == n and skipped >= 120
    assert rows[-1]["time"] == float(n - 1)  # the newest kept
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)
