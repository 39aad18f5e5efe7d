"""Cluster DNS throughput and latency: podnet's DNS server against dnsmasq, same records,
same run, same cores (root).

A cluster is brought up (`podnet up`, a unique name, a temporary state directory) with a
kube-dns pod, a client pod, a pod for dnsmasq and --services ClusterIP Services. dnsmasq
(Debian's) serves the very records of the cluster's dns.json (its A records as a hosts
file, `--local=/cluster.local/` so that unknown names are NXDOMAIN, not forwarded), in its
own pod's namespace. Each server is pinned to one core (taskset), dnsperf to the other,
inside the client pod. For each server, rounds alternate:

- throughput: dnsperf with 100 queries outstanding for --seconds: queries/s;
- latency: dnsperf at a fixed --rate (the target, 20,000/s) with -v (every query's
  latency), for p50/p99 at that load.

The queries: the Services' names (A), a tenth of them names that do not exist (NXDOMAIN);
with --edns each carries an OPT record (dnsperf -e). With --realtime the latency runs put
both servers and dnsperf under SCHED_FIFO, to tell a server's own latency from the delays a
loaded machine adds. Measuring starts once both servers
answer `dig` (dnsmasq reads its hosts file after it starts listening). Also reported: each
server's CPU time (utime + stime from /proc) per answered query during the latency run, and
during the throughput run the queries answered per CPU-second the server used: what one
core of its own would deliver, a figure that a loaded machine, which takes the core away
now and then, disturbs far less than queries per second of wall time; and the load average.
Everything is removed at the end, also after a failure (podnet down; dnsmasq killed by pid;
the temporary directory).

    sudo .venv/bin/python bench/dns_bench.py [--services 1000] [--seconds 10] [--rounds 2] [--edns]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

DNS_IP, CLIENT_IP, DNSMASQ_IP = "10.244.0.53", "10.244.0.54", "10.244.0.55"
RT_PRIORITY = 10  # --realtime: SCHED_FIFO priority of both servers and dnsperf


def set_realtime(pid: int, on: bool) -> None:
    """SCHED_FIFO (or back to SCHED_OTHER) for a server during a rate-limited run: at 20,000
    queries/s each server and dnsperf need about a fifth of a core, and the kernel's RT
    throttling leaves the rest of the machine at least 5% in any case."""
    policy = ["-f", str(RT_PRIORITY)] if on else ["-o", "0"]
    subprocess.run(["chrt", *policy[:1], "-p", policy[1], str(pid)], check=True)


def manifests(services: int) -> list[dict]:
    def pod(ns: str, name: str, ip: str, labels: dict | None = None, ports=()) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"containers": [{"name": "c", "image": "x", "ports": list(ports)}]},
            "status": {"podIP": ip},
        }

    docs: list[dict] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
        for n in ("kube-system", "bench")
    ]
    docs.append(
        pod(
            "kube-system",
            "coredns",
            DNS_IP,
            {"k8s-app": "kube-dns"},
            [
                {"containerPort": 53, "protocol": "UDP", "name": "dns"},
                {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"},
            ],
        )
    )
    docs.append(pod("bench", "client", CLIENT_IP))
    docs.append(pod("bench", "dnsmasq", DNSMASQ_IP))
    for i in range(services):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"svc-{i}", "namespace": "bench"},
                "spec": {
                    "clusterIP": f"10.97.{i // 250}.{i % 250 + 1}",
                    "ports": [{"name": "http", "port": 80}],
                },
            }
        )
    return docs


def podnet(env: dict[str, str], *args: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "podnet", *args], env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"podnet {' '.join(args)} failed:\n{out.stdout}{out.stderr}")


def netns_of(sdir: Path, key: str) -> str:
    for p in json.loads((sdir / "runtime.json").read_text())["pods"]:
        if f"{p['namespace']}/{p['name']}" == key:
            return str(p["netns"])
    raise SystemExit(f"no pod {key}")


def dnsperf(
    client: str,
    server: str,
    qfile: Path,
    seconds: int,
    rate: int | None,
    edns: bool,
    realtime: bool = False,
) -> str:
    rt = ["chrt", "-f", str(RT_PRIORITY)] if realtime else []
    argv = ["ip", "netns", "exec", client, *rt, "taskset", "-c", "0", "dnsperf", "-s", server]
    argv += ["-d", str(qfile), "-l", str(seconds), "-q", "100", "-c", "4"]
    if rate:
        argv += ["-Q", str(rate), "-v"]
    if edns:
        argv += ["-e"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise SystemExit(f"dnsperf failed: {out.stderr}")
    return out.stdout


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def completed(text: str) -> int:
    m = re.search(r"Queries completed:\s+(\d+)", text)
    return int(m.group(1)) if m else 0


def answers_at_once(client: str, server: str, name: str) -> bool:
    out = subprocess.run(
        ["ip", "netns", "exec", client, "dig", "+short", "+time=1", "+tries=1", f"@{server}", name],
        capture_output=True,
        text=True,
    )
    return out.returncode == 0 and out.stdout.strip() != ""


def load() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def qps(text: str) -> float:
    m = re.search(r"Queries per second:\s+([\d.]+)", text)
    return float(m.group(1)) if m else 0.0


def lost(text: str) -> str:
    m = re.search(r"Queries lost:\s+(\d+ \([\d.]+%\))", text)
    return m.group(1) if m else "?"


def latencies(text: str) -> tuple[float, float]:
    """(p50, p99) in ms from dnsperf -v lines: `> NOERROR name A 0.000123`."""
    values = []
    for line in text.splitlines():
        if line.startswith("> "):
            last = line.rsplit(None, 1)[1]
            # a query that timed out (`> T ...`) has no latency: count it as the timeout
            values.append(float(last) if last[0].isdigit() else 5.0)
    values.sort()
    if not values:
        return (float("nan"), float("nan"))
    return (values[len(values) // 2] * 1000, values[int(len(values) * 0.99)] * 1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--edns", action="store_true", help="queries with EDNS (dnsperf -e)")
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="latency runs with both servers and dnsperf under SCHED_FIFO (chrt): what the "
        "servers do when other processes on the machine do not delay them",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dns-bench-"))
    name = f"dnsb-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "PODNET_STATE_DIR": str(tmp / "state")}
    sdir = tmp / "state" / name
    (tmp / "m.yaml").write_text(yaml.safe_dump_all(manifests(args.services)))
    dnsmasq: subprocess.Popen[bytes] | None = None
    try:
        started = time.monotonic()
        podnet(env, "up", "-f", str(tmp / "m.yaml"), "--cluster", name, "--nodes", "1")
        print(f"cluster {name} up in {time.monotonic() - started:.1f}s", flush=True)
        deadline = time.monotonic() + 30
        while not (sdir / "dns-server.json").exists() or '"serving": []' in (
            sdir / "dns-server.json"
        ).read_text().replace("\n", ""):
            if time.monotonic() > deadline:
                raise SystemExit("the DNS server did not start")
            time.sleep(0.1)
        ours = int((sdir / "dns-server.pid").read_text())
        subprocess.run(["taskset", "-pc", "1", str(ours)], check=True, capture_output=True)
        zone = json.loads((sdir / "dns.json").read_text())["zone"]
        a_records = [line.split() for line in zone.splitlines() if " IN A " in line]
        (tmp / "hosts").write_text("".join(f"{r[4]} {r[0].rstrip('.')}\n" for r in a_records))
        where = ["ip", "netns", "exec", netns_of(sdir, "bench/dnsmasq"), "taskset", "-c", "1"]
        dnsmasq_args = [
            "dnsmasq", "-k", "--no-resolv", "--no-hosts", f"--addn-hosts={tmp / 'hosts'}",
            "--local=/cluster.local/", "--bind-interfaces", f"--listen-address={DNSMASQ_IP}",
            "--except-interface=lo", "--user=root", "--pid-file=", "--cache-size=10000",
            "--log-facility=-", "--dns-forward-max=1000",
        ]  # fmt: skip
        dnsmasq = subprocess.Popen(
            [*where, *dnsmasq_args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        if dnsmasq.poll() is not None:
            raise SystemExit("dnsmasq did not start")
        names = [r[0] for r in a_records if ".svc." in r[0]]
        client = netns_of(sdir, "bench/client")
        deadline = time.monotonic() + 30
        while not all(answers_at_once(client, ip, names[0]) for ip in (DNS_IP, DNSMASQ_IP)):
            if time.monotonic() > deadline:
                raise SystemExit("a server does not answer dig within 30 s")
            time.sleep(0.2)
        rng = random.Random(1)
        queries = [f"{rng.choice(names)} A" for _ in range(9000)]
        queries += [f"nope-{i}.bench.svc.cluster.local. A" for i in range(1000)]
        rng.shuffle(queries)
        qfile = tmp / "queries"
        qfile.write_text("\n".join(queries) + "\n")
        pids = {"podnet": ours, "dnsmasq": dnsmasq.pid}
        results: dict[str, list[tuple[float, str, float, float, float]]] = {
            "podnet": [],
            "dnsmasq": [],
        }
        print(f"load average before: {' '.join(load())}", flush=True)
        for r in range(args.rounds):
            for label, server in (("podnet", DNS_IP), ("dnsmasq", DNSMASQ_IP)):
                before = cpu_seconds(pids[label])
                thr = dnsperf(client, server, qfile, args.seconds, None, args.edns)
                capacity = completed(thr) / max(cpu_seconds(pids[label]) - before, 1e-9)
                if args.realtime:
                    set_realtime(pids[label], True)
                try:
                    before = cpu_seconds(pids[label])
                    lat = dnsperf(
                        client, server, qfile, args.seconds, args.rate, args.edns, args.realtime
                    )
                    used = cpu_seconds(pids[label]) - before
                finally:
                    if args.realtime:
                        set_realtime(pids[label], False)
                p50, p99 = latencies(lat)
                results[label].append((qps(thr), lost(thr), p50, p99, capacity))
                per_query = used / max(completed(lat), 1) * 1e6
                print(
                    f"round {r + 1} {label:8} {qps(thr):9.0f} q/s (lost {lost(thr)}),"
                    f" {capacity:6.0f} per CPU-second;"
                    f" at {qps(lat):.0f} q/s: p50 {p50:.3f} ms, p99 {p99:.3f} ms,"
                    f" server CPU {per_query:.1f} µs/query",
                    flush=True,
                )
        print(f"load average after: {' '.join(load())}", flush=True)
        best = {k: max(v[0] for v in vals) for k, vals in results.items()}
        per_cpu = {k: sorted(v[4] for v in vals)[len(vals) // 2] for k, vals in results.items()}
        print(
            f"\nbest of {args.rounds}: podnet {best['podnet']:.0f} q/s, dnsmasq "
            f"{best['dnsmasq']:.0f} q/s, ratio {best['podnet'] / best['dnsmasq']:.2f}"
            f" ({args.services} Services; server on core 1, dnsperf on core 0"
            f"{'; EDNS' if args.edns else ''}{'; latency runs SCHED_FIFO' if args.realtime else ''})"
        )
        print(
            f"median queries per CPU-second of the server at full load: podnet"
            f" {per_cpu['podnet']:.0f}, dnsmasq {per_cpu['dnsmasq']:.0f},"
            f" ratio {per_cpu['podnet'] / per_cpu['dnsmasq']:.2f}"
        )
        return 0
    finally:
        if dnsmasq is not None and dnsmasq.poll() is None:
            os.kill(dnsmasq.pid, signal.SIGTERM)
            dnsmasq.wait(5)
        subprocess.run(
            [sys.executable, "-m", "podnet", "down", "--cluster", name],
            env=env,
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
