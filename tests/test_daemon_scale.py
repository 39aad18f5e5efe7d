"""Many pods from one daemon: every socket opens, every pod is verified, descriptors suffice.
The cluster is brought up without its daemon (`podnet up --no-daemon`), so that what is timed
is the daemon's start alone. (How long it takes is printed, not bounded: figures live in
bench/ and docs/daemon.md.)"""

from __future__ import annotations

import json
import time

import pytest

from podnet.daemon import supervisor
from podnet.testing import connect, live_cluster, namespace, pod, read_all

pytestmark = [pytest.mark.datapath, pytest.mark.slow]

PODS = 100
PORTS = {
    "app": [{"containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}],
    "metrics": [{"containerPort": 9090}],
}


def test_hundreds_of_pods_are_served_and_verified(tmp_path):
    docs = [namespace("bench"), *(pod(f"bench/p{i}", containers=PORTS) for i in range(PODS))]
    with live_cluster(tmp_path, docs, "pscale", nodes=1, up_args=["--no-daemon"]) as live:
        assert supervisor.running_pid(live.sdir) is None
        started = time.monotonic()
        supervisor.start(live.sdir, live.name)
        supervisor.wait_ready(live.sdir, 120)
        elapsed = time.monotonic() - started
        print(f"{PODS} pods served and verified in {elapsed:.2f}s")
        status = json.loads((live.sdir / "daemon.json").read_text())
        assert status["listeners"] == 3 * PODS
        last = live.pod(f"bench/p{PODS - 1}")
        with connect(live.pod("bench/p0")["netns"], last["ip"], 9090) as s:
            assert read_all(s) == f"bench/p{PODS - 1} metrics\n".encode()
