"""`podnet dashboard [--cluster NAME] [--port 8080] [--open]`: a web page of a running
cluster (map, policy matrix with explanations, policy counters, live flows, live
updates), served on the host's loopback address only. It reads the cluster's store, the
daemon's status files and the flow history; the one thing it changes is what `podnet
quarantine` changes, when an admin confirms that action on the page (cli.dashboard_actions)."""

from __future__ import annotations

import argparse
from typing import Any

from podnet.cli.live import add_cluster_arg
from podnet.cli.output import print_error

HOST = "127.0.0.1"  # loopback only: never 0.0.0.0, never another interface


def register(sub: Any) -> None:
    p = sub.add_parser(
        "dashboard",
        help="serve a web dashboard of a running cluster on 127.0.0.1",
        description="Serve the map (namespaces, pods, Services and their endpoints, nodes; "
        "policy verdicts as edges), the policy matrix per port with explanations, and the "
        "policy counters and the live flows, updating live, and the quarantine action "
        "(behind a confirmation), on http://127.0.0.1:PORT/ (loopback only).",
    )
    add_cluster_arg(p)
    p.add_argument("--port", type=_port, default=8080, help="TCP port on 127.0.0.1 (default 8080)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(func=run)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def run(args: argparse.Namespace) -> int:
    from podnet.state.store import Store, state_dir

    sdir = state_dir(args.cluster)
    if not Store.exists(sdir):
        print_error(f"no cluster {args.cluster} ({sdir} not found); `podnet up` creates it")
        return 2
    import uvicorn

    from podnet.cli.dashboard_actions import quarantine
    from podnet.dashboard.app import create_app

    url = f"http://{HOST}:{args.port}/"
    config = uvicorn.Config(
        create_app(args.cluster, sdir, quarantine),
        host=HOST,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=1,  # open event streams would hold a stop otherwise
    )
    server = uvicorn.Server(config)
    print(f"podnet dashboard of cluster {args.cluster}: {url} (Ctrl-C stops it)", flush=True)
    if args.open:
        import threading
        import webbrowser

        threading.Timer(0.5, webbrowser.open, (url,)).start()
    server.run()
    return 0 if server.started else 1
