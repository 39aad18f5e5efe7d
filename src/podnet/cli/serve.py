"""`podnet serve NS/POD --stop PORT/PROTO | --start PORT/PROTO`: make a pod of a running
cluster stop (or start again) serving one of its declared ports, as a container process
that closes its listening socket would. A readiness probe on that port then fails, the pod
leaves its Services' ready endpoints and DNS, and comes back after `--start`: the way to
watch endpoints, kube-proxy rules and DNS follow readiness on a live cluster."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from podnet.cli.live import add_cluster_arg, keep_daemon, preflight
from podnet.model.errors import InputError

_PORT = re.compile(r"^(\d{1,5})(?:/(TCP|UDP|SCTP))?$", re.IGNORECASE)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="make a pod stop or start serving a port",
        description="Stop or start serving one declared port of a pod on a running cluster; "
        "readiness probes, endpoints and DNS follow.",
    )
    p.add_argument("pod", metavar="NS/POD")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--stop", metavar="PORT[/PROTO]", help="close the port's socket")
    what.add_argument("--start", metavar="PORT[/PROTO]", help="serve the port again")
    add_cluster_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from podnet.daemon import supervisor
    from podnet.render.runtime import load
    from podnet.state.files import StateFiles, write_atomic
    from podnet.state.store import state_dir

    if (status := preflight("serve", args.cluster)) is not None:
        return status
    text = args.stop or args.start
    m = _PORT.match(text)
    if not m:
        raise InputError.line(f"{text!r}: expected PORT or PORT/PROTOCOL, e.g. 8080/TCP")
    port = f"{int(m.group(1))}/{(m.group(2) or 'TCP').upper()}"
    sdir = state_dir(args.cluster).resolve()
    if keep_daemon(args.cluster) == "none":
        raise InputError.line(f"cluster {args.cluster} has no daemon: nothing serves its pods")
    files = StateFiles(sdir)
    pod = load(sdir).pod(args.pod)
    if pod is None:
        raise InputError.line(f'pod "{args.pod}" not found in cluster {args.cluster}')
    declared = {f"{q.port}/{q.protocol}" for c in pod.containers for q in c.ports}
    if port not in declared:
        raise InputError.line(
            f"pod {args.pod} declares no containerPort {port} "
            f"(it declares: {', '.join(sorted(declared)) or 'none'})"
        )
    try:
        stopped: dict[str, list[str]] = json.loads(files.stopped.read_text())
    except (FileNotFoundError, ValueError):
        stopped = {}
    ports = set(stopped.get(args.pod, ()))
    if args.stop:
        ports.add(port)
    else:
        ports.discard(port)
    if ports:
        stopped[args.pod] = sorted(ports)
    else:
        stopped.pop(args.pod, None)
    write_atomic(files.stopped, json.dumps(stopped, indent=1, sort_keys=True) + "\n")
    supervisor.reload(sdir)
    print(f"pod/{args.pod} {'stopped' if args.stop else 'serves'} {port}")
    return 0
