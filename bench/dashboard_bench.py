"""Benchmark of the pages podnet draws, in Debian's chromium (Playwright), at 1,000 pods.

1. `podnet analyze -f DIR -o html`: the child's wall and CPU time, the file's size, and in
   the browser (file://, no network) the time from navigation to the drawn matrix, a port
   tab switch and a filter change (each: the handler plus the next frame).
2. `podnet dashboard` over a stored cluster of the same manifests (the store only: no
   namespaces, no root; the map, matrix and API read the store exactly as for a live
   cluster): time to the first paint of the map (the page's own clock: navigation to the
   first frame after the map is drawn; Chromium's first-contentful-paint beside it), the
   server's and the browser's CPU time for that load (every chromium process, and the
   page's renderer apart), and filter changes (namespace, label selector, port). The
   browser has done its own first navigation (about:blank) before: that costs 0.7-0.9 s of
   CPU in chromium's WebUI renderer, whatever the page, and is no cost of the dashboard's.
3. Live flows at 10,000 a minute (--flow-rate): records appended to the cluster's flow
   history (flowlog.history.Writer, the collector's own writer; batches every 0.1 s, as the
   collector writes) at that rate, between pods of the stored cluster, one in five blocked
   by a named policy; not real connections: 167 connections a second through the live
   datapath plus its collector would measure the collector on a machine shared by other
   suites, not the page. While they stream, with the map of 1,000 pods open: the panel's
   update latency (a record's time to the frame that shows it), flow filter changes and a
   map filter change (each: the handler plus the next frame), that every record arrived
   (shown or counted as skipped), and the CPU of the server and the browser per minute.

Runs are repeated (--repeat, default 5) and the median and range are printed, with the
load average: the host has 2 cores shared with other suites, so wall times are noisy.

    .venv/bin/python bench/dashboard_bench.py [--pods 1000] [--policies 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))

from podnet.testing import Browser, browser, dashboard  # noqa: E402

NEXT_FRAME = "() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))"
# run `action` in the page, then wait for the frame that shows it: ms
TIMED = """async (action) => {
  const t0 = performance.now();
  (new Function(action))();
  await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  return performance.now() - t0;
}"""


def figures(values: list[float]) -> str:
    return f"median {statistics.median(values):7.0f} ms  (min {min(values):.0f}, max {max(values):.0f}, n={len(values)})"


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def generate(out: Path, pods: int, policies: int) -> None:
    subprocess.run(
        [
            sys.executable,
            str(BENCH / "gen_cluster.py"),
            "--pods",
            str(pods),
            "--policies",
            str(policies),
            str(out),
        ],
        check=True,
        capture_output=True,
    )


def cpu_of_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_report(cluster: Path, work: Path, repeat: int) -> None:
    print(f"# analyze -o html ({load()})")
    walls, cpus = [], []
    page = work / "report.html"
    for _ in range(repeat):
        c0, t0 = cpu_of_children(), time.monotonic()
        with page.open("w") as f:
            subprocess.run(
                [sys.executable, "-m", "podnet", "analyze", "-f", str(cluster), "-o", "html"],
                stdout=f,
                check=True,
            )
        walls.append((time.monotonic() - t0) * 1000)
        cpus.append((cpu_of_children() - c0) * 1000)
    print(f"write the report    wall {figures(walls)}")
    print(f"                    CPU  {figures(cpus)}")
    print(f"file size           {page.stat().st_size / 1e6:.2f} MB")
    ready, tabs, filters, bcpu = [], [], [], []
    for _ in range(repeat):
        with browser() as b:
            b0 = b.cpu_seconds()
            b.page.goto(page.as_uri())
            b.page.wait_for_selector("body[data-ready]", timeout=120_000)
            b.page.evaluate(NEXT_FRAME)
            ready.append(b.page.evaluate("() => performance.now()"))
            bcpu.append((b.cpu_seconds() - b0) * 1000)
            tabs.append(
                b.page.evaluate(TIMED, "document.querySelectorAll('.pn-tabs button')[1].click()")
            )
            filters.append(
                b.page.evaluate(
                    TIMED,
                    "const f = document.querySelector('.pn-filter'); f.value = 'team-a'; f.dispatchEvent(new Event('input'));",
                )
            )
            cells = b.page.evaluate("() => document.querySelectorAll('table.pn-grid td').length")
            assert b.refused == [], b.refused
    print(f"open: matrix drawn  {figures(ready)}")
    print(f"browser CPU for it  {figures(bcpu)}  (every chromium process)")
    print(f"port tab switch     {figures(tabs)}")
    print(f"filter change       {figures(filters)}  ({cells} cells left shown)")


def settle(b: Browser) -> None:
    """Let a fresh chromium do its own first-navigation work before a page is measured:
    its first navigation (even to about:blank) costs 0.7-0.9 s of CPU in chromium's own
    WebUI renderer, which is no page's cost (an admin's browser already runs)."""
    b.page.goto("about:blank")
    last = b.cpu_seconds()
    for _ in range(40):
        time.sleep(0.25)
        now = b.cpu_seconds()
        if now - last < 0.02:
            return
        last = now


def renderer_cpu(b: Browser) -> float:
    """CPU seconds of this browser's renderer processes (the pages' main threads, their
    compositing and raster): the page's own share of every chromium process."""
    return b.cpu_seconds("renderer")


def store(cluster: Path, root: Path, name: str) -> None:
    from podnet.model.cluster import load_cluster
    from podnet.state.changes import store_cluster
    from podnet.state.network import NetworkConfig
    from podnet.state.placement import place
    from podnet.state.store import Store

    c = load_cluster([str(cluster)])
    net = NetworkConfig()
    with Store.open(root / name) as s:
        store_cluster(s, c, place(c, net, strict=True), name, "host-gw", net)


def server_cpu(url: str) -> float:
    """CPU seconds of the dashboard process serving `url` (found by its listening port)."""
    port = url.rstrip("/").rsplit(":", 1)[1]
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"dashboard" in cmd and port.encode() in cmd:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return float("nan")


def bench_dashboard(cluster: Path, work: Path, repeat: int) -> None:
    print(f"# dashboard ({load()})")
    name = f"dash-bench-{os.getpid()}"  # unique: counters are read by cluster name
    store(cluster, work / "state", name)
    env = {"PODNET_STATE_DIR": str(work / "state")}
    first, fcp, cpu, bcpu, rcpu, ns, labels, port, matrix = [], [], [], [], [], [], [], [], []
    for _ in range(repeat):
        with dashboard(name, env) as url, browser(allow=(url,)) as b:
            settle(b)
            c0, b0, r0 = server_cpu(url), b.cpu_seconds(), renderer_cpu(b)
            b.page.goto(url)
            b.page.wait_for_function(
                "() => window.podnet.firstGraphMs !== undefined", timeout=120_000
            )
            b.page.evaluate(NEXT_FRAME)
            first.append(b.page.evaluate("() => performance.now()"))
            fcp.append(
                b.page.evaluate(
                    "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || NaN"
                )
            )
            cpu.append((server_cpu(url) - c0) * 1000)
            bcpu.append((b.cpu_seconds() - b0) * 1000)
            rcpu.append((renderer_cpu(b) - r0) * 1000)
            pods = b.page.evaluate("() => window.podnet.cy.nodes('[kind=\"pod\"]').length")
            edges = b.page.evaluate("() => window.podnet.cy.edges().length")
            some_ns = b.page.evaluate("() => window.podnet.graph.namespaces[1]")
            ns.append(
                b.page.evaluate(
                    TIMED,
                    f"const s = document.getElementById('f-ns'); s.value = {json.dumps(some_ns)}; s.dispatchEvent(new Event('change'));",
                )
            )
            labels.append(
                b.page.evaluate(
                    TIMED,
                    "const s = document.getElementById('f-ns'); s.value = ''; s.dispatchEvent(new Event('change'));"
                    "const f = document.getElementById('f-labels'); f.value = 'tier=backend'; f.dispatchEvent(new Event('input'));",
                )
            )
            ports = b.page.evaluate("() => window.podnet.graph.ports")
            port.append(
                b.page.evaluate(
                    TIMED,
                    f"const s = document.getElementById('f-port'); s.value = {json.dumps(ports[0])}; s.dispatchEvent(new Event('change'));",
                )
            )
            t0 = time.monotonic()
            b.page.locator("header nav button[data-tab=matrix]").click()
            b.page.wait_for_selector("body[data-matrix-revision]", timeout=120_000)
            b.page.evaluate(NEXT_FRAME)
            matrix.append((time.monotonic() - t0) * 1000)
            assert b.refused == [], b.refused
    print(f"map: {pods} pods, {edges} edges drawn (unfiltered)")
    print(f"first paint of map  {figures(first)}")
    print(f"  (Chromium FCP     {figures(fcp)})")
    print(f"server CPU for it   {figures(cpu)}")
    print(f"browser CPU for it  {figures(bcpu)}  (every chromium process)")
    print(f"  renderer's share  {figures(rcpu)}  (the page's renderer processes)")
    print(f"namespace filter    {figures(ns)}")
    print(f"label filter        {figures(labels)}")
    print(f"port filter         {figures(port)}")
    print(f"matrix tab drawn    {figures(matrix)}  (its first read of /api/matrix included)")


def write_flows(root: Path, pods: list[str], rate: float, seconds: float) -> int:
    """Append `rate` records a minute for `seconds` (batches every 0.1 s); how many."""
    import random

    from podnet.flowlog.flow_record import Decision, Flow, Peer
    from podnet.flowlog.history import Writer

    rnd = random.Random(1)
    w = Writer(root)
    per_tick, owed, n = rate / 60 * 0.1, 0.0, 0
    t0 = time.monotonic()
    tick = 0
    while time.monotonic() - t0 < seconds:
        owed += per_tick
        batch = []
        while owed >= 1:
            owed -= 1
            src, dst = rnd.sample(pods, 2)
            blocked = rnd.random() < 0.2
            ns = dst.split("/")[0]
            ingress = (
                Decision("blocked", dst, "node-1", policies=(f"{ns}/deny-all",))
                if blocked
                else Decision("allowed", dst, "node-1", f"{ns}/allow-web", 0)
            )
            batch.append(
                Flow(
                    time.time(),
                    "TCP",
                    Peer("10.244.1.3", 30000 + n % 30000, src, "pod"),
                    Peer("10.244.2.4", 8080, dst, "pod"),
                    "blocked" if blocked else "allowed",
                    Decision("allowed", src, "node-1", None, None, reason="not isolated"),
                    ingress,
                    ("node-1", "node-2"),
                )
            )
            n += 1
        w.write(batch)
        tick += 1
        time.sleep(max(0.0, t0 + tick * 0.1 - time.monotonic()))
    w.close()
    return n


def bench_flows(cluster: Path, work: Path, repeat: int, rate: float, seconds: float) -> None:
    import threading

    from podnet.model.cluster import load_cluster

    print(f"# live flows at {rate:,.0f} a minute, {seconds:.0f} s per run ({load()})")
    name = f"dash-flows-{os.getpid()}"
    store(cluster, work / "state", name)
    root = work / "state" / name
    pods = [f"{p.metadata.namespace}/{p.metadata.name}" for p in load_cluster([str(cluster)]).pods]
    env = {"PODNET_STATE_DIR": str(work / "state")}
    lat50, lat95, flt, mapf, complete, loads = [], [], [], [], [], []
    scpu: list[float] = []
    bcpu: list[float] = []
    idle_s: list[float] = []
    idle_b: list[float] = []
    for _ in range(repeat):
        for f in root.glob("flows.jsonl*"):
            f.unlink()
        with dashboard(name, env) as url, browser(allow=(url,)) as b:
            b.page.goto(url)
            b.page.wait_for_function(
                "() => window.podnet.firstGraphMs !== undefined", timeout=120_000
            )
            written: list[int] = []
            quiet = min(10.0, seconds / 3)
            c0, b0 = server_cpu(url), b.cpu_seconds()
            time.sleep(quiet)  # the page open, nothing streaming: its idle cost
            idle_s.append((server_cpu(url) - c0) / quiet * 60 * 1000)
            idle_b.append((b.cpu_seconds() - b0) / quiet * 60 * 1000)
            feeder = threading.Thread(
                target=lambda w=written: w.append(write_flows(root, pods, rate, seconds))
            )
            feeder.start()
            time.sleep(1.0)  # streaming before the CPU window
            c0, b0 = server_cpu(url), b.cpu_seconds()
            time.sleep(quiet)  # streaming, nobody clicking: what the stream costs
            scpu.append((server_cpu(url) - c0) / quiet * 60 * 1000)
            bcpu.append((b.cpu_seconds() - b0) / quiet * 60 * 1000)
            some_ns = b.page.evaluate("() => window.podnet.graph.namespaces[1]")
            while feeder.is_alive():
                for verdict in ("blocked", "allowed", ""):
                    flt.append(
                        b.page.evaluate(
                            TIMED,
                            f"const s = document.getElementById('flows-verdict'); s.value = '{verdict}'; s.dispatchEvent(new Event('change'));",
                        )
                    )
                mapf.append(
                    b.page.evaluate(
                        TIMED,
                        f"const s = document.getElementById('f-ns'); s.value = {json.dumps(some_ns)}; s.dispatchEvent(new Event('change'));",
                    )
                )
                b.page.evaluate(
                    "() => { const s = document.getElementById('f-ns'); s.value = ''; s.dispatchEvent(new Event('change')); }"
                )
                time.sleep(1.0)
            feeder.join()
            time.sleep(1.0)  # the last batch
            got = b.page.evaluate(
                "() => [window.podnet.flows.received, window.podnet.flows.skipped, window.podnet.flows.latencies]"
            )
            received, skipped, lats = got
            lats = sorted(x * 1000 for x in lats)
            lat50.append(statistics.median(lats))
            lat95.append(lats[int(len(lats) * 0.95)])
            complete.append(f"{received + skipped}/{written[0]} ({skipped} skipped)")
            loads.append(os.getloadavg()[0])
            assert b.refused == [], b.refused
    print(f"records (sent + skipped / written, per run): {', '.join(complete)}")
    print(f"panel update latency, median  {figures(lat50)}")
    print(f"panel update latency, p95     {figures(lat95)}")
    print(f"flow filter change            {figures(flt)}")
    print(f"map namespace filter          {figures(mapf)}")
    print(f"server CPU per minute, idle   {figures(idle_s)}  (the page open, no flows)")
    print(f"server CPU per minute, flows  {figures(scpu)}  (streaming, no clicks)")
    print(f"browser CPU per minute, idle  {figures(idle_b)}  (every chromium process)")
    print(f"browser CPU per minute, flows {figures(bcpu)}")
    print(f"load average (1 min) at the end of each run: {', '.join(f'{x:.2f}' for x in loads)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--flow-rate", type=float, default=10_000, help="flows a minute")
    parser.add_argument("--flow-seconds", type=float, default=30, help="per run")
    parser.add_argument(
        "--only", choices=("report", "dashboard", "flows"), help="one of the three parts"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="podnet-dash-bench-") as tmp:
        work = Path(tmp)
        cluster = work / "cluster"
        generate(cluster, args.pods, args.policies)
        print(f"cluster: {args.pods} pods, {args.policies} policies (bench/gen_cluster.py, seed 1)")
        if args.only in (None, "report"):
            bench_report(cluster, work, args.repeat)
        if args.only in (None, "dashboard"):
            bench_dashboard(cluster, work, args.repeat)
        if args.only in (None, "flows"):
            bench_flows(cluster, work, args.repeat, args.flow_rate, args.flow_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
