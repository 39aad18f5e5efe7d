"""`python -m podnet.flowlog --state-dir DIR --cluster NAME`: the cluster's flow collector,
in the foreground. The daemon starts it beside the DNS server, restarts it when it dies and
stops it (SIGTERM). docs/troubleshooting.md, "Flows"."""

from __future__ import annotations

import signal

# An adopting daemon may send a SIGHUP (it does so to the DNS server): not a reason to die.
signal.signal(signal.SIGHUP, signal.SIG_IGN)

from podnet import startup  # noqa: E402

startup.lean_pydantic()  # before the first model is built

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from podnet.flowlog.collector import Collector  # noqa: E402
from podnet.state import pid_lock  # noqa: E402
from podnet.state.files import StateFiles  # noqa: E402

log = logging.getLogger("podnet.flowlog")
NICE = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m podnet.flowlog", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--cluster", required=True)
    args = parser.parse_args(argv)
    root = args.state_dir.resolve()
    os.chdir("/")
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # An observer yields to what it observes: the stand-in, the DNS server and the syncs
    # come first; while it waits, its sockets' 8 MiB buffers hold some 50,000 events.
    os.nice(NICE)
    files = StateFiles(root)
    lock = pid_lock.claim(files.flows_pid)
    if lock is None:
        log.error("another flow collector serves %s; exiting", root)
        return 1
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda sig, _frame: stopping.append(sig))
    signal.signal(signal.SIGINT, lambda sig, _frame: stopping.append(sig))
    log.info("flow collector of cluster %s, pid %d", args.cluster, os.getpid())
    collector = Collector(root)
    try:
        while not stopping:
            collector.step()
    finally:
        collector.close()
        pid_lock.release(files.flows_pid, lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
