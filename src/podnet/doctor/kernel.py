"""The kernel against the store: namespaces, the netlink state of each (links, addresses,
routes, permanent neighbours, VXLAN FDB entries: what a sync would change, from the sync's
own Session in dry run), and each node's nftables table (chains with their rule counts,
sets, verdict maps with their element counts, against the reconciler's rendered tables)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from podnet.datapath import netns
from podnet.datapath.nft import NetnsRunner, NftError
from podnet.datapath.session import Session
from podnet.doctor.context import Context
from podnet.doctor.findings import RESYNC, Finding
from podnet.nftables.model import Table
from podnet.render import kernel_names as names
from podnet.render.service_nft import merge


def check_namespaces(ctx: Context) -> list[Finding]:
    wanted = {ns.name for ns in ctx.desired.plan.namespaces}
    ctx.note("namespaces", len(wanted))
    out = []
    for name in sorted(wanted - ctx.existing):
        out.append(
            Finding(
                "namespaces",
                ctx.who(name),
                f"its network namespace {name} is missing",
                RESYNC,
                ctx.fix_command(),
            )
        )
    for name in sorted(ctx.existing - wanted):
        out.append(
            Finding(
                "namespaces",
                f"namespace {name}",
                "is not in the store (left over, or made by hand)",
                RESYNC,
                ctx.fix_command(),
            )
        )
    return out


def check_netlink(ctx: Context) -> list[Finding]:
    """Each existing namespace compared by the sync's own code, sending nothing."""
    out = []
    present = [ns for ns in ctx.desired.plan.namespaces if ns.name in ctx.existing]
    ctx.note("namespaces read (links, addresses, routes, neighbours, FDB)", len(present))
    with netns.Worker() as worker:
        for ns in present:
            try:
                with Session(worker, ns.name, dry_run=True) as s:
                    s.ensure_lo()
                    s.sync_links(ns.links)
                    s.sync_addresses(ns.addresses)
                    s.sync_routes(ns.routes)
                    s.sync_neighbours(ns.neighbours)
                    if ns.role == "node":
                        s.sync_fdb(ns.fdb)
                    planned = s.planned
            except (OSError, netns.NetnsError) as e:
                planned = [f"cannot be read: {e}"]
            for what in planned:
                out.append(
                    Finding(
                        "network", ctx.who(ns.name), _annotate(ctx, what), RESYNC, ctx.fix_command()
                    )
                )
    return out


def _annotate(ctx: Context, what: str) -> str:
    """A route or neighbour named by what it leads to: a node's pods, a pod, Services."""
    import ipaddress

    words = what.split()
    if len(words) < 3 or words[1] not in ("route", "neighbour"):
        return what
    try:
        net = ipaddress.IPv4Network(words[2], strict=False)
    except ValueError:
        return what
    runtime = ctx.runtime
    for n in runtime.nodes if runtime else ():
        if net == ipaddress.IPv4Network(n.pod_cidr):
            return f"{what} (the way to node {n.name}'s pods)"
        if net.prefixlen == 32 and str(net.network_address) == n.ip:
            return f"{what} (node {n.name})"
    for p in runtime.pods if runtime else ():
        if net.prefixlen == 32 and str(net.network_address) == p.ip and not p.host_network:
            return f"{what} (pod {p.key})"
    net_cfg = ctx.desired.net
    if net_cfg is not None and net == net_cfg.service_cidr:
        return f"{what} (the Service addresses)"
    return what


def desired_tables(ctx: Context) -> dict[str, Table]:
    d = ctx.desired
    return {n: merge(r.table, d.services.get(n)) for n, r in ctx.rendered.items()}


def _live(runner: NetnsRunner, netns_name: str, table: str) -> dict[str, dict[str, int]] | None:
    """{"chain"|"set"|"map"|"counter": {name: rules or elements}} of the live table."""
    try:
        text = runner.list_json(netns_name, ["list", "table", names.NFT_FAMILY, table])
    except NftError as e:
        if "No such file or directory" in str(e) or "does not exist" in str(e):
            return None
        raise
    out: dict[str, dict[str, int]] = {"chain": {}, "set": {}, "map": {}, "counter": {}}
    for item in json.loads(text).get("nftables", []):
        for kind in ("chain", "set", "map", "counter"):
            if kind in item:
                out[kind][item[kind]["name"]] = len(item[kind].get("elem", ()))
        if "rule" in item:
            chain = item["rule"]["chain"]
            out["chain"][chain] = out["chain"].get(chain, 0) + 1
    return out


def _wanted(t: Table) -> dict[str, dict[str, int]]:
    return {
        "chain": {c.name: len(c.rules) for c in t.chains},
        "set": {s.name: len(s.elements) for s in t.sets},
        "map": {m.name: len(m.elements) for m in t.maps},
        "counter": {c.name: 0 for c in t.counters},
    }


def _meaning(ctx: Context, node: str, name: str) -> str:
    """An nft object of podnet's table in Kubernetes terms."""
    if name.startswith(f"{names.TRACE_CHAIN}-"):
        return f"a trace chain {name} left by `podnet trace`"
    if "-" in name and name.split("-", 1)[0] in ("svc", "svl", "ext", "ep"):
        identity = name.split("-", 2)[2] if name.count("-") >= 2 else name
        return f"Service {identity} (chain {name})"
    rendered = ctx.rendered.get(node)
    for pod, rules in (rendered.pods if rendered else {}).items():
        if rules.ingress and rules.ingress[0] == name:
            return f"the ingress policy chain of pod {pod} ({name})"
        if rules.egress and rules.egress[0] == name:
            return f"the egress policy chain of pod {pod} ({name})"
    plain = {
        names.FORWARD_CHAIN: "the policy hook (forward)",
        names.INGRESS_MAP: "the map of pods isolated for ingress",
        names.EGRESS_MAP: "the map of pods isolated for egress",
        names.SERVICE_IPS_MAP: "the Service addresses map (service-ips)",
        names.SERVICE_NODEPORTS_MAP: "the NodePorts map",
    }
    return plain.get(name, name)


def _differences(
    want: dict[str, dict[str, int]], have: dict[str, dict[str, int]]
) -> Iterator[tuple[str, str]]:
    """(object name, what differs)."""
    for kind in ("chain", "map", "set", "counter"):
        w, h = want[kind], have[kind]
        for name in sorted(w.keys() - h.keys()):
            yield name, f"{kind} missing"
        for name in sorted(h.keys() - w.keys()):
            yield name, f"{kind} not in the store"
        if kind in ("chain", "map"):
            what = "rules" if kind == "chain" else "elements"
            for name in sorted(w.keys() & h.keys()):
                if w[name] != h[name]:
                    yield name, f"{kind} holds {h[name]} {what}, the store wants {w[name]}"


def check_nft(ctx: Context) -> list[Finding]:
    out = []
    runner = NetnsRunner()
    table = names.table_name(ctx.cluster)
    tables = desired_tables(ctx)
    ctx.note("nft tables", len(tables))
    for node, want in sorted(tables.items()):
        ns = ctx.desired.node_netns[node]
        if ns not in ctx.existing:
            continue  # named by check_namespaces
        subject = f"node {node}"
        try:
            have = _live(runner, ns, table)
        except (NftError, OSError) as e:
            out.append(
                Finding("nft", subject, f"cannot list its table: {e}", RESYNC, ctx.fix_command())
            )
            continue
        if have is None:
            problem = f"table {names.NFT_FAMILY} {table} is missing: no policy nor Service rule holds there"
            out.append(Finding("nft", subject, problem, RESYNC, ctx.fix_command()))
            continue
        wanted = _wanted(want)
        if wanted["chain"] and have["chain"] and not any(have["chain"].values()):
            problem = f"table {table} was flushed: its {len(have['chain'])} chains hold no rule (no policy, no Service rule holds there)"
            out.append(Finding("nft", subject, problem, RESYNC, ctx.fix_command()))
            continue
        for name, what in _differences(wanted, have):
            out.append(
                Finding(
                    "nft",
                    subject,
                    f"{_meaning(ctx, node, name)}: {what}",
                    RESYNC,
                    ctx.fix_command(),
                )
            )
    return out
