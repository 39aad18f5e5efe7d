"""The collector reports each loss once, per node and socket (no root: sockets that are not
netlink stand in; only their loss counts are read)."""

from __future__ import annotations

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
