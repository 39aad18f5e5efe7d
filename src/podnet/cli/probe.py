"""`podnet probe`: real packets between a running cluster's pods, against the engine's answer.

Reads the cluster's stored objects and what it runs (runtime.json), asks the policy engine
which probes must pass, sends them all at once from inside the source pods' namespaces, and
prints the truth table: observed against expected. Exit 0 when every probe agrees, 1 on any
mismatch, 2 on bad input, 3 when none disagrees but some got no answer (no verdict).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podnet.cli.live import add_cluster_arg, keep_daemon
from podnet.cli.output import print_error, print_warnings
from podnet.model.errors import InputError
from podnet.state.store import Store, state_dir

if TYPE_CHECKING:  # imported where used: `--help` pays for none of numpy, rich, pydantic
    from podnet.policy.engine import Engine
    from podnet.policy.expectations import ProbePlan, Report, Result
    from podnet.policy.ports import PortProto
    from podnet.probing.send import Target
    from podnet.render.runtime import Runtime

TIMEOUT = 1.0
LOOPBACK = "127.0.0.1"  # a pod reaching its own localhost-only port (Probe.loopback)
GRID_MAX = 40
READY_TIMEOUT = 30.0  # for a daemon that was started again: every pod answers first
UNANSWERED_SHOWN = 20  # beyond this many pods on an axis, the per-port grids give way to counts
OK_ALLOW, OK_DENY, OK_REFUSED = "✓", "✗", "○"
BAD_ALLOW, BAD_DENY, BAD_REFUSED, WRONG = "✓!", "✗!", "○!", "?!"
NO_ANSWER, ERROR, NONE = "…", "E!", "·"
LEGEND = (
    f"{OK_ALLOW} passed   {OK_DENY} blocked by a policy   "
    f"{OK_REFUSED} refused: nothing listens (a localhost-only port, a Service without endpoints)   "
    f"{NO_ANSWER} no answer (no verdict)   {NONE} not probed   "
    f"{BAD_ALLOW} {BAD_DENY} {BAD_REFUSED} the engine says otherwise   "
    f"{WRONG} answered by the wrong pod   {ERROR} error"
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "probe",
        help="send real traffic between a live cluster's pods and compare with the analysis",
        description="From every selected source pod to every selected destination pod, on "
        "each destination's declared ports (or --ports), connect over TCP and read the "
        "destination's identity line, or send a UDP datagram and wait for the reply. Prints "
        "what passed against what the policy engine expects; exit 1 on any mismatch. "
        "Needs root (it opens sockets inside the pods' network namespaces).",
    )
    add_cluster_arg(p)
    p.add_argument("--ports", help="ports to probe, e.g. 80/TCP,53/UDP,8000-8010/TCP")
    p.add_argument(
        "--from", dest="src", default="*", metavar="SEL", help="sources: ns/pod, ns/*, *"
    )
    p.add_argument(
        "--to",
        dest="dst",
        default="*",
        metavar="SEL",
        help="destinations: ns/pod, ns/*, *; with --via service also svc/NS/NAME (a pod "
        "selection means the Services it is an endpoint of)",
    )
    p.add_argument(
        "--via",
        choices=("pod", "service"),
        default="pod",
        help="address the pod directly (default), or every Service's ClusterIP on each "
        "Service port, judged on the endpoint kube-proxy picked",
    )
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT,
        metavar="SECONDS",
        help=f"seconds one attempt waits for an answer (default {TIMEOUT:g}); a silent probe "
        "is tried again, and one silent every time is reported as 'no answer', never as blocked",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.timeout <= 60:
        print_error(f"--timeout must be in (0, 60] seconds, not {args.timeout:g}")
        return 2
    if os.geteuid() != 0:
        print_error("podnet probe needs root: it opens sockets inside pod network namespaces")
        return 2
    sdir = state_dir(args.cluster)
    if not Store.exists(sdir):
        print_error(f"no cluster {args.cluster} ({sdir} not found); `podnet up` creates it")
        return 2
    if keep_daemon(args.cluster) == "restarted":
        from podnet.daemon import supervisor

        supervisor.wait_ready(sdir, READY_TIMEOUT)  # a restarted stand-in serves again first
    from podnet.render import runtime as rt

    try:
        runtime = rt.load(sdir)
    except rt.RuntimeFileError as e:
        print_error(f"cluster {args.cluster} is not running: {e}")
        return 2
    from podnet.policy.ports import parse_ports

    ports = parse_ports(args.ports) if args.ports else None
    report = collect(sdir, runtime, args.src, args.dst, ports, args.timeout, args.via)
    question = report.plan
    if args.output == "json":
        sys.stdout.write(json.dumps(report.to_json(), indent=1) + "\n")
    else:
        tty = sys.stdout.isatty()
        width = shutil.get_terminal_size((200, 24)).columns if tty else 200
        sys.stdout.write(to_table(report, color=tty, width=width))
    for line in question.skipped:
        print(f"note: {line}", file=sys.stderr)
    return report.exit_status


def collect(
    sdir: Path,
    runtime: Runtime,
    src: str = "*",
    dst: str = "*",
    ports: list[PortProto] | None = None,
    timeout: float = TIMEOUT,
    via: str = "pod",
) -> Report:
    """Probe a running cluster and judge the result (InputError on a bad selection)."""
    from podnet.datapath.netns import WrongNamespace
    from podnet.policy.expectations import judge
    from podnet.probing.send import probe

    engine = live_engine(sdir, runtime)
    question = ask(engine, sdir, runtime, src, dst, ports, via)
    targets = targets_of(question, runtime)
    started = time.monotonic()
    try:
        seen = probe(targets, timeout=timeout)
    except WrongNamespace as e:
        # A pod's namespace file that is our own namespace: nothing was sent from it.
        raise InputError.line(
            f"cluster {runtime.cluster}: {e}; no probe was sent from it"
        ) from None
    return judge(question, seen, time.monotonic() - started)


def ask(
    engine: Engine,
    sdir: Path,
    runtime: Runtime,
    src: str,
    dst: str,
    ports: list[PortProto] | None,
    via: str,
) -> ProbePlan:
    """The probes of the question, with the engine's expectations."""
    from podnet.policy.expectations import plan
    from podnet.policy.select import parse_selection

    srcs, out_srcs = parse_selection(src, engine.pods, "--from")
    if via == "service":
        from podnet.policy.service_probes import select_services, service_plan

        if out_srcs:
            raise InputError.line(
                "probe sends traffic from pods only: --from takes ns/pod, ns/*, *"
            )
        services = select_services(engine.cluster, dst, engine.pods, "--to")
        return service_plan(engine, engine.cluster, srcs, services, ports)
    dsts, out_dsts = parse_selection(dst, engine.pods, "--to")
    if out_srcs or out_dsts:
        raise InputError.line(
            "probe sends traffic between pods only: --from/--to take ns/pod, ns/*, *"
        )
    return plan(engine, srcs, dsts, ports)


def targets_of(question: ProbePlan, runtime: Runtime) -> list[Target]:
    """Where each probe goes: from the source's namespace (its node's for hostNetwork) to the
    destination's IP (a Service's ClusterIP through it), or to 127.0.0.1 for a pod reaching
    its own localhost-only port."""
    from podnet.probing.send import Target
    from podnet.state.dns_identity import DNS_IDENTITY
    from podnet.state.ingress_identity import INGRESS_IDENTITY

    where = {p.key: p for p in runtime.pods}
    return [
        Target(
            where[p.source].netns,
            LOOPBACK if p.loopback else p.address or where[p.destination].ip,
            p.port,
            p.protocol,
            dns=p.identity == DNS_IDENTITY,
            http=p.identity == INGRESS_IDENTITY,
        )
        for p in question.probes
    ]


def live_engine(sdir: Path, runtime: Runtime) -> Engine:
    """The engine over the stored objects (built as the daemon's reconciler builds them) and
    the placement the cluster really has (runtime.json: the addresses the pods serve)."""
    from podnet.policy.engine import Engine
    from podnet.policy.expectations import live_placement
    from podnet.state.snapshot import snapshot

    with Store.open(sdir) as store:
        cluster = snapshot(store)
        nodes = store.nodes()
        revision, synced = store.revision(), store.get_meta("synced_revision")
    if synced is not None and int(synced) < revision:
        print(
            f"warning: the cluster enforces revision {synced} of its objects, not yet the "
            f"latest ({revision}): a change is being applied; mismatches may be that",
            file=sys.stderr,
        )
    pods = {(p.namespace, p.name): (p.node, p.ip) for p in runtime.pods}
    placement = live_placement(cluster, nodes, pods)
    print_warnings(cluster.warnings)
    return Engine(cluster, placement)


# --- the table -------------------------------------------------------------------------


def _cells(report: Report) -> dict[tuple[str, str, int, str], str]:
    out = {}
    for r in report.results:
        p = r.probe
        if r.wrong_identity:
            cell = WRONG
        elif not r.answered:
            cell = NO_ANSWER
        elif r.seen.outcome == "error":
            cell = ERROR
        else:
            cell = {"passed": OK_ALLOW, "blocked": OK_DENY, "refused": OK_REFUSED}[r.verdict]
            if not r.ok:
                cell += "!"
        out[(p.source, p.destination, p.port, p.protocol)] = cell
    return out


def _axes(q: ProbePlan, report: Report, pp: Any) -> tuple[list[str], list[str]]:
    rs = [
        r.probe
        for r in report.results
        if (r.probe.port, r.probe.protocol) == (pp.port, pp.protocol)
    ]
    srcs = sorted({p.source for p in rs})
    dsts = sorted({p.destination for p in rs})
    return srcs, dsts


def _said(r: Result) -> str:
    p = r.probe
    if p.via_service and not p.choices:
        return "refused: the Service has no ready endpoint"
    if r.expected is None:
        allowed = sum(c.expected for c in p.choices)
        return f"allowed to {allowed} of its {len(p.choices)} endpoints"
    return "allowed" if r.expected else "blocked by a policy"


def to_table(report: Report, color: bool = True, width: int = 200) -> str:
    """One grid per port (numbered columns, as analyze's table), then every mismatch."""
    from rich.console import Console
    from rich.table import Table

    console = Console(
        file=io.StringIO(),
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
    )
    style = {
        OK_ALLOW: "green",
        OK_DENY: "red",
        OK_REFUSED: "yellow",
        BAD_ALLOW: "bold white on red",
        BAD_DENY: "bold white on red",
        BAD_REFUSED: "bold white on red",
        WRONG: "bold white on magenta",
        ERROR: "bold white on magenta",
        NO_ANSWER: "bold yellow",
        NONE: "dim",
    }
    cells = _cells(report)
    q = report.plan
    for pp in q.ports:
        srcs, dsts = _axes(q, report, pp)
        if not srcs or not dsts:
            continue
        rs = [
            r for r in report.results if (r.probe.port, r.probe.protocol) == (pp.port, pp.protocol)
        ]
        passed = sum(r.allowed for r in rs)
        bad = sum(r.mismatch for r in rs)
        silent = sum(not r.answered for r in rs)
        title = (
            f"port {pp}: {passed} of {len(rs)} probes passed"
            + (f", [bold red]{bad} mismatch{'es' if bad != 1 else ''}[/]" if bad else "")
            + (f", [bold yellow]{silent} without an answer[/]" if silent else "")
            + ("" if bad or silent else ", as expected")
        )
        if len(srcs) > GRID_MAX or len(dsts) > GRID_MAX:
            console.print(title)
            continue
        console.print(title)
        t = Table()
        t.add_column("from \\ to", style="bold", no_wrap=True)
        number = {d: n for n, d in enumerate(dsts, 1)}
        for n in range(1, len(dsts) + 1):
            t.add_column(str(n), justify="center")
        for s in srcs:
            tag = f"{number[s]:>3} " if s in number else "    "
            row = [cells.get((s, d, pp.port, pp.protocol), NONE) for d in dsts]
            t.add_row(tag + s, *(f"[{style[v]}]{v}[/]" for v in row))
        console.print(t)
        missing = [
            f"{n} {d}" for d, n in number.items() if d not in srcs and not d.startswith("svc/")
        ]
        if missing:
            console.print("  columns not among the rows: " + "; ".join(missing))
    for r in report.mismatches:
        p, seen = r.probe, r.seen
        if r.wrong_identity:
            what = f"answered by [bold]{seen.reply!r}[/], expected {p.identity!r}"
        else:
            got = f"passed ({seen.reply})" if r.allowed else f"{r.verdict} ({seen.detail})"
            what = f"{got}; the engine says {_said(r)}"
        via = f" (over {LOOPBACK})" if p.loopback else ""
        console.print(
            f"[bold red]MISMATCH[/] {p.source} -> {p.destination} {p.port}/{p.protocol}{via}: "
            f"{what}"
        )
    for r in report.unanswered[:UNANSWERED_SHOWN]:
        p = r.probe
        console.print(
            f"[bold yellow]NO ANSWER[/] {p.source} -> {p.destination} {p.port}/{p.protocol}: "
            f"{r.seen.detail}; the engine says {_said(r)}"
        )
    if len(report.unanswered) > UNANSWERED_SHOWN:
        console.print(
            f"  ... and {len(report.unanswered) - UNANSWERED_SHOWN} more without an answer"
        )
    c = report.counts()
    total = c.get("probes", 0)
    parts = [f"{c.get('passed', 0)} passed", f"{c.get('blocked', 0)} blocked"]
    parts += [f"{c[v]} {v}" for v in ("refused", "no answer", "wrong pod", "error") if c.get(v)]
    if report.mismatches:
        verdict = f"[bold red]{len(report.mismatches)} differ from the engine[/]"
    elif report.unanswered:
        verdict = "[bold yellow]no answer is no verdict: the table is incomplete[/]"
    else:
        verdict = "[green]all as the engine expects[/]"
    retried = f" ({c['retried']} retried)" if c.get("retried") else ""
    console.print(
        f"{total} probes in {report.seconds:.2f}s{retried}: {', '.join(parts)}; {verdict}"
    )
    if not total:
        console.print("nothing to probe: the destinations declare no TCP/UDP ports; give --ports")
    console.print(f"[dim]{LEGEND}[/]")
    return console.file.getvalue()  # type: ignore[attr-defined]
