"""Many pods from one daemon: every socket opens, every pod is verified, descriptors suffice.
(How long it takes is printed, not bounded: figures live in bench/ and docs/daemon.md.)"""

from __future__ import annotations

import json
import time

import pytest

from podnet.daemon import supervisor
from podnet.testing import Topology, connect, live_cluster, read_all

pytestmark = [pytest.mark.datapath, pytest.mark.slow]

PODS = 100


def build(t: Topology) -> None:
    t.add_node("n1", "172.18.0.2")
    for i in range(PODS):
        t.add_pod(
            "n1",
            "bench",
            f"p{i}",
            f"10.244.{i // 250}.{i % 250 + 2}",
            {"app": [(8080, "TCP"), (53, "UDP")], "metrics": [(9090, "TCP")]},
        )


def test_hundreds_of_pods_are_served_and_verified():
    with live_cluster(build, daemon=False) as live:
        started = time.monotonic()
        supervisor.start(live.root, live.cluster)
        supervisor.wait_ready(live.root, 120)
        elapsed = time.monotonic() - started
        print(f"{PODS} pods served and verified in {elapsed:.2f}s")
        status = json.loads((live.root / "daemon.json").read_text())
        assert status["listeners"] == 3 * PODS
        last = live.topology.pods[-1]
        with connect(live.topology.netns("bench-p0"), last["ip"], 9090) as s:
            assert read_all(s) == f"bench/{last['name']} metrics\n".encode()
