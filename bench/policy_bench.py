"""NetworkPolicy in the live datapath: sync time, change-to-enforcement latency, throughput
with policies in force, rule counts per node. Prints figures; asserts nothing.

    sudo .venv/bin/python bench/policy_bench.py [--pods 1000] [--policies 1000] [--changes 100]

1. A synthetic cluster (bench/gen_cluster.py: realistic namespaces, apps, policies) plus a
   namespace `pbench` with two pods on different nodes: `dst` admits `app=src` on 8080 and
   5201 (iperf3); `src` starts with app=src. Brought up with its daemon (`podnet up`).
2. Rule sync: every node's ruleset rendered and applied for real (counters read and written
   back), full, five times: wall time and the render/apply split; rules per node.
3. Change to enforcement: `podnet label pod src app=other|app=src` alternately, the
   installed command run as a process (interpreter start-up included), then a prober
   inside src's namespace connects to dst:8080 until the outcome flips. p50/p99/max over
   --changes changes of: the daemon's side (its sync status in daemon.json: from the
   SIGUSR1 to the end of the sync that served it), the command (start to exit), and end to
   end (the command's start to the flip seen by the prober).
4. iperf3 src -> dst (across nodes), single TCP stream, round after round: with the policies
   in force; with podnet's ruleset for no policy at all; with the two nodes' podnet tables
   removed (then restored by a full sync).

Everything lives in namespaces named podnet.<cluster>.*; the cluster is removed at the end,
also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
PROBER = r"""
import errno, socket, sys
ip = sys.argv[1]
for _ in sys.stdin:
    try:
        socket.create_connection((ip, 8080), timeout=0.5).close(); print("ok", flush=True)
    except OSError as e:
        print("denied" if e.errno == errno.EHOSTUNREACH else "other", flush=True)
"""


def sh(*argv: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}...: {out.stderr.strip()[-2000:]}")
    return out.stdout


def bench_docs(nodes: list[str]) -> list[dict]:
    def pod(name: str, node: str, app: str) -> dict:
        ports = [{"name": "http", "containerPort": 8080}]
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "pbench", "labels": {"app": app}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x", "ports": ports}]},
        }

    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pbench"}},
        pod("src", nodes[0], "src"),
        pod("dst", nodes[1], "dst"),
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "dst-in", "namespace": "pbench"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "dst"}},
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"app": "src"}}}],
                        "ports": [{"port": 8080}, {"port": 5201}],
                    }
                ],
            },
        },
    ]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--policies", type=int, default=1000)
    ap.add_argument("--namespaces", type=int, default=20)
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--iperf-seconds", type=int, default=5)
    ap.add_argument("--iperf-rounds", type=int, default=2, help="0: no throughput figures")
    ap.add_argument("--no-full", action="store_true", help="no full rule sync figures")
    ap.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds to wait after `up` before the changes (the daemon's start-up work done)",
    )
    ap.add_argument(
        "--via",
        choices=("label", "apply"),
        default="label",
        help="how src's label is flipped: `podnet label`, or `podnet apply -f` of src's manifest",
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="policy-bench-"))
    os.environ["PODNET_STATE_DIR"] = str(tmp / "state")
    name = f"pb-{uuid.uuid4().hex[:6]}"
    gen = tmp / "cluster"
    sh(
        sys.executable, str(HERE / "gen_cluster.py"), str(gen), "--pods", str(args.pods),
        "--policies", str(args.policies), "--namespaces", str(args.namespaces),
    )  # fmt: skip
    nodes = sorted(
        n["metadata"]["name"]
        for n in yaml.safe_load((gen / "nodes" / "nodes.yaml").read_text())["items"]
    )
    (tmp / "pbench.yaml").write_text(yaml.safe_dump_all(bench_docs(nodes)))
    print(f"cluster {name}: {args.pods} pods + 2, {args.policies} policies + 1, {len(nodes)} nodes")
    try:
        t = time.monotonic()
        sh(sys.executable, "-m", "podnet", "up", "-f", str(gen), "-f", str(tmp / "pbench.yaml"),
           "--cluster", name, "--timeout", "300")  # fmt: skip
        print(f"up (with daemon, every pod answering): {time.monotonic() - t:.1f}s")
        if not args.no_full:
            sync_figures(name)
        time.sleep(args.settle)
        latency(name, args.changes, args.via, nodes[0], tmp)
        if args.iperf_rounds:
            throughput(name, nodes, args.iperf_seconds, args.iperf_rounds)
    finally:
        sh(sys.executable, "-m", "podnet", "down", "--cluster", name)
    return 0


def sync_figures(name: str) -> None:
    from podnet.controller.policy_sync import sync_policies
    from podnet.controller.reconciler import Reconciler
    from podnet.nftables import text
    from podnet.state.store import state_dir

    rec = Reconciler(state_dir(name), name)
    t = time.monotonic()
    d = rec.desired()
    desired_s = time.monotonic() - t
    runs = []
    for _ in range(5):
        runs.append(sync_policies(name, d.engine, d.node_netns))
    last = runs[-1]
    assert last.ok, last.errors
    walls = [r.seconds for r in runs]
    render = max(n.render_s for n in last.nodes.values())
    apply_ = max(n.apply_s for n in last.nodes.values())
    print(
        f"rule sync, full, {len(d.node_netns)} nodes in parallel: "
        f"median {statistics.median(walls):.3f}s (min {min(walls):.3f}, max {max(walls):.3f}); "
        f"slowest node: render {render:.3f}s, read counters + nft -f {apply_:.3f}s; "
        f"snapshot+placement+plans beforehand {desired_s:.3f}s"
    )
    rules = [n.rules for n in last.nodes.values()]
    chars = {node: len(text.replace(table)) for node, table in last.tables.items()}
    pods = {n: 0 for n in d.node_netns}
    for node in d.placement.pod_node.values():
        pods[node] += 1
    print(
        f"rules per node: min {min(rules)}, median {statistics.median(rules):.0f}, "
        f"max {max(rules)}, total {sum(rules)}; ruleset text per node median "
        f"{statistics.median(chars.values()) / 1024:.0f} KiB; pods per node median "
        f"{statistics.median(pods.values()):.0f}"
    )
    for node, n in sorted(last.nodes.items())[:3]:
        print(f"  {node}: {pods[node]} pods, {n.rules} rules, {chars[node] / 1024:.0f} KiB")


def latency(name: str, changes: int, via: str, src_node: str, tmp: Path) -> None:
    from podnet.render import kernel_names

    sdir = Path(os.environ["PODNET_STATE_DIR"]) / name
    runtime = json.loads((sdir / "runtime.json").read_text())
    dst_ip = next(
        p["ip"] for p in runtime["pods"] if p["namespace"] == "pbench" and p["name"] == "dst"
    )
    prober = subprocess.Popen(
        ["ip", "netns", "exec", kernel_names.pod_netns(name, "pbench", "src"), sys.executable, "-c",
         PROBER, dst_ip],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert prober.stdin and prober.stdout

    def probe() -> str:
        prober.stdin.write("\n")  # type: ignore[union-attr]
        prober.stdin.flush()  # type: ignore[union-attr]
        return prober.stdout.readline().strip()  # type: ignore[union-attr]

    podnet = str(Path(sys.executable).with_name("podnet"))  # the installed command
    log_start = (sdir / "daemon.log").stat().st_size
    try:
        assert probe() == "ok"
        to_flip, command, daemon, full = [], [], [], 0
        cpu: list[float] = []  # user + system CPU of each `podnet` process
        loads: list[float] = []  # the 1-minute load average at each change
        app = "src"
        for _ in range(changes):
            app = "other" if app == "src" else "src"
            want = "ok" if app == "src" else "denied"
            argv = [podnet, "label", "pod", "src", f"app={app}", "--overwrite", "-n", "pbench",
                    "--cluster", name]  # fmt: skip
            if via == "apply":  # the same change, as a manifest
                manifest = tmp / f"src-{app}.yaml"
                src = next(
                    d for d in bench_docs([src_node, src_node]) if d["metadata"]["name"] == "src"
                )
                src["metadata"]["labels"]["app"] = app
                manifest.write_text(yaml.safe_dump(src))
                argv = [podnet, "apply", "-f", str(manifest), "--cluster", name]
            loads.append(os.getloadavg()[0])
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
            t1 = time.monotonic()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            while (got := probe()) != want:
                if time.monotonic() - t0 > 10:
                    raise RuntimeError(f"no flip to {want} after 10s (last {got})")
            to_flip.append(time.monotonic() - t0)
            command.append(t1 - t0)
            sync = json.loads((sdir / "daemon.json").read_text())["sync"]
            full += bool(sync["full"])
            if sync.get("latency") is not None:
                daemon.append(sync["latency"])
    finally:
        prober.kill()
        prober.communicate()

    def figures(values: list[float]) -> str:
        return (
            f"p50 {pct(values, 0.5) * 1000:.0f} ms, p99 {pct(values, 0.99) * 1000:.0f} ms, "
            f"max {max(values) * 1000:.0f} ms"
        )

    print(f"{via} -> enforcement, {changes} changes, `podnet {via}` run as a process:")
    print(f"  daemon side (SIGUSR1 received -> sync done, daemon.json): {figures(daemon)}"
          f" ({len(daemon)} syncs, {full} full)")  # fmt: skip
    print(f"  the command (start -> exit): {figures(command)}")
    print(f"  CPU of the command (user + system): {figures(cpu)}")
    print(f"  end to end (command start -> the prober in src sees the flip): {figures(to_flip)}")
    print(f"  load average (1 min) during the changes: {min(loads):.2f}-{max(loads):.2f}")
    with (sdir / "daemon.log").open() as log:  # what else the daemon did meanwhile
        log.seek(log_start)
        lines = log.readlines()
    # `apply` through the daemon: its request in (parse, validate, store) before the sync.
    stored = [
        float(m.group(1)) for line in lines if (m := re.search(r" stored in ([0-9.]+)s", line))
    ]
    if stored:
        print(f"  daemon: apply request received -> stored ({len(stored)}): {figures(stored)}")
    other = [line.strip() for line in lines if "full" in line or "FAILED" in line or slow(line)]
    for line in other:
        print(f"  meanwhile: {line[:240]}")


def slow(line: str, limit: float = 0.5) -> bool:
    """A daemon.log sync line that took, or whose request waited, longer than `limit` s."""
    took = re.search(r" in ([0-9.]+)s: ", line)
    waited = re.search(r"\(([0-9.]+)s after the request\)", line)
    return any(m is not None and float(m.group(1)) > limit for m in (took, waited))


def iperf(client_ns: str, server_ns: str, server_ip: str, seconds: int) -> float:
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            if sh("ip", "netns", "exec", server_ns, "ss", "-ltnH", "sport = :5201").strip():
                break
            time.sleep(0.05)
        out = sh(
            "ip", "netns", "exec", client_ns, "iperf3", "-c", server_ip, "-t", str(seconds), "-J"
        )
        return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e9
    finally:
        server.kill()
        server.wait()


def throughput(name: str, nodes: list[str], seconds: int, rounds: int) -> None:
    from podnet.controller.policy_sync import sync_policies
    from podnet.controller.reconciler import Reconciler
    from podnet.policy.engine import Engine
    from podnet.render import kernel_names
    from podnet.state.store import state_dir

    runtime = json.loads((state_dir(name) / "runtime.json").read_text())
    dst_ip = next(
        p["ip"] for p in runtime["pods"] if p["namespace"] == "pbench" and p["name"] == "dst"
    )
    src_ns, dst_ns = (
        kernel_names.pod_netns(name, "pbench", "src"),
        kernel_names.pod_netns(name, "pbench", "dst"),
    )
    involved = [kernel_names.node_netns(name, n) for n in nodes[:2]]
    rec = Reconciler(state_dir(name), name)
    d = rec.desired()
    # "None": podnet's ruleset for the same pods without a single policy (the forward chain
    # with its conntrack rule stays); "no table": the two nodes without any podnet table,
    # where conntrack does not even run in the namespace.
    bare = Engine(dataclasses.replace(d.cluster, policies=()), d.placement)
    runs: dict[str, list[float]] = {"with": [], "none": [], "no table": []}
    for _ in range(rounds):
        assert sync_policies(name, d.engine, d.node_netns).ok
        runs["with"].append(iperf(src_ns, dst_ns, dst_ip, seconds))
        assert sync_policies(name, bare, d.node_netns).ok
        runs["none"].append(iperf(src_ns, dst_ns, dst_ip, seconds))
        for ns in involved:  # our own table, in our own node namespaces only
            table = kernel_names.table_name(name)
            sh("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", table)
        runs["no table"].append(iperf(src_ns, dst_ns, dst_ip, seconds))
    assert sync_policies(name, d.engine, d.node_netns).ok
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(
        f"iperf3 src -> dst across nodes, {seconds}s x {rounds}, medians: with "
        f"{len(d.cluster.policies)} policies {med['with']:.2f} Gbit/s, with none "
        f"{med['none']:.2f}, no podnet table {med['no table']:.2f}; ratio with/none "
        f"{med['with'] / med['none']:.3f}, with/no table {med['with'] / med['no table']:.3f}"
    )
    for k, v in runs.items():
        print(f"  {k:>8}: {', '.join(f'{x:.2f}' for x in v)}")


if __name__ == "__main__":
    sys.exit(main())
