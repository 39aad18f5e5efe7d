"""`podnet analyze`: who can reach whom, on which port, without root and without a cluster."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from podnet.cli.common import (
    add_cluster_cidr_arg,
    add_hostnetwork_arg,
    add_ipblock_arg,
    add_manifest_args,
    load_engine,
    without_cycle_collection,
)

if TYPE_CHECKING:
    from podnet.policy.answer_set import Answers

# output format -> (module, function) of podnet.report, imported when used
RENDERERS = {
    "json": ("machine", "to_json"),
    "csv": ("machine", "to_csv"),
    "dot": ("human", "to_dot"),
    "md": ("human", "to_markdown"),
    "summary": ("human", "to_summary"),
    "html": ("html_page", "to_html"),
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "analyze",
        help="connectivity matrix of the pods in manifests",
        description="Compute which pods (and outside peers) may reach which, on which ports, "
        "from Kubernetes manifests and NetworkPolicies. Without --ports, each destination "
        "pod is asked about its own declared container ports.",
    )
    add_manifest_args(p)
    p.add_argument("--ports", help="ports to ask about, e.g. 80/TCP,53/UDP,8000-8010/TCP")
    p.add_argument(
        "--from",
        dest="src",
        default="*",
        metavar="SEL",
        help="sources: ns/pod, ns/*, *, IP or CIDR",
    )
    p.add_argument(
        "--to",
        dest="dst",
        default="*",
        metavar="SEL",
        help="destinations: ns/pod, ns/*, *, IP or CIDR, or svc/NS/NAME (a Service: its "
        "ready endpoints on its target ports; --ports then names Service ports)",
    )
    p.add_argument("-o", "--output", choices=("table", *RENDERERS), default="table")
    add_ipblock_arg(p)
    add_cluster_cidr_arg(p)
    add_hostnetwork_arg(p)
    p.set_defaults(func=run)


@without_cycle_collection()  # a context manager from contextlib decorates as well
def run(args: argparse.Namespace) -> int:
    import importlib

    from podnet.policy.engine import External
    from podnet.policy.pair_analysis import SMALL_CELLS, analyze_pairs, question_cells
    from podnet.policy.ports import parse_ports
    from podnet.policy.select import parse_selection

    cluster, engine = load_engine(args)
    ports = parse_ports(args.ports) if args.ports else None
    srcs, out_srcs = parse_selection(args.src, engine.pods, "--from")
    if args.dst.startswith("svc/"):
        # A Service: its ready endpoints, on the target ports of the Service ports asked.
        from podnet.policy.via_service import find_service, hops
        from podnet.state.network import NetworkConfig

        svc = find_service(cluster, NetworkConfig(), args.dst, "--to")
        found = hops(cluster, engine.placement, engine.pods, svc, ports)
        dsts = sorted({h.endpoint.key: h.endpoint for h in found}.values(), key=lambda p: p.key)
        out_dsts: list[External] = []
        ports = sorted({h.target for h in found}, key=lambda pp: (pp.port, pp.protocol))
    else:
        dsts, out_dsts = parse_selection(args.dst, engine.pods, "--to")
    result: Answers
    if args.output != "html" and question_cells(srcs, dsts, ports) <= SMALL_CELLS:
        # pair by pair: cheaper than importing numpy (the HTML report's cells need the matrix)
        result = analyze_pairs(engine, srcs, dsts, out_srcs, out_dsts, ports)
    else:
        from podnet.policy.analysis import analyze

        result = analyze(engine, srcs, dsts, out_srcs, out_dsts, ports)
    if args.output == "table":
        from podnet.report.human import to_table

        tty = sys.stdout.isatty()
        text = to_table(result, color=tty)
    else:
        module, function = RENDERERS[args.output]
        text = getattr(importlib.import_module(f"podnet.report.{module}"), function)(result)
    sys.stdout.write(text)
    return 0
