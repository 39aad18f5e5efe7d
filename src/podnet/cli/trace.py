"""`podnet trace`: one real packet with nftables tracing on, its path in Kubernetes terms.

Exit 0 when the packet's fate agrees with the policy engine (`podnet explain`), whatever it
was; 1 when they differ or the packet got no answer; 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from podnet.cli.live import add_cluster_arg, keep_daemon, preflight
from podnet.cli.output import print_error
from podnet.model.errors import InputError
from podnet.state.store import Store, state_dir

if TYPE_CHECKING:
    from podnet.tracing.packet_trace import TraceResult

TIMEOUT = 2.0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "trace",
        help="send one real packet with nftables tracing and print its path",
        description="Send one TCP connection attempt or UDP datagram from --from to --to "
        "with nftables tracing switched on for exactly that packet in podnet's own table of "
        "every node it can cross, and print its path: the source pod and node, the Service "
        "and the endpoint its DNAT chose, each policy chain and the rule that accepted or "
        "rejected it, the route to the next node, the destination pod. Compared with the "
        "policy engine's verdict (podnet explain). Needs root.",
    )
    add_cluster_arg(p)
    p.add_argument("--from", dest="src", required=True, metavar="SEL", help="ns/pod, or internet")
    p.add_argument(
        "--to",
        dest="dst",
        required=True,
        metavar="SEL|URL",
        help="ns/pod, svc/NS/NAME, an address, or a URL (http://HOST:PORT/: a pod's or "
        "ClusterIP, a node's address with a NodePort, or NAME.NS[.svc.cluster.local])",
    )
    p.add_argument("--port", help="P/PROTO, e.g. 5432/TCP (a Service's port for svc/...)")
    p.add_argument(
        "--via",
        choices=("pod", "service"),
        default="pod",
        help="with --to ns/pod: address the pod itself (default) or a Service in front of it",
    )
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.add_argument(
        "--timeout", type=float, default=TIMEOUT, metavar="SECONDS", help="wait for an answer"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (status := preflight("trace", args.cluster)) is not None:
        return status
    if not 0 < args.timeout <= 30:
        print_error(f"--timeout must be in (0, 30] seconds, not {args.timeout:g}")
        return 2
    sdir = state_dir(args.cluster)
    if not Store.exists(sdir):
        print_error(f"no cluster {args.cluster} ({sdir} not found); `podnet up` creates it")
        return 2
    keep_daemon(args.cluster)
    from podnet.cli.probe import live_engine
    from podnet.policy.ports import parse_ports
    from podnet.render import runtime as rt
    from podnet.tracing.packet_trace import trace
    from podnet.tracing.target import source_of, target_of

    try:
        runtime = rt.load(sdir)
    except rt.RuntimeFileError as e:
        print_error(f"cluster {args.cluster} is not running: {e}")
        return 2
    ports = parse_ports(args.port) if args.port else []
    if len(ports) > 1:
        raise InputError.line(f"--port: one port, not {args.port!r}")
    engine = live_engine(sdir, runtime)
    source = source_of(args.src, engine, runtime)
    target = target_of(args.dst, ports[0] if ports else None, args.via, engine, runtime, source)
    result = trace(target, engine, runtime, args.timeout)
    for line in result.problems:
        print(f"warning: {line}", file=sys.stderr)
    if args.output == "json":
        sys.stdout.write(json.dumps(to_json(result), indent=1) + "\n")
    else:
        sys.stdout.write(to_text(result))
    return 0 if result.agrees else 1


def to_json(r: TraceResult) -> dict[str, Any]:
    t = r.target
    return {
        "from": t.source,
        "to": t.addressed,
        "host": t.host,
        "port": t.port,
        "protocol": t.protocol,
        "sourcePort": r.sport,
        "service": t.service.key if t.service is not None else None,
        "endpoint": r.path.endpoint,
        "verdict": r.verdict,
        "why": r.why,
        "explain": r.engine_says,
        "explainWhy": r.engine_why,
        "agrees": r.agrees,
        "steps": [s.to_json() for s in r.path.steps],
        "traceChainsRemoved": r.removed,
    }


def to_text(r: TraceResult) -> str:
    t = r.target
    lines = [f"trace {t.source} -> {t.addressed}, {t.protocol} from port {r.sport}"]
    width = max((len(s.node) for s in r.path.steps), default=1)
    for s in r.path.steps:
        lines.append(f"  {s.node:<{width}}  {s.what}")
    lines.append(f"verdict: {r.verdict}: {r.why}")
    if r.engine_says is not None:
        agree = "agrees" if r.agrees else "DISAGREES"
        lines.append(
            f"explain: {r.engine_says} ({r.engine_why or 'not isolated'}); the trace {agree}"
        )
    return "\n".join(lines) + "\n"
