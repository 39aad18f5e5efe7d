"""The collector reports each loss once, per node and socket (no root: sockets that are not
netlink stand in; only their loss counts are read)."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path

from podnet.flowlog import history
from podnet.flowlog.collector import Collector
from podnet.flowlog.flow_record import Lost
from podnet.flowlog.nl_sockets import NodeSockets


def test_losses_are_written_once_each(tmp_path: Path) -> None:
    c = Collector(tmp_path)
    ns = NodeSockets("node-1", "x", socket.socket(), socket.socket())
    c.nodes["node-1"] = ns
    try:
        ns.ct_lost.overruns = 2
        ns.log_lost.gap = 5
        first = c._losses()
        assert sorted((r.source, r.overruns, r.messages) for r in first) == [
            ("conntrack", 2, 0),
            ("nflog", 0, 5),
        ]
        assert c._losses() == []
        ns.log_lost.overruns = 1
        (again,) = c._losses()
        assert (again.node, again.source, again.overruns, again.messages) == (
            "node-1",
            "nflog",
            1,
            0,
        )
        c.writer.write(first)
        back = [r for r in history.recent(tmp_path) if isinstance(r, Lost)]
        assert [(r.node, r.source, r.overruns, r.messages) for r in back] == [
            (r.node, r.source, r.overruns, r.messages) for r in first
        ]
    finally:
        ns.close()
        c.writer.close()


def test_a_reject_the_picture_cannot_attribute_rereads_it_at_most_every_stale_look(
    tmp_path: Path, monkeypatch
) -> None:
    """A pending reject whose policies the picture lacks makes the collector read the
    picture again, but not at every step (TICK): at most once per STALE_LOOK."""
    from podnet.flowlog import collector as mod

    c = Collector(tmp_path)
    reads: list[float] = []
    clock = [100.0]
    monkeypatch.setattr(mod.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(c.joiner, "stale", lambda _d: True)
    monkeypatch.setattr(c, "refresh", lambda: reads.append(clock[0]))
    monkeypatch.setattr(c.selector, "select", lambda _timeout: [])
    c.next_refresh = 1e9  # only the stale look reads
    try:
        for i in range(40):  # 2.5 s of steps
            clock[0] = 100.0 + i * 0.0625  # exact in binary
            c.step()
        assert len(reads) == 10  # every 4th step (0.25 s >= STALE_LOOK), not every step (40)
        assert all(b - a >= mod.STALE_LOOK - 1e-9 for a, b in itertools.pairwise(reads))
    finally:
        c.writer.close()
