"""The flow collector (`python -m podnet.flowlog`) as the daemon's child, supervised as the
DNS server is (dns_child: started beside the stand-in, adopted after a daemon restart,
restarted with backoff when it dies, stopped with the daemon). Its own process: reading
netlink events of every node must not share a GIL with the syncs and the stand-in.

PODNET_FLOWS=0 in the daemon's environment leaves it out (bench/flows_bench.py measures
the cluster without it)."""

from __future__ import annotations

import os

from podnet.daemon import procs
from podnet.daemon.dns_child import DnsChild


def enabled() -> bool:
    return os.environ.get("PODNET_FLOWS", "1") != "0"


class FlowsChild(DnsChild):
    module = procs.FLOWS
    what = "the flow collector"

    def adopted(self, pid: int) -> None:
        pass  # it reads the cluster's picture again by itself
