"""Time `podnet up` and `podnet down`, and what an idle daemon costs, at given sizes.

Targets: issue 3, up of 3 nodes / 100 pods <= 5 s, of 10 nodes / 1,000 pods <= 60 s, down
of the latter <= 10 s; issue 8 (point 5), up of 256 nodes / 5,000 pods <= 60 s in host-gw
and vxlan, down <= 10 s, an idle daemon <= 2 % of a core. Prints figures; it is not a
pass/fail test. Needs root. Each run uses its own cluster name and state directory and is
torn down even when interrupted.

    sudo .venv/bin/python bench/up_bench.py                              # 3/100, 10/1000, no daemon
    sudo .venv/bin/python bench/up_bench.py --sizes 256/5000/500 --modes host-gw,vxlan --idle 60

A size is NODES/PODS[/POLICIES]. Without policies the pods are simple (10 namespaces, one
port); with policies the cluster is bench/gen_cluster.py's (realistic namespaces, apps and
NetworkPolicies) with its placement removed, so that `up --nodes NODES` spreads the pods.
With `--idle S` (the default unless --no-daemon) `up` starts the daemon and waits for every
pod to answer; the daemon's CPU (its own and its reaped children's: nft, ip) is then read
from /proc/PID/stat over S seconds of idleness, and its RSS from /proc/PID/status.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
DEFAULT_SIZES = "3/100,10/1000"
GOALS = {(3, 100): (5.0, None), (10, 1000): (60.0, 10.0), (256, 5000): (60.0, 10.0)}


def pods(n: int) -> list[dict]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"p{i:04}",
                "namespace": f"ns{i % 10}",
                "labels": {"app": f"a{i % 7}"},
            },
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]},
        }
        for i in range(n)
    ]


def manifests(tmp: Path, count: int, policies: int) -> Path:
    """A file of simple pods, or gen_cluster's cluster without its placement."""
    if not policies:
        out = tmp / f"{count}.yaml"
        out.write_text(yaml.safe_dump_all(pods(count)))
        return out
    out = tmp / f"gen-{count}-{policies}"
    subprocess.run(
        [sys.executable, str(HERE / "gen_cluster.py"), str(out), "--pods", str(count),
         "--policies", str(policies)],
        check=True, capture_output=True,
    )  # fmt: skip
    for f in (out / "nodes").iterdir():
        f.unlink()
    (out / "nodes").rmdir()
    for f in (out / "pods").iterdir():
        doc = yaml.load(f.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        for pod in doc["items"]:
            pod["spec"].pop("nodeName", None)
            pod.pop("status", None)
        f.write_text(yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))
    return out


def podnet(env: dict[str, str], *args: str) -> float:
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "podnet", *args], env=env, capture_output=True)
    if out.returncode != 0:
        raise RuntimeError(f"podnet {args[0]} failed: {out.stderr.decode()[-2000:]}")
    return time.monotonic() - start


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of a process, in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def idle(state: Path, seconds: float) -> str:
    """CPU of the daemon once it is idle: after its controller has adopted the kernel state
    (the baseline it computes at start, reported as "sync" in daemon.json)."""
    pid = int((state / "daemon.pid").read_text().split()[0])
    started = time.monotonic()
    while time.monotonic() - started < 300:
        status = json.loads((state / "daemon.json").read_text())
        if status.get("sync"):
            break
        time.sleep(0.5)
    settled = time.monotonic() - started
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_seconds(pid), time.monotonic()
    return (
        f"  idle daemon over {t1 - t0:.0f} s: {100 * (c1 - c0) / (t1 - t0):.1f} % of a core "
        f"(goal 2 %), RSS {rss_mib(pid):.0f} MiB; its baseline finished {settled:.1f} s after up"
    )


def run(tmp: Path, mode: str, nodes: int, count: int, policies: int, idle_s: float) -> None:
    env = {**os.environ, "PODNET_STATE_DIR": str(tmp / "state")}
    name = f"bench-{uuid.uuid4().hex[:6]}"
    src = manifests(tmp, count, policies)
    up_goal, down_goal = GOALS.get((nodes, count), (None, None))
    args = ["up", "-f", str(src), "--cluster", name, "--nodes", str(nodes), "--mode", mode]
    args += ["--timeout", "600"] if idle_s else ["--no-daemon"]
    extra, down = "", None
    try:
        up = podnet(env, *args)
        if idle_s:
            extra = idle(tmp / "state" / name, idle_s)
    finally:
        down = podnet(env, "down", "--cluster", name)
    print(
        f"{mode:8} {nodes:3} nodes {count:5} pods {policies:4} policies: up {up:6.2f} s"
        + (f" (goal {up_goal:g} s)" if up_goal else "")
        + ("" if idle_s else " (no daemon)")
        + f"  down {down:5.2f} s"
        + (f" (goal {down_goal:g} s)" if down_goal else "")
        + ("\n" + extra if extra else ""),
        flush=True,
    )


def main() -> int:
    if os.geteuid() != 0:
        print("bench/up_bench.py needs root", file=sys.stderr)
        return 2
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", nargs="?", help="one mode (the old interface); else --modes")
    ap.add_argument("--modes", default="host-gw", help="host-gw,vxlan")
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="NODES/PODS[/POLICIES],...")
    ap.add_argument("--idle", type=float, default=None, help="seconds of idle daemon to measure")
    ap.add_argument("--no-daemon", action="store_true", help="up --no-daemon, no idle figure")
    args = ap.parse_args()
    modes = [args.mode] if args.mode else args.modes.split(",")
    idle_s = 0.0 if args.no_daemon else (args.idle if args.idle is not None else 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            nodes, count, *rest = (int(x) for x in size.split("/"))
            for mode in modes:
                run(Path(tmp), mode, nodes, count, rest[0] if rest else 0, idle_s)
    return 0


if __name__ == "__main__":
    # A timeout's SIGTERM ends the run through its finally blocks: every cluster comes down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
