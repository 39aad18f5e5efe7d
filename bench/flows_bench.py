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

`--log-rules` measures the log statements alone, in a scratch namespace of their own
(`podnet.<bench name>.logcost`, removed at the end): a loopback connect loop through an
output chain that accepts new connections with `ct state new accept`, then with the same
rule carrying a podnet tag (`log prefix "pn:a:<hash>:i:0" group 7`) and nobody bound to
the group, then with a reader bound (a collector's socket, drained); CPU time of the
loop per 1,000 connections (the kernel's work on loopback runs in the sender's context).

    sudo .venv/bin/python bench/flows_bench.py [--seconds 5] [--rounds 3] [--log-rules]
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
from typing import Any

import yaml

LOOP = r"""
import os, socket, sys, time
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
t = os.times()
print(n, errors, t.user + t.system)
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
    n, errors, _cpu = out.stdout.split()
    return int(n), int(errors)


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--log-rules", action="store_true", help="the log statements alone, instead")
    args = ap.parse_args()
    name = f"flb-{uuid.uuid4().hex[:6]}"
    if args.log_rules:
        log_rules(name, args)
        return 0
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
                _caught_up(sdir / f"reader-{r}.jsonl")  # the collector may lag (nice 10)
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


LOGCOST_RULES = """table inet logcost {{
 chain out {{
  type filter hook output priority 0; policy accept;
  ct state established,related accept
  ct state new {log}accept
 }}
}}
"""


def log_rules(name: str, args: argparse.Namespace) -> None:
    """Connections per second and the loop's CPU per 1,000 connections on loopback,
    without a log statement, with one and nobody reading, with one and a reader."""
    from podnet.datapath.netns import Namespaces
    from podnet.render import flow_log
    from podnet.render.kernel_names import netns_prefix

    ns = f"{netns_prefix(name)}logcost"
    tag = flow_log.admitted("bench/dst-in", "ingress", 0)
    log = f'log prefix "{tag.prefix}" group {tag.group} '
    modes = {"no log statement": ("", False), "log, nobody reading": (log, False)}
    modes["log, a reader"] = (log, True)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    spaces = Namespaces()
    server = None
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", SERVER],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert server.stdout is not None
        server.stdout.readline()  # listening
        results: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
        for r in range(args.rounds):
            for mode, (statement, read) in modes.items():
                rules = "flush ruleset\n" + LOGCOST_RULES.format(log=statement)
                nft = ["ip", "netns", "exec", ns, "nft", "-f", "-"]
                subprocess.run(nft, input=rules, text=True, check=True)
                rate, per, drained = _logcost_round(
                    spaces, ns, tag.group if read else None, args.seconds
                )
                results[mode].append((rate, per))
                extra = f", {drained} messages read" if read else ""
                print(
                    f"log rules round {r + 1} {mode:>20}: {rate:7.0f} conn/s, loop CPU {per:5.0f} ms per 1,000{extra}"
                )
        base = statistics.median(p for _, p in results["no log statement"])
        for mode, xs in results.items():
            med = statistics.median(p for _, p in xs)
            rate = statistics.median(x for x, _ in xs)
            print(
                f"log rules, {mode}: median loop CPU {med:.0f} ms per 1,000 connections ({med / base:.3f} of none), {rate:.0f} conn/s"
            )
    finally:
        if server is not None:
            server.terminate()
            server.wait(5)
            if server.stdout is not None:
                server.stdout.close()
        spaces.close()
        subprocess.run(["ip", "netns", "del", ns], check=False)


def _logcost_round(
    spaces: Any, ns: str, group: int | None, seconds: float
) -> tuple[float, float, int]:
    """One loopback round; with `group`, a socket bound to it is drained meanwhile."""
    import threading

    from podnet.flowlog import nl_sockets

    reader = nl_sockets.open_node(spaces, "logcost", ns, group) if group is not None else None
    done = threading.Event()
    drained = [0]

    def drain() -> None:
        while reader is not None and not done.is_set():
            drained[0] += sum(1 for _ in nl_sockets.log_packets(reader))
            time.sleep(0.01)

    t = threading.Thread(target=drain)
    t.start()
    try:
        out = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", LOOP, "127.0.0.1", "9", str(seconds)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        done.set()
        t.join()
        if reader is not None:
            reader.close()
    n, _errors, cpu = out.stdout.split()
    return int(n) / seconds, float(cpu) / max(1, int(n)) * 1e6, drained[0]


SERVER = r"""
import socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 9))
s.listen(512)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    try:
        c.recv(64)
        c.sendall(b"logcost\n")
    finally:
        c.close()
"""


def _caught_up(path: Path, quiet: float = 1.5, limit: float = 60.0) -> None:
    """The reader's output has stopped growing for `quiet` seconds."""
    deadline = time.monotonic() + limit
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = path.stat().st_size
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.1)


def _wait_sockets(log: Path, timeout: float = 30.0) -> None:
    """The collector reads both nodes (its log says so)."""
    deadline = time.monotonic() + timeout
    while log.read_text().count("reading conntrack and nflog") < 2:
        if time.monotonic() > deadline:
            raise SystemExit(f"the collector did not start: {log.read_text()}")
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
