"""Human outputs of `analyze`: a rich matrix per port, Markdown, Graphviz dot, a summary."""

from __future__ import annotations

import io
from collections import defaultdict

import numpy as np

from podnet.policy.analysis import Analysis
from podnet.report.groups import Group, group_pods

GROUP_OVER = 24  # beyond this many pods on an axis, identical pods are grouped
ALLOW, DENY, MIXED, NONE = "✓", "✗", "±", "·"
LEGEND = f"{ALLOW} allowed   {DENY} denied   {MIXED} some pairs of the groups allowed   {NONE} not asked (the destination does not declare the port, or a pod to itself)"


def _cell(
    a: Analysis,
    k: int,
    rows: Group,
    cols: Group,
    lookup: dict[int, int],
    m: np.ndarray,
    src_pos: dict[int, int],
) -> str:
    values = []
    for i in rows.members:
        for j in cols.members:
            if i == j:
                continue
            pos = lookup.get(int(j))
            if pos is not None:
                values.append(bool(m[src_pos[int(i)], pos]))
    if not values:
        return NONE
    if all(values):
        return ALLOW
    return DENY if not any(values) else MIXED


def _port_grid(a: Analysis, k: int) -> tuple[list[Group], list[Group], list[list[str]]]:
    srcs, cols, m = a.block(k)
    class_of = a.matrix.classes.class_of
    rows = group_pods(srcs, a.pods, class_of, len(srcs) > GROUP_OVER)
    colg = group_pods(a.destinations, a.pods, class_of, len(a.destinations) > GROUP_OVER)
    lookup = {int(j): p for p, j in enumerate(cols)}
    src_pos = {int(i): p for p, i in enumerate(srcs)}
    grid = [[_cell(a, k, r, c, lookup, m, src_pos) for c in colg] for r in rows]
    return rows, colg, grid


def to_table(a: Analysis, color: bool = True, width: int = 200) -> str:
    """One matrix per port. Columns are numbered and the numbers name the rows, so that
    the table stays narrow; beyond GROUP_OVER pods, identical pods share one row/column."""
    from rich.console import Console  # only the table needs rich: md, dot, summary start faster
    from rich.table import Table

    console = Console(
        file=io.StringIO(),
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
    )
    style = {ALLOW: "green", DENY: "bold red", MIXED: "yellow", NONE: "dim"}
    for k, pp in enumerate(a.ports):
        rows, cols, grid = _port_grid(a, k)
        if not rows or not cols:
            continue
        allowed, asked = a.counts(k)
        number = {c.label: n for n, c in enumerate(cols, 1)}
        t = Table(title=f"port {pp}: {allowed} of {asked} pod pairs allowed", title_justify="left")
        t.add_column("from \\ to", style="bold", no_wrap=True)
        for n in range(1, len(cols) + 1):
            t.add_column(str(n), justify="center")
        for r, line in zip(rows, grid, strict=True):
            tag = f"{number[r.label]:>3} " if r.label in number else "    "
            t.add_row(tag + r.label, *(f"[{style[v]}]{v}[/]" for v in line))
        console.print(t)
        missing = [
            f"{n} {c.label}"
            for n, c in enumerate(cols, 1)
            if c.label not in {r.label for r in rows}
        ]
        if missing:
            console.print("  columns not among the rows: " + "; ".join(missing))
    if a.outside_results:
        t = Table(title="outside peers", title_justify="left")
        for h in ("from", "to", "port", "verdict"):
            t.add_column(h)
        for res in a.outside_results:
            t.add_row(
                res.source,
                res.destination,
                f"{res.port}/{res.protocol}",
                "[green]allowed[/]" if res.allowed else "[bold red]denied[/]",
            )
        console.print(t)
    if not a.ports:
        console.print(
            "no ports to ask about: the destinations declare no container ports; give --ports"
        )
    console.print(f"[dim]{LEGEND}[/]")
    return console.file.getvalue()  # type: ignore[attr-defined]


def to_markdown(a: Analysis) -> str:
    out = []
    for k, pp in enumerate(a.ports):
        rows, cols, grid = _port_grid(a, k)
        if not rows or not cols:
            continue
        allowed, asked = a.counts(k)
        out.append(f"### Port {pp}: {allowed} of {asked} pod pairs allowed\n")
        out.append("| from \\ to | " + " | ".join(c.label for c in cols) + " |")
        out.append("|---|" + "---|" * len(cols))
        for r, line in zip(rows, grid, strict=True):
            out.append(f"| {r.label} | " + " | ".join(line) + " |")
        out.append("")
    if a.outside_results:
        out += ["### Outside peers\n", "| from | to | port | allowed |", "|---|---|---|---|"]
        out += [
            f"| {r.source} | {r.destination} | {r.port}/{r.protocol} | {'yes' if r.allowed else 'no'} |"
            for r in a.outside_results
        ]
        out.append("")
    out.append(f"_{LEGEND}_")
    return "\n".join(out) + "\n"


def to_dot(a: Analysis) -> str:
    """Allowed connections as a graph: namespaces as clusters, edges labelled with ports."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in a.results():
        if r.allowed:
            edges[(r.source, r.destination)].append(f"{r.port}/{r.protocol}")
    nodes_by_ns: dict[str, set[str]] = defaultdict(set)
    outside: set[str] = set()
    for i in (*a.sources, *a.destinations):
        nodes_by_ns[a.pods[i].namespace].add(a.pods[i].key)
    for e in (*a.outside_sources, *a.outside_destinations):
        outside.add(e.key)
    lines = [
        "digraph podnet {",
        "  rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
    ]
    for n, (ns, keys) in enumerate(sorted(nodes_by_ns.items())):
        lines.append(f'  subgraph "cluster_{n}" {{')
        lines.append(f'    label="namespace {ns}"; style=dashed;')
        lines += [f'    "{k}" [label="{k.split("/", 1)[1]}"];' for k in sorted(keys)]
        lines.append("  }")
    lines += [f'  "{o}" [shape=ellipse];' for o in sorted(outside)]
    for (s, d), ports in sorted(edges.items()):
        lines.append(f'  "{s}" -> "{d}" [label="{",".join(sorted(set(ports)))}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_summary(a: Analysis) -> str:
    """Counts per port/protocol: usable on clusters far too large to list pairs."""
    pods = a.pods
    eng = a.engine
    iso_in = int(np.count_nonzero(a.matrix.isolated("ingress")[a.destinations]))
    iso_eg = int(np.count_nonzero(a.matrix.isolated("egress")[a.sources]))
    lines = [
        f"pods: {len(pods)}  namespaces: {len(eng.ns_labels)}  policies: {len(eng.cluster.policies)}  "
        f"policy classes: {len(a.matrix.classes.reps)}",
        f"isolated for ingress: {iso_in} of {len(a.destinations)} destinations; "
        f"for egress: {iso_eg} of {len(a.sources)} sources",
        f"{'port':>12}  {'allowed':>12}  {'pairs':>12}  {'share':>7}",
    ]
    total_a = total = 0
    for k, pp in enumerate(a.ports):
        allowed, asked = a.counts(k)
        total_a += allowed
        total += asked
        share = f"{100 * allowed / asked:.1f}%" if asked else "-"
        lines.append(f"{pp!s:>12}  {allowed:>12}  {asked:>12}  {share:>7}")
    if a.outside_results:
        ok = sum(r.allowed for r in a.outside_results)
        lines.append(f"{'outside':>12}  {ok:>12}  {len(a.outside_results):>12}")
    share = f"{100 * total_a / total:.1f}%" if total else "-"
    lines.append(f"{'total':>12}  {total_a:>12}  {total:>12}  {share:>7}")
    return "\n".join(lines) + "\n"
