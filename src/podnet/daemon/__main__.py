"""`python -m podnet.daemon --state-dir DIR --cluster NAME`: the cluster's daemon, in the
foreground (supervisor.start detaches it and sends its output to DIR/daemon.log)."""

from __future__ import annotations

import signal

# Until the event loop installs its handler, a SIGHUP (a reload request that raced our start)
# must not kill us with the default action; runtime.json is read after that point anyway.
signal.signal(signal.SIGHUP, signal.SIG_IGN)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from podnet.daemon.server import Daemon  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m podnet.daemon", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--cluster", required=True)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every socket")
    args = parser.parse_args(argv)
    root = args.state_dir.resolve()
    os.chdir("/")  # a daemon holds no directory of whoever started it
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return asyncio.run(Daemon(root, args.cluster).run())


if __name__ == "__main__":
    sys.exit(main())
