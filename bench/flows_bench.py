"""What flow logging costs: new TCP connections per second through a pod pair across two
nodes, with and without the flow collector and a `podnet flows -f` reader running.

The cluster: `src` on node-1, `dst` on node-2, a policy isolating `dst` for ingress and one
isolating `src` for egress, both admitting the pair, so that every connection meets a log
statement on each node (the worst case for the log rules); a Service so that conntrack
runs on both nodes. The daemon runs with PODNET_FLOWS=0 (no collector); the bench starts
the collector (`python -m podnet.flowlog`) and the reader (`podnet flows -f -o json`) itself
for the "with" rounds and stops them after. The rules are the same in both rounds: the log
statements are always there; what flows logging adds is the collector reading and the
reader following. A connect loop (connect, read the stand-in's identity line, close) runs
inside `src` for SECONDS per round; rounds alternate. Printed: connections per second per
round, medians, the ratio with / without, and the CPU time the collector and the reader
used per 1,000 connections (CPU time is what a shared, loaded machine distorts least).

    sudo .venv/bin/python bench/flows_bench.py [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

LOOP = r"""
import socket, sys, time
ip, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
n = errors = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((ip, port))
        s.sendall(b"flows-bench\n")  # not HTTP: the stand-in answers its line at once
        s.recv(256)
        n += 1
    except OSError:
        errors += 1
    finally:
        s.close()
print(n, errors)
"""


def docs() -> list[dict[str, object]]:
    def pod(name: str, node: str, role: str) -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "bench", "labels": {"role": role}},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "c", "ports": [{"containerPort": 8080}]}],
            },
        }

    def pol(name: str, spec: dict[str, object]) -> dict[str, object]:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": "bench"},
            "spec": spec,
        }

    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}},
        pod("src", "node-1", "src"),
        pod("dst", "node-2", "dst"),
        pol("dst-in", {"podSelector": {"matchLabels": {"role": "dst"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "src"}}}]}]}),
        pol("src-out", {"podSelector": {"matchLabels": {"role": "src"}}, "policyTypes": ["Egress"], "egress": [{"to": [{"podSelector": {"matchLabels": {"role": "dst"}}}]}]}),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "dst", "namespace": "bench"},
            "spec": {"selector": {"role": "dst"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    ]  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (its children included once reaped)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def connect_round(netns: str, ip: str, seconds: float) -> tuple[int, int]:
    out = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", LOOP, ip, "8080", str(seconds)],
        check=True,
        capture_output=True,
        text=True,
    )
    n, errors = out.stdout.split()
    return int(n), int(errors)


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    name = f"flb-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        env = {**os.environ, "PODNET_STATE_DIR": str(state), "PODNET_FLOWS": "0"}
        (Path(tmp) / "in.yaml").write_text(yaml.safe_dump_all(docs()))
        podnet = [sys.executable, "-m", "podnet"]
        up = [*podnet, "up", "-f", str(Path(tmp) / "in.yaml"), "--cluster", name, "--nodes", "2"]
        subprocess.run(up, env=env, check=True, capture_output=True)
        try:
            return run(name, state / name, env, podnet, args)
        finally:
            subprocess.run([*podnet, "down", "--cluster", name], env=env, capture_output=True)


def run(
    name: str, sdir: Path, env: dict[str, str], podnet: list[str], args: argparse.Namespace
) -> int:
    runtime = json.loads((sdir / "runtime.json").read_text())
    pods = {p["name"]: p for p in runtime["pods"]}
    netns, ip = pods["src"]["netns"], pods["dst"]["ip"]
    time.sleep(2)  # the stand-in listens
    connect_round(netns, ip, 1.0)  # warm up
    rates: dict[str, list[float]] = {"without": [], "with": []}
    cpu = {"collector": 0.0, "reader": 0.0}
    with_conns = shown = 0
    losses: list[dict[str, object]] = []
    print(f"cluster {name}: src (node-1) -> dst (node-2) {ip}:8080, {args.seconds:g} s rounds")
    for r in range(args.rounds):
        for mode in ("without", "with"):
            procs: list[subprocess.Popen[bytes]] = []
            if mode == "with":
                log = (sdir / "collector.log").open("w")
                collector = subprocess.Popen(
                    [sys.executable, "-m", "podnet.flowlog", "--state-dir", str(sdir), "--cluster", name],
                    env=env, stderr=log,
                )  # fmt: skip
                log.close()
                seen = (sdir / f"reader-{r}.jsonl").open("w")
                reader = subprocess.Popen(
                    [*podnet, "flows", "--cluster", name, "-f", "-o", "json"],
                    env=env, stdout=seen, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                seen.close()
                procs = [collector, reader]
                _wait_sockets(sdir / "collector.log")
                time.sleep(1.0)  # the reader has read the history and follows
                before = [cpu_seconds(p.pid) for p in procs]
            began = time.time()
            n, errors = connect_round(netns, ip, args.seconds)
            rate = n / args.seconds
            rates[mode].append(rate)
            extra = ""
            if procs:
                time.sleep(1.0)  # the last records are written and read
                used = [cpu_seconds(p.pid) - b for p, b in zip(procs, before, strict=True)]
                cpu["collector"] += used[0]
                cpu["reader"] += used[1]
                with_conns += n
                got = [json.loads(x) for x in (sdir / f"reader-{r}.jsonl").read_text().splitlines()]
                got = [x for x in got if x["time"] >= began]  # not the history before
                pair = [x for x in got if x["type"] == "flow" and x["dst"]["ip"] == ip]
                lost = [x for x in got if x["type"] == "lost"]
                shown += len(pair)
                losses += lost
                extra = f"; collector {used[0]:.2f} s CPU, reader {used[1]:.2f} s CPU"
                for p in procs:
                    p.terminate()
                    p.wait(10)
            print(
                f"round {r + 1} {mode:>7}: {rate:7.0f} conn/s ({n} ok, {errors} failed), load {load()}{extra}"
            )
    lo, hi = statistics.median(rates["without"]), statistics.median(rates["with"])
    print(f"median without {lo:.0f} conn/s, with {hi:.0f} conn/s: ratio with/without {hi / lo:.3f}")
    if with_conns:
        per = 1000 / with_conns
        print(
            f"CPU per 1,000 connections: collector {cpu['collector'] * per * 1000:.0f} ms, "
            f"reader (flows -f) {cpu['reader'] * per * 1000:.0f} ms"
        )
    print(
        f"flows -f printed {shown} flows of the pair for {with_conns} connections made while "
        f"the collector ran; {len(losses)} loss reports" + "".join(f"\n  {x}" for x in losses[:5])
    )
    return 0


def _wait_sockets(log: Path, timeout: float = 30.0) -> None:
    """The collector reads both nodes (its log says so)."""
    deadline = time.monotonic() + timeout
    while log.read_text().count("reading conntrack and nflog") < 2:
        if time.monotonic() > deadline:
            raise SystemExit(f"the collector did not start: {log.read_text()}")
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
