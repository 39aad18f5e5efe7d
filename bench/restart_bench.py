"""How long a cluster goes unserved after `kill -9` of its daemon (issue 8 point 8).

Target: the watchdog restarts the daemon and every pod serves again within 2 s, with the
kernel state untouched. Prints figures; it is not a pass/fail test. Needs root. Each size
gets its own cluster name and state directory and is torn down even when interrupted.

    sudo .venv/bin/python bench/restart_bench.py                       # 100 and 1,000 pods
    sudo .venv/bin/python bench/restart_bench.py --sizes 2/20 --kills 10

A size is NODES/PODS. While the daemon is killed `--kills` times (`--interval` seconds after
it serves again: one that lived less than 10 s is restarted after a back-off, as the kubelet
does in a crash loop), one thread connects to a pod again and again from its node's namespace
(10 ms apart, 300 ms connect timeout): "first answer" is the time from the kill to the first
answer after the first failure. "50 pods answer" is the time from the kill until each of 50
pods spread over the nodes has answered a connection from its node (tried again and again, 200 ms
timeout). "all proven ready" is the time until the new daemon's daemon.json says every pod
answered its own readiness check (`supervisor.wait_ready`): the daemon's proof, which comes
after the pods serve and competes with its controller's start-up. The load average
is printed with each size: on a shared 2-core machine it moves the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

PORT = 8080
SAMPLE = 50  # pods, spread over every node, that must all answer again


def pods(n: int) -> list[dict]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"p{i:04}", "namespace": f"ns{i % 10}"},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": PORT}]}]},
        }
        for i in range(n)
    ]


def podnet(env: dict[str, str], *args: str) -> None:
    out = subprocess.run([sys.executable, "-m", "podnet", *args], env=env, capture_output=True)
    if out.returncode:
        raise RuntimeError(f"podnet {args[0]} failed: {out.stderr.decode()[-2000:]}")


def answers(node_fd: int, ip: str, timeout: float = 0.2) -> bool:
    from podnet.datapath import netns

    with netns.entered_fd(node_fd):
        s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((ip, PORT))
        s.sendall(b"\n")
        return bool(s.recv(100))
    except OSError:
        return False
    finally:
        s.close()


def sweep(sample: list[tuple[int, str]], t0: float, deadline: float) -> float | None:
    """Seconds from t0 until every sampled pod has answered once after t0 (None: never)."""
    left = list(sample)
    while left and time.monotonic() < deadline:
        left = [(fd, ip) for fd, ip in left if not answers(fd, ip)]
        if left:
            time.sleep(0.01)
    return None if left else time.monotonic() - t0


def kernel_state(prefix: str) -> str:
    """The cluster's kernel state as text (stateless nft: counters count the traffic)."""
    from podnet.datapath import netns

    parts = []
    for ns in netns.listing(prefix):
        for argv in (["ip", "-o", "addr"], ["ip", "route"], ["nft", "-s", "list", "ruleset"]):
            r = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True)
            parts.append(r.stdout)
    return "".join(parts)


def run(nodes: int, count: int, kills: int, interval: float) -> None:
    from podnet.daemon import supervisor
    from podnet.render import kernel_names
    from podnet.testing import ConnectLoop

    name = "rb" + uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory(prefix="podnet-restart-") as tmpdir:
        tmp = Path(tmpdir)
        path = tmp / "in.yaml"
        path.write_text(yaml.safe_dump_all(pods(count)))
        env = {**os.environ, "PODNET_STATE_DIR": str(tmp / "state")}
        sdir = tmp / "state" / name
        first: list[float] = []
        ready: list[float] = []
        served: list[float] = []
        lost = 0
        try:
            podnet(env, "up", "-f", str(path), "--cluster", name, "--nodes", str(nodes))
            doc = json.loads((sdir / "runtime.json").read_text())
            pod = next(p for p in doc["pods"] if p["namespace"] == "ns0")
            node = next(n for n in doc["nodes"] if n["name"] == pod["node"])
            from podnet.datapath import netns

            node_fds = {n["name"]: netns.open_fd(n["netns"]) for n in doc["nodes"]}
            plain = [p for p in doc["pods"] if p["namespace"].startswith("ns")]
            step = max(1, len(plain) // SAMPLE)
            sample = [(node_fds[p["node"]], p["ip"]) for p in plain[::step]]
            # Taken once the kernel's own IPv6 duplicate address detection has finished on
            # the pods' links (~1-2 s after they came up; a quick `up` returns before it):
            # its "tentative" flag clearing by itself is no change of the daemon's.
            settle = time.monotonic() + 10
            before = kernel_state(kernel_names.netns_prefix(name))
            while " tentative " in before and time.monotonic() < settle:
                time.sleep(0.2)
                before = kernel_state(kernel_names.netns_prefix(name))
            load = os.getloadavg()[0]
            prober = ConnectLoop(node["netns"], pod["ip"], PORT)
            prober.start()
            try:
                for _ in range(kills):
                    time.sleep(interval)
                    pid = supervisor.running_pid(sdir)
                    assert pid is not None, "no daemon to kill"
                    t0 = time.monotonic()
                    os.kill(pid, signal.SIGKILL)
                    deadline = t0 + 60
                    while supervisor.running_pid(sdir) in (None, pid):
                        if time.monotonic() > deadline:
                            raise RuntimeError("the watchdog did not restart the daemon")
                        time.sleep(0.01)
                    took = sweep(sample, t0, deadline)
                    if took is not None:
                        served.append(took)
                    supervisor.wait_ready(sdir, 60)
                    ready.append(time.monotonic() - t0)
                    while time.monotonic() < deadline:
                        back = prober.back_after(t0)
                        if back is not None:
                            first.append(back)
                            break
                        time.sleep(0.02)
                    else:
                        lost += 1
            finally:
                prober.done.set()
                prober.join()
                for fd in node_fds.values():
                    os.close(fd)
            after = kernel_state(kernel_names.netns_prefix(name))
            same = after == before
            if not same and os.environ.get("RESTART_BENCH_DIFF"):
                import difflib

                sys.stdout.writelines(
                    difflib.unified_diff(before.splitlines(True), after.splitlines(True), n=1)
                )
        finally:
            podnet(env, "down", "--cluster", name)
    restarts = len(ready)

    def fig(xs: list[float]) -> str:
        if not xs:
            return "-"
        return f"p50 {statistics.median(xs):.2f} s, max {max(xs):.2f} s"

    print(
        f"{nodes:>3} nodes / {count:>5} pods: {restarts} kills, load {load:.1f} | "
        f"first answer {fig(first)} | {len(sample)} pods answer {fig(served)} | "
        f"all proven ready {fig(ready)} | never back {lost} | "
        f"kernel state {'untouched' if same else 'CHANGED'}  (goal: 2 s)",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="2/100,10/1000", help="NODES/PODS,...")
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument(
        "--interval",
        type=float,
        default=11.0,
        help="seconds between a daemon's start and its kill (the watchdog restarts a daemon "
        "that lived less than 10 s only after a back-off: a crash loop, not a crash)",
    )
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("restart_bench needs root (it brings clusters up)")
    for size in args.sizes.split(","):
        nodes, count = (int(x) for x in size.split("/"))
        run(nodes, count, args.kills, args.interval)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
