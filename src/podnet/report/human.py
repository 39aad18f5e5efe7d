"""Human outputs of `analyze`: a rich matrix per port, Markdown, Graphviz dot, a summary."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from podnet.policy.answer_set import Answers
from podnet.report.groups import Group, group_pods

GROUP_OVER = 24  # beyond this many pods on an axis, identical pods are grouped
ALLOW, DENY, MIXED, NONE = "✓", "✗", "±", "·"
LEGEND = f"{ALLOW} allowed   {DENY} denied   {MIXED} some pairs of the groups allowed   {NONE} not asked (the destination does not declare the port, or a pod to itself)"


def _cell(
    a: Answers,
    k: int,
    rows: Group,
    cols: Group,
    lookup: dict[int, int],
    m: Any,  # m[row][column]: a numpy matrix or lists
    src_pos: dict[int, int],
) -> str:
    values = []
    for i in rows.members:
        for j in cols.members:
            if i == j:
                continue
            pos = lookup.get(int(j))
            if pos is not None:
                values.append(bool(m[src_pos[int(i)]][pos]))
    if not values:
        return NONE
    if all(values):
        return ALLOW
    return DENY if not any(values) else MIXED


def _port_grid(a: Answers, k: int) -> tuple[list[Group], list[Group], list[list[str]]]:
    srcs, cols, m = a.block(k)
    class_of = a.class_of
    rows = group_pods(srcs, a.pods, class_of, len(srcs) > GROUP_OVER)
    colg = group_pods(a.destinations, a.pods, class_of, len(a.destinations) > GROUP_OVER)
    lookup = {int(j): p for p, j in enumerate(cols)}
    src_pos = {int(i): p for p, i in enumerate(srcs)}
    grid = [[_cell(a, k, r, c, lookup, m, src_pos) for c in colg] for r in rows]
    return rows, colg, grid


_SGR = {ALLOW: "32", DENY: "1;31", MIXED: "33", NONE: "2", "bold": "1", "ok": "32"}


def _paint(text: str, style: str, color: bool) -> str:
    return f"\x1b[{_SGR[style]}m{text}\x1b[0m" if color else text


def _grid(
    title: str,
    header: list[str],
    rows: list[list[tuple[str, str | None]]],
    color: bool,
    centre_from: int = 1,
) -> list[str]:
    """A box-drawn table whose cells are (text, style): the layout rich draws, written
    directly. A matrix has one column per destination and rich measures every cell of it,
    which cost a quarter of a second on the eight-pod example (issue 8: start-up)."""
    widths = [len(h) for h in header]
    for row in rows:
        for n, (text, _) in enumerate(row):
            widths[n] = max(widths[n], len(text))

    def line(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def cells(row: list[tuple[str, str | None]], bar: str) -> str:
        out = []
        for n, (text, style) in enumerate(row):
            pad = widths[n] - len(text)
            lpad = pad // 2 if n >= centre_from else 0
            body = _paint(text, style, color) if style else text
            out.append(" " * (lpad + 1) + body + " " * (pad - lpad + 1))
        return bar + bar.join(out) + bar

    head = [(h, "bold" if color else None) for h in header]
    return [
        title,
        line("┏", "━", "┳", "┓"),
        cells(head, "┃"),
        line("┡", "━", "╇", "┩"),
        *(cells(r, "│") for r in rows),
        line("└", "─", "┴", "┘"),
    ]


def to_table(a: Answers, color: bool = True) -> str:
    """One matrix per port. Columns are numbered and the numbers name the rows, so that
    the table stays narrow; beyond GROUP_OVER pods, identical pods share one row/column."""
    out: list[str] = []
    for k, pp in enumerate(a.ports):
        rows, cols, grid = _port_grid(a, k)
        if not rows or not cols:
            continue
        allowed, asked = a.counts(k)
        number = {c.label: n for n, c in enumerate(cols, 1)}
        body = []
        for r, cells in zip(rows, grid, strict=True):
            tag = f"{number[r.label]:>3} " if r.label in number else "    "
            body.append([(tag + r.label, "bold" if color else None), *((v, v) for v in cells)])
        header = ["from \\ to", *(str(n) for n in range(1, len(cols) + 1))]
        out += _grid(f"port {pp}: {allowed} of {asked} pod pairs allowed", header, body, color)
        row_labels = {r.label for r in rows}
        missing = [f"{n} {c.label}" for n, c in enumerate(cols, 1) if c.label not in row_labels]
        if missing:
            out.append("  columns not among the rows: " + "; ".join(missing))
    if a.outside_results:
        body = [
            [
                (res.source, None),
                (res.destination, None),
                (f"{res.port}/{res.protocol}", None),
                ("allowed", "ok") if res.allowed else ("denied", DENY),
            ]
            for res in a.outside_results
        ]
        out += _grid("outside peers", ["from", "to", "port", "verdict"], body, color, 4)
    if not a.ports:
        out.append(
            "no ports to ask about: the destinations declare no container ports; give --ports"
        )
    out.append(_paint(LEGEND, NONE, color))
    return "\n".join(out) + "\n"


def to_markdown(a: Answers) -> str:
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


def to_dot(a: Answers) -> str:
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


def to_summary(a: Answers) -> str:
    """Counts per port/protocol: usable on clusters far too large to list pairs."""
    pods = a.pods
    eng = a.engine
    iso_in = a.isolated_count("ingress", a.destinations)
    iso_eg = a.isolated_count("egress", a.sources)
    lines = [
        f"pods: {len(pods)}  namespaces: {len(eng.ns_labels)}  policies: {len(eng.cluster.policies)}  "
        f"policy classes: {a.class_count}",
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
