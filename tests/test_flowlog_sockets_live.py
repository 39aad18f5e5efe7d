"""The collector's netlink sockets against the real kernel, in a scratch namespace of the
test's own: every event read when the buffer holds them, and an overrun counted, not
swallowed, when it does not (a receive buffer shrunk to the minimum)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from podnet.datapath.netns import Namespaces
from podnet.flowlog import nl_sockets
from podnet.render import flow_log
from podnet.render.kernel_names import netns_prefix
from podnet.testing import unique_cluster

pytestmark = pytest.mark.datapath

RULES = """table inet t {
 chain out {
  type filter hook output priority 0; policy accept;
  ct state new log prefix "%s" group %d accept
 }
}
"""
CONNECT = r"""
import socket, sys
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1024)
for _ in range(int(sys.argv[1])):
    c = socket.socket(); c.connect(srv.getsockname()); srv.accept()[0].close(); c.close()
"""


@pytest.fixture
def scratch() -> Iterator[str]:
    name = f"{netns_prefix(unique_cluster('pfs'))}scratch"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        tag = flow_log.rejected("t/p", "ingress", ["t/deny"]).prefix
        rules = RULES % (tag, flow_log.GROUP)
        subprocess.run(
            ["ip", "netns", "exec", name, "nft", "-f", "-"], input=rules, text=True, check=True
        )
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _connect(netns: str, n: int) -> None:
    subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", CONNECT, str(n)], check=True
    )


def test_every_event_is_read(scratch: str) -> None:
    spaces = Namespaces()
    ns = nl_sockets.open_node(spaces, "n", scratch, flow_log.GROUP)
    try:
        _connect(scratch, 300)
        events, pkts = [], []
        deadline = time.monotonic() + 2  # nflog sends a batch of fewer than QTHRESH after 50 ms
        while (len(events), len(pkts)) != (300, 300) and time.monotonic() < deadline:
            events += nl_sockets.ct_events(ns)
            pkts += nl_sockets.log_packets(ns)
            time.sleep(0.01)
        assert len(events) == 300 and len(pkts) == 300
        assert all(p.prefix == flow_log.rejected("t/p", "ingress", ["t/deny"]).prefix for p in pkts)
        assert (ns.ct_lost.overruns, ns.log_lost.overruns, ns.log_lost.gap) == (0, 0, 0)
    finally:
        ns.close()
        spaces.close()


def test_an_overrun_is_counted(scratch: str) -> None:
    spaces = Namespaces()
    ns = nl_sockets.open_node(spaces, "n", scratch, flow_log.GROUP)
    try:
        for s in (ns.ct, ns.log):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum
        _connect(scratch, 300)
        events = list(nl_sockets.ct_events(ns))
        pkts = list(nl_sockets.log_packets(ns))
        assert len(events) < 300 and ns.ct_lost.overruns >= 1
        assert len(pkts) < 300 and ns.log_lost.overruns >= 1
        # nflog numbers its messages: what was read plus the gaps it left is all of them
        assert pkts[-1].seq is not None and len(pkts) + ns.log_lost.gap == pkts[-1].seq + 1
    finally:
        ns.close()
        spaces.close()
