"""`podnet explain`: the verdict for one question and why — policies, rules, nearest misses."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from podnet.cli.common import (
    add_cluster_cidr_arg,
    add_hostnetwork_arg,
    add_ipblock_arg,
    add_manifest_args,
    load_engine,
    without_cycle_collection,
)
from podnet.model.errors import InputError, Problem


def register(sub: Any) -> None:
    p = sub.add_parser(
        "explain",
        help="why a connection is allowed or denied",
        description="Print the verdict for traffic from --from to --to on --port, which "
        "policies isolate each end, which rule admits the traffic or, when denied, the "
        "nearest miss of every candidate rule.",
    )
    add_manifest_args(p)
    p.add_argument("--from", dest="src", required=True, metavar="SEL")
    p.add_argument("--to", dest="dst", required=True, metavar="SEL")
    p.add_argument("--port", required=True, help="e.g. 80/TCP")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    add_ipblock_arg(p)
    add_cluster_cidr_arg(p)
    add_hostnetwork_arg(p)
    p.set_defaults(func=run)


@without_cycle_collection()  # a context manager from contextlib decorates as well
def run(args: argparse.Namespace) -> int:
    from podnet.policy.engine import Endpoint
    from podnet.policy.ports import parse_ports
    from podnet.policy.select import parse_selection
    from podnet.report.explanation import verdict_text

    cluster, engine = load_engine(args)
    ports = parse_ports(args.port)
    srcs, out_srcs = parse_selection(args.src, engine.pods, "--from")
    sources: list[Endpoint] = [*srcs, *out_srcs]
    svc = _service(cluster, args.dst)
    if svc is not None:
        verdicts = _via_service(cluster, engine, sources, svc, ports)
    else:
        dsts, out_dsts = parse_selection(args.dst, engine.pods, "--to")
        destinations: list[Endpoint] = [*dsts, *out_dsts]
        pairs = [(s, d) for s in sources for d in destinations if s is not d]
        if not pairs:
            raise InputError([Problem(None, "", "--from/--to", "no pair of endpoints to explain")])
        verdicts = [engine.explain(s, d, pp) for s, d in pairs for pp in ports]
    if args.output == "json":
        doc: Any = [v.to_json() for v in verdicts]
        json.dump(doc[0] if len(doc) == 1 else doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n".join(verdict_text(v) for v in verdicts))
    return 0


def _service(cluster: Any, text: str) -> Any:
    """The Service `--to` names (`svc/NS/NAME`, or one ClusterIP), else None."""
    from podnet.policy.via_service import find_service, is_service_selector
    from podnet.state.network import NetworkConfig

    item = text.strip()
    if is_service_selector(item):
        return find_service(cluster, NetworkConfig(), item, "--to")
    if item[:1].isdigit() and "/" not in item and "," not in item and cluster.services:
        try:
            return find_service(cluster, NetworkConfig(), item, "--to")
        except InputError:
            return None  # an address outside the cluster
    return None


def _via_service(
    cluster: Any, engine: Any, sources: list[Any], svc: Any, ports: list[Any]
) -> list[Any]:
    """One verdict per source, Service port and ready endpoint, judged on the endpoint and
    the port DNAT gives (policies see the packet after kube-proxy's rules)."""
    import dataclasses

    from podnet.policy.via_service import hops

    found = hops(cluster, engine.placement, engine.pods, svc, ports)
    if not found:
        raise InputError(
            [
                Problem(
                    None,
                    "",
                    "--to",
                    f"Service {svc.key} has no ready endpoint on {', '.join(map(str, ports))}",
                )
            ]
        )
    out = []
    for s in sources:
        for hop in found:
            if s is hop.endpoint:
                continue
            v = engine.explain(s, hop.endpoint, hop.target)
            reason = hop.reason() + (f"; {v.reason}" if v.reason else "")
            out.append(dataclasses.replace(v, reason=reason))
    return out
