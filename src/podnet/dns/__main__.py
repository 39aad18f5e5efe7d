"""`python -m podnet.dns --state-dir DIR --cluster NAME`: the cluster DNS server, in the
foreground. The cluster's daemon starts it, restarts it when it dies, tells it to reload
(SIGHUP) after a sync rewrote dns.json, and stops it (SIGTERM). docs/dns.md."""

from __future__ import annotations

import signal

# A reload request that races our start must not kill us (SIGHUP's default action): the
# server reads the newest dns.json once its handlers are in place anyway.
signal.signal(signal.SIGHUP, signal.SIG_IGN)

from podnet import startup  # noqa: E402

startup.lean_pydantic()  # before the first model is built

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from podnet.dns.server import Server  # noqa: E402
from podnet.state import pid_lock  # noqa: E402
from podnet.state.files import StateFiles  # noqa: E402

log = logging.getLogger("podnet.dns")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m podnet.dns", description=__doc__)
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
    files = StateFiles(root)
    lock = pid_lock.claim(files.dns_pid)
    if lock is None:
        log.error("another DNS server serves %s; exiting", root)
        return 1
    log.info("DNS server of cluster %s, pid %d", args.cluster, os.getpid())
    try:
        Server(root).run()
    finally:
        pid_lock.release(files.dns_pid, lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
