"""Test suites no one here wrote (../shared/suites): they must pass, for the right reason.

The NCA suite's runner rewrites the topology as NCA models it and calls the installed
`podnet analyze` with `--ipblock-pods ignore`; every one of its probes must agree.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def find_suite(name: str) -> Path | None:
    candidates = [
        os.environ.get("PODNET_SUITES", ""),
        ROOT.parent / "shared" / "suites",
        Path("/work/shared/suites"),
    ]
    for c in candidates:
        if c and (Path(c) / name / "run.py").exists():
            return Path(c) / name
    return None


NCA = find_suite("nca")


@pytest.mark.slow
@pytest.mark.skipif(NCA is None, reason="shared suites not present on this machine")
def test_nca_suite_agrees_on_every_probe() -> None:
    assert NCA is not None
    podnet = str(Path(sys.executable).parent / "podnet")
    proc = subprocess.run(
        [sys.executable, str(NCA / "run.py"), "--podnet", podnet, str(NCA)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    m = re.match(r"nca peer suite: (\d+)/(\d+) probes agree, (\d+)/(\d+) case sides", last)
    assert m, last
    ok, total, sides_ok, sides = map(int, m.groups())
    assert total > 3000 and ok == total and sides_ok == sides, last
