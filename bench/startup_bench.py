"""Start-up time of the CLI: `podnet --help`, `podnet get pods -A` of a small stored cluster,
`podnet analyze` of the example application. Targets (issue 8): ≤ 0.15 s, ≤ 0.15 s, ≤ 0.3 s.

    .venv/bin/python bench/startup_bench.py [--runs 15]

Each figure is the median (and min, max) wall time of fresh processes, interpreter start-up
included, and the median CPU time (user + sys) of the same processes, which the other load
of a shared machine disturbs less. podnet's bytecode is compiled first, as `make venv`
does (with PYTHONDONTWRITEBYTECODE set, a module without a current `.pyc` is compiled
again at every start). Prints figures and the load average; asserts nothing. Needs no
root (the stored cluster is written directly into a temporary state directory; nothing is
brought up).
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PODNET = [sys.executable, "-m", "podnet"]
EXAMPLE = str(ROOT / "examples" / "shop")


def stored_cluster(state: Path) -> None:
    from podnet.model.cluster import load_cluster
    from podnet.state.changes import store_cluster
    from podnet.state.network import NetworkConfig
    from podnet.state.placement import place
    from podnet.state.store import Store

    cluster = load_cluster([EXAMPLE], node_count=3)
    net = NetworkConfig()
    with Store.open(state / "bench") as store:
        store_cluster(store, cluster, place(cluster, net, strict=True), "bench", "host-gw", net)


def timed(argv: list[str], runs: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + sys) seconds of each of RUNS fresh processes."""
    wall, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        wall.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    import podnet

    compileall.compile_dir(Path(podnet.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory(prefix="podnet-startup-") as tmp:
        stored_cluster(Path(tmp))
        env = {**os.environ, "PODNET_STATE_DIR": tmp}
        cases = [
            ("python -c pass (the floor)", [sys.executable, "-c", "pass"], None),
            ("podnet --help", [*PODNET, "--help"], 0.15),
            ("podnet get pods -A", [*PODNET, "get", "pods", "-A", "--cluster", "bench"], 0.15),
            ("podnet analyze -f examples/shop", [*PODNET, "analyze", "-f", EXAMPLE], 0.3),
        ]
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {args.runs} runs")
        print(f"{'command':<36} {'median':>8} {'min':>8} {'max':>8} {'CPU med':>8}  target")
        for label, argv, target in cases:
            t, cpu = timed(argv, args.runs, env)
            goal = f"≤ {target:g} s" if target else ""
            print(
                f"{label:<36} {statistics.median(t):>7.3f}s {min(t):>7.3f}s {max(t):>7.3f}s "
                f"{statistics.median(cpu):>7.3f}s  {goal}"
            )
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
