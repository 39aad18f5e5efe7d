"""Time `podnet up` and `podnet down` (datapath only: --no-daemon) at two sizes.

Targets (issue 3): up of 3 nodes / 100 pods <= 5 s, of 10 nodes / 1,000 pods <= 60 s, down
of the latter <= 10 s. Prints figures; it is not a pass/fail test. Needs root. Each run uses
its own cluster name and state directory and is torn down even when interrupted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

SIZES = ((3, 100, 5.0, None), (10, 1000, 60.0, 10.0))


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


def podnet(env: dict[str, str], *args: str) -> float:
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "podnet", *args], env=env, check=True, capture_output=True
    )
    return time.monotonic() - start


def main() -> int:
    if os.geteuid() != 0:
        print("bench/up_bench.py needs root", file=sys.stderr)
        return 2
    mode = sys.argv[1] if len(sys.argv) > 1 else "host-gw"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PODNET_STATE_DIR": str(Path(tmp) / "state")}
        for nodes, count, up_goal, down_goal in SIZES:
            name = f"bench-{uuid.uuid4().hex[:6]}"
            manifest = Path(tmp) / f"{count}.yaml"
            manifest.write_text(yaml.safe_dump_all(pods(count)))
            try:
                up = podnet(
                    env,
                    "up",
                    "-f",
                    str(manifest),
                    "--cluster",
                    name,
                    "--nodes",
                    str(nodes),
                    "--mode",
                    mode,
                    "--no-daemon",
                )
            finally:
                down = podnet(env, "down", "--cluster", name)
            print(
                f"{mode:8} {nodes:3} nodes {count:5} pods: up {up:6.2f} s (goal {up_goal:g} s)  "
                f"down {down:5.2f} s" + (f" (goal {down_goal:g} s)" if down_goal else "")
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
