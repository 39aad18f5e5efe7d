"""`podnet flows`: the connections a running cluster made and the attempts its policies
blocked, each with its pods, its Service and the policy that decided it.

The daemon's flow collector (podnet.flowlog) writes them to the cluster's history; this
command prints the recent ones, or (`-f`) follows it live. `-o json` prints one JSON
line per record (podnet.flowlog.flow_record documents the format).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from podnet.cli.live import add_cluster_arg, keep_daemon
from podnet.cli.output import print_error
from podnet.model.errors import InputError, Problem
from podnet.state.store import Store, state_dir

if TYPE_CHECKING:
    from podnet.flowlog.flow_record import Decision, Flow, Record
    from podnet.policy.addresses import AddressSet

LIMIT = 100


def register(sub: Any) -> None:
    p = sub.add_parser(
        "flows",
        help="new connections and blocked attempts of a live cluster, with pods, Services "
        "and the deciding policy",
        description="New connections (conntrack) and attempts blocked by a policy (nflog of "
        "podnet's rules), read in every node namespace by the daemon's flow collector: "
        "source and destination pods (or node / internet / outside addresses), the "
        "Service the client addressed, and per direction the policy and rule that "
        "admitted it, the policies that blocked it, or 'not isolated'. Without -f, the "
        "recent ones from the daemon's history.",
    )
    add_cluster_arg(p)
    p.add_argument("-f", "--follow", action="store_true", help="follow live (Ctrl-C ends)")
    p.add_argument(
        "--from", dest="src", metavar="SEL", help="sources: ns/pod, ns/*, *, an IP or CIDR"
    )
    p.add_argument(
        "--to",
        dest="dst",
        metavar="SEL",
        help="destinations: ns/pod, ns/*, *, an IP or CIDR, or svc/NS/NAME (through that Service)",
    )
    p.add_argument("--verdict", choices=("allowed", "blocked"))
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.add_argument(
        "--limit",
        type=int,
        default=LIMIT,
        metavar="N",
        help=f"without -f: the last N matching records (default {LIMIT}; 0: the whole history)",
    )
    p.set_defaults(func=run)


@dataclass(frozen=True)
class Selection:
    """Which endpoints a --from/--to keeps: pod keys, outside address ranges, Services."""

    pods: frozenset[str]
    outside: tuple[AddressSet, ...]
    services: frozenset[str]
    any: bool = False

    def keeps(self, name: str, ip: str, service: str | None) -> bool:
        from podnet.model.ip import ipv4_int

        if self.any or name in self.pods or (service is not None and service in self.services):
            return True
        value = ipv4_int(ip)
        return value is not None and any(s.contains(value) for s in self.outside)


def selection(text: str | None, flag: str, pods: list[Any], services: set[str]) -> Selection:
    """probe's selectors (policy.select), plus svc/NS/NAME for a Service."""
    from podnet.policy.select import parse_selection

    if text is None or text.strip() == "*":
        return Selection(frozenset(), (), frozenset(), any=True)
    items = [x.strip() for x in text.split(",") if x.strip()]
    wanted_svcs = {x[4:] for x in items if x.startswith("svc/")}
    unknown = sorted(wanted_svcs - services)
    if unknown:
        raise InputError([Problem(None, "", flag, f"'svc/{unknown[0]}': no such Service")])
    rest = ",".join(x for x in items if not x.startswith("svc/"))
    chosen, outside = parse_selection(rest, pods, flag) if rest else ([], [])
    return Selection(
        frozenset(p.key for p in chosen),
        tuple(o.addresses for o in outside),
        frozenset(wanted_svcs),
    )


def _pods_and_services(sdir: Any) -> tuple[list[Any], set[str]]:
    """The cluster's pods (as the selectors' endpoints) and Services, from the store and
    runtime.json: what `--from`/`--to` may name."""
    from podnet.policy.endpoints import PodEndpoint
    from podnet.render import runtime as rt
    from podnet.state.snapshot import snapshot

    with Store.open(sdir) as store:
        cluster = snapshot(store)
    try:
        served = {p.key: p for p in rt.load(sdir).pods}
    except rt.RuntimeFileError:
        served = {}
    pods = []
    for p in cluster.pods:
        key = f"{p.metadata.namespace or 'default'}/{p.metadata.name}"
        ip = served[key].ip if key in served else "0.0.0.0"
        pods.append(
            PodEndpoint(
                p.metadata.namespace or "default",
                p.metadata.name,
                dict(p.metadata.labels or {}),
                ip,
                p.spec.node_name or "",
                bool(p.spec.host_network),
                (),
            )
        )
    services = {f"{s.metadata.namespace or 'default'}/{s.metadata.name}" for s in cluster.services}
    return sorted(pods, key=lambda p: p.key), services


def run(args: argparse.Namespace) -> int:
    from podnet.flowlog import history
    from podnet.flowlog.flow_record import Flow, Lost, dumps

    sdir = state_dir(args.cluster)
    if not Store.exists(sdir):
        print_error(f"no cluster {args.cluster} ({sdir} not found); `podnet up` creates it")
        return 2
    if args.limit < 0:
        print_error(f"--limit must be 0 or more, not {args.limit}")
        return 2
    pods, services = _pods_and_services(sdir)
    src = selection(args.src, "--from", pods, services)
    dst = selection(args.dst, "--to", pods, services)
    keep_daemon(args.cluster)  # the collector is the daemon's child

    def wanted(r: Record) -> bool:
        if isinstance(r, Lost):
            return True  # losses are always shown: the output is incomplete
        if args.verdict and r.verdict != args.verdict:
            return False
        svc = r.service.name if r.service else None
        return src.keeps(r.src.name, r.src.ip, None) and dst.keeps(r.dst.name, r.dst.ip, svc)

    def show(r: Record) -> str:
        if args.output == "json":
            return dumps(r)
        return lost_line(r) if isinstance(r, Lost) else row(r)

    out = sys.stdout
    if args.output == "table":
        out.write(HEADER + "\n")
    if not args.follow:
        chosen = [r for r in history.recent(sdir) if wanted(r)]
        flows = [r for r in chosen if isinstance(r, Flow)]
        if args.limit and len(flows) > args.limit:
            since = flows[-args.limit].time
            chosen = [r for r in chosen if r.time >= since]
        out.writelines(show(r) + "\n" for r in chosen)
        return 0
    try:
        for r in history.records(sdir, follow_on=True):
            if wanted(r):
                out.write(show(r) + "\n")
                out.flush()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        sys.stderr.close()  # `flows -f | head`: the reader left
    return 0


# ---- the table ---------------------------------------------------------------------------
HEADER = f"{'TIME':<12} {'VERDICT':<8} {'PROTO':<5} {'SOURCE':<36} {'DESTINATION':<36} {'SERVICE':<24} POLICY"


def _end(name: str, ip: str, port: int, kind: str) -> str:
    where = f"{ip}:{port}" if port else ip
    return where if kind == "outside" else f"{name} ({where})"


def _decision(direction: str, d: Decision | None) -> str | None:
    if d is None:
        return None
    short = "eg" if direction == "egress" else "in"
    if d.verdict == "allowed":
        if d.policy is None:
            return f"{short}: {d.reason or 'not isolated'}"
        return f"{short}: {d.policy} rule {d.rule}"
    if d.verdict == "blocked":
        return f"{short}: BLOCKED by {', '.join(d.policies) or '?'}"
    return f"{short}: {d.verdict}"


def row(f: Flow) -> str:
    clock = datetime.fromtimestamp(f.time).strftime("%H:%M:%S.%f")[:12]
    svc = f"{f.service.name}:{f.service.port}" if f.service else "-"
    policy = "; ".join(
        x for x in (_decision("egress", f.egress), _decision("ingress", f.ingress)) if x
    )
    return (
        f"{clock:<12} {f.verdict:<8} {f.proto:<5} {_end(f.src.name, f.src.ip, f.src.port, f.src.kind):<36} "
        f"{_end(f.dst.name, f.dst.ip, f.dst.port, f.dst.kind):<36} {svc:<24} {policy or '-'}"
    )


def lost_line(r: Any) -> str:
    clock = datetime.fromtimestamp(r.time).strftime("%H:%M:%S.%f")[:12]
    if r.source == "history":
        return (
            f"{clock:<12} LOST     this reader fell a whole file behind: {r.messages} record(s) "
            "of the history rotated away unread"
        )
    return (
        f"{clock:<12} LOST     node {r.node}: the kernel dropped {r.source} events "
        f"({r.overruns} buffer overrun(s), {r.messages} numbered message(s)); flows are missing"
    )
