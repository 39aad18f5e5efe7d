"""Benchmark of the pages podnet draws, in Debian's chromium (Playwright), at 1,000 pods.

1. `podnet analyze -f DIR -o html`: the child's wall and CPU time, the file's size, and in
   the browser (file://, no network) the time from navigation to the drawn matrix, a port
   tab switch and a filter change (each: the handler plus the next frame).
2. `podnet dashboard` over a stored cluster of the same manifests (the store only: no
   namespaces, no root; the map, matrix and API read the store exactly as for a live
   cluster): time to the first paint of the map (the page's own clock: navigation to the
   first frame after the map is drawn; Chromium's first-contentful-paint beside it), the
   server's CPU time for that load, and filter changes (namespace, label selector, port).
3. Live flows at 10,000 a minute: only when this build has `podnet flows`; it does not,
   and the bench says so instead of inventing records.

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

from podnet.testing import browser, dashboard  # noqa: E402

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
    first, fcp, cpu, bcpu, ns, labels, port, matrix = [], [], [], [], [], [], [], []
    for _ in range(repeat):
        with dashboard(name, env) as url, browser(allow=(url,)) as b:
            c0, b0 = server_cpu(url), b.cpu_seconds()
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
    print(f"namespace filter    {figures(ns)}")
    print(f"label filter        {figures(labels)}")
    print(f"port filter         {figures(port)}")
    print(f"matrix tab drawn    {figures(matrix)}  (its first read of /api/matrix included)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=("report", "dashboard"), help="one of the two parts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="podnet-dash-bench-") as tmp:
        work = Path(tmp)
        cluster = work / "cluster"
        generate(cluster, args.pods, args.policies)
        print(f"cluster: {args.pods} pods, {args.policies} policies (bench/gen_cluster.py, seed 1)")
        if args.only != "dashboard":
            bench_report(cluster, work, args.repeat)
        if args.only != "report":
            bench_dashboard(cluster, work, args.repeat)
    from podnet.dashboard.integrations import features

    flows = features()["flows"]
    print(f"# live flows at 10,000 a minute: {'see below' if flows.available else flows.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
