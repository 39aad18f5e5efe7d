"""`podnet doctor`: a running cluster checked against its store; `--fix` repairs it.

Exit 0 when nothing drifted (after `--fix`: when the second check finds nothing), 1 when
something did, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from podnet.cli.live import add_cluster_arg, preflight
from podnet.cli.output import print_error
from podnet.state.store import Store, state_dir

if TYPE_CHECKING:
    from podnet.doctor.context import Context
    from podnet.doctor.findings import Finding


def register(sub: Any) -> None:
    p = sub.add_parser(
        "doctor",
        help="check a running cluster against its store; --fix repairs it",
        description="Compare the kernel with what the store says the cluster is: network "
        "namespaces, links, addresses, routes, neighbours, VXLAN FDB entries, each node's "
        "nftables table, the daemon, the in-cluster servers (cluster DNS), and the pods' "
        "listening sockets. Each difference is named in Kubernetes terms with the command "
        "that fixes it. --fix repairs through the daemon (a full sync, a restart of what "
        "died, a reload of the listeners) and checks again. Needs root.",
    )
    add_cluster_arg(p)
    p.add_argument("--fix", action="store_true", help="repair what differs, then check again")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (status := preflight("doctor", args.cluster)) is not None:
        return status
    sdir = state_dir(args.cluster).resolve()
    if not Store.exists(sdir):
        print_error(f"no cluster {args.cluster} ({sdir} not found); `podnet up` creates it")
        return 2
    from podnet.doctor.checks import repair, run_checks
    from podnet.doctor.context import Context

    with Store.open(sdir) as store:
        revision, synced = store.revision(), store.get_meta("synced_revision")
    if synced is not None and int(synced) < revision:
        print(
            f"warning: the cluster enforces revision {synced} of its objects, not yet the "
            f"latest ({revision}): a change is being applied; differences may be that",
            file=sys.stderr,
        )
    ctx = Context(args.cluster, sdir)
    found = run_checks(ctx)
    doc: dict[str, Any] = {"cluster": args.cluster, "found": [f.to_json() for f in found]}
    text = [_text(ctx, found, "")]
    if args.fix and found:
        done = repair(ctx, found)
        ctx = Context(args.cluster, sdir)
        found = run_checks(ctx)
        doc.update(repaired=done, after=[f.to_json() for f in found])
        text.append("repaired: " + "; ".join(done) + "\n")
        text.append(_text(ctx, found, "after the repair: "))
    if args.output == "json":
        sys.stdout.write(json.dumps({**doc, "clean": not found}, indent=1) + "\n")
    else:
        sys.stdout.write("".join(text))
    return 1 if found else 0


def _text(ctx: Context, found: list[Finding], prefix: str) -> str:
    checked = ", ".join(f"{what} ({n})" for what, n in ctx.checked.items())
    if not found:
        return f"{prefix}cluster {ctx.cluster}: no drift. Checked {checked}.\n"
    lines = [f"{prefix}cluster {ctx.cluster}: {len(found)} problem(s)"]
    width = max(len(f.subject) for f in found)
    for f in found:
        lines.append(f"  {'[' + f.area + ']':<12} {f.subject:<{width}}  {f.problem}")
    fixes = list(dict.fromkeys(f.command for f in found))
    lines.append("to fix:" if len(fixes) > 1 else "to fix it:")
    lines += [f"  {c}" for c in fixes]
    lines.append(f"checked {checked}")
    return "\n".join(lines) + "\n"
