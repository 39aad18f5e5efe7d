"""Benchmark of `podnet probe`: the 162-probe truth table (9 pods, 2 ports; the issue asks
for ≤ 3 s) and the rate on a bigger cluster, each without policies and with a policy set
that blocks part of the traffic. Needs root; every cluster is torn down at the end, even on
failure. Traffic stays inside the clusters' own namespaces.

    .venv/bin/python bench/probe_bench.py [--pods 100] [--nodes 4] [--repeat 3]
    .venv/bin/python bench/probe_bench.py --sweep 2000/64 [--repeat 2] [--services]

--sweep PODS/NODES brings up one cluster of that size (namespaces of --per-namespace pods)
with the policies below and probes it as an admin checks a whole cluster: from every pod of
one namespace to every pod, on one port (80/TCP); a false verdict there is worse than a
slow one, so it prints mismatches, probes without an answer and retried probes beside the
rate. --services adds one Service per app and namespace (port 80 to the named port `http`)
and probes them too: from the same namespace to every Service, `--via service`.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from podnet.testing import namespace, pod, podnet, policy, service, unique_cluster

PORTS = [
    {"name": "http", "containerPort": 80},
    {"name": "alt", "containerPort": 81},
    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
]


def e2e_cluster() -> list[dict[str, Any]]:
    docs = [namespace(ns, ns=ns) for ns in "xyz"]
    docs += [pod(f"{ns}/{p}", labels={"pod": p}, ports=PORTS) for ns in "xyz" for p in "abc"]
    return docs


def big_cluster(
    pods: int, namespaces: int = 4, ports: list[dict[str, Any]] = PORTS
) -> list[dict[str, Any]]:
    spaces = [f"team-{i}" for i in range(namespaces)]
    docs = [namespace(ns, team=ns) for ns in spaces]
    for i in range(pods):
        ns = spaces[i % len(spaces)]
        docs.append(pod(f"{ns}/p{i:04d}", labels={"app": "abc"[i % 3]}, ports=ports))
    return docs


def policies(spaces: list[str]) -> list[dict[str, Any]]:
    """Blocks part of everything: each namespace admits TCP only from app=a pods of its own
    namespace and UDP from anywhere; one namespace also isolates egress to its own."""
    out = [
        policy(
            f"{ns}/front",
            {
                "podSelector": {},
                "ingress": [
                    {"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]},
                    {"ports": [{"protocol": "UDP", "port": "dns"}]},
                ],
            },
        )
        for ns in spaces
    ]
    out.append(
        policy(
            f"{spaces[0]}/egress",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"podSelector": {}}]}],
            },
        )
    )
    return out


def app_services(spaces: list[str]) -> list[dict[str, Any]]:
    """One ClusterIP Service per app and namespace: port 80 to the pods' named port `http`."""
    return [
        service(
            f"{ns}/{app}",
            {"app": app},
            ports=[{"name": "web", "port": 80, "targetPort": "http"}],
        )
        for ns in spaces
        for app in "abc"
    ]


def measure(
    name: str,
    sdir: Path,
    ports: str | None,
    repeat: int,
    src: str = "*",
    via: str = "pod",
) -> tuple[list[float], Any]:
    from podnet.cli.probe import collect
    from podnet.policy.ports import parse_ports
    from podnet.render import runtime as rt

    times, report = [], None
    for _ in range(repeat):
        started = time.monotonic()
        report = collect(
            sdir, rt.load(sdir), src, ports=parse_ports(ports) if ports else None, via=via
        )
        times.append(time.monotonic() - started)
        if report.mismatches:
            print(f"  {len(report.mismatches)} MISMATCHES", file=sys.stderr)
        if report.unanswered:
            print(f"  {len(report.unanswered)} WITHOUT AN ANSWER", file=sys.stderr)
    return times, report


def line(label: str, times: list[float], report: Any) -> None:
    n = len(report.results)
    best, med = min(times), statistics.median(times)
    verdicts = Counter(r.verdict for r in report.results)
    retried = sum(r.seen.attempts > 1 for r in report.results)
    print(
        f"{label:<34} {n:>7} probes  best {best:7.3f}s  median {med:7.3f}s  "
        f"{n / best:>9,.0f} probes/s  (probing alone {report.seconds:.3f}s)  "
        + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items()))
        + f"; mismatches {len(report.mismatches)}, retried {retried}"
    )


def unlimit_icmp(sdir: Path) -> None:
    """--icmp-unlimited: ICMP errors of the cluster's nodes are not rate-limited (only the
    nodes' own namespaces change). Linux limits the ICMP errors a namespace sends (per
    destination: a burst of 6, then 1/s; and 1,000/s in all), so past the first few, the
    datapath's rejects go unsent and blocked probes wait for their timeout."""
    import json
    import subprocess

    for n in json.loads((sdir / "runtime.json").read_text())["nodes"]:
        subprocess.run(
            ["ip", "netns", "exec", n["netns"], "sysctl", "-qw", "net.ipv4.icmp_ratemask=0"],
            check=True,
        )


def run_one(
    tmp: Path,
    label: str,
    docs: list[dict[str, Any]],
    nodes: int,
    ports: str | None,
    repeat: int,
    icmp_unlimited: bool = False,
) -> None:
    name = unique_cluster("pbench")
    env = {"PODNET_STATE_DIR": str(tmp / "state")}
    os.environ.update(env)
    manifest = tmp / f"{name}.yaml"
    manifest.write_text(yaml.safe_dump_all(docs))
    try:
        started = time.monotonic()
        out = podnet("up", "-f", str(manifest), "--cluster", name, "--nodes", str(nodes), env=env)
        if out.returncode:
            raise SystemExit(f"up failed: {out.stderr}")
        pods = sum(d["kind"] == "Pod" for d in docs)
        print(f"# {label}: {pods} pods on {nodes} nodes, up in {time.monotonic() - started:.1f}s")
        if icmp_unlimited:
            unlimit_icmp(tmp / "state" / name)
            label += " (icmp unlimited)"
        line(f"{label}, no policy", *measure(name, tmp / "state" / name, ports, repeat))
        spaces = [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"]
        pol = tmp / f"{name}-policies.yaml"
        pol.write_text(yaml.safe_dump_all(policies(spaces)))
        out = podnet("apply", "-f", str(pol), "--cluster", name, env=env)
        if out.returncode:
            raise SystemExit(f"apply failed: {out.stderr}")
        line(f"{label}, policies", *measure(name, tmp / "state" / name, ports, repeat))
    finally:
        podnet("down", "--cluster", name, env=env)


def sweep(tmp: Path, size: str, repeat: int, per_namespace: int, services: bool) -> None:
    """One namespace to every pod on 80/TCP, with policies in force (see the docstring)."""
    pods, nodes = (int(x) for x in size.split("/"))
    name = unique_cluster("psweep")
    env = {"PODNET_STATE_DIR": str(tmp / "state")}
    os.environ.update(env)
    # One port a pod, the one probed: at 5,000 pods the stand-in's sockets (one per declared
    # port) and namespace fds must stay under the daemon's RLIMIT_NOFILE (20,000 here).
    docs = big_cluster(pods, max(1, -(-pods // per_namespace)), PORTS[:1])
    spaces = [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"]
    extra = app_services(spaces) if services else []
    manifest = tmp / f"{name}.yaml"
    manifest.write_text(yaml.safe_dump_all([*docs, *policies(spaces), *extra]))
    try:
        started = time.monotonic()
        # No DNS add-on (nothing here resolves names); a generous wait for the endpoints to
        # follow readiness on a machine that other suites load.
        up = ("--cluster-dns", "off", "--timeout", "900")
        argv = ("up", "-f", str(manifest), "--cluster", name, "--nodes", str(nodes), *up)
        # Not podnet(): its 300 s bound is shorter than `up` of 5,000 pods on a loaded host.
        out = subprocess.run(
            [sys.executable, "-m", "podnet", *argv],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=1800,
        )
        if out.returncode:
            raise SystemExit(f"up failed: {out.stderr}")
        print(f"# sweep: {pods} pods on {nodes} nodes, up in {time.monotonic() - started:.1f}s")
        times, report = measure(name, tmp / "state" / name, "80/TCP", repeat, f"{spaces[0]}/*")
        line(f"{spaces[0]}/* -> * on 80/TCP", times, report)
        if services:
            times, report = measure(
                name, tmp / "state" / name, "80/TCP", repeat, f"{spaces[0]}/*", via="service"
            )
            line(f"{spaces[0]}/* -> every Service, 80/TCP", times, report)
    finally:
        podnet("down", "--cluster", name, env=env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=100, help="pods of the bigger cluster")
    ap.add_argument("--nodes", type=int, default=4, help="nodes of the bigger cluster")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--icmp-unlimited",
        action="store_true",
        help="lift the ICMP error rate limit in the nodes' namespaces (see unlimit_icmp)",
    )
    ap.add_argument("--sweep", metavar="PODS/NODES", help="only the whole-cluster sweep")
    ap.add_argument("--per-namespace", type=int, default=32, help="pods per namespace in the sweep")
    ap.add_argument(
        "--services",
        action="store_true",
        help="the sweep also through one Service per app and namespace (--via service)",
    )
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    with tempfile.TemporaryDirectory(prefix="probe-bench-") as d:
        tmp = Path(d)
        if args.sweep:
            sweep(tmp, args.sweep, args.repeat, args.per_namespace, args.services)
            return
        icmp = args.icmp_unlimited
        run_one(tmp, "9 pods x 2 ports", e2e_cluster(), 2, "80/TCP,81/TCP", args.repeat, icmp)
        big = big_cluster(args.pods)
        run_one(tmp, f"{args.pods} pods x 3 ports", big, args.nodes, None, args.repeat, icmp)


if __name__ == "__main__":
    # A timeout's SIGTERM ends the run through its finally blocks: every cluster comes down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
