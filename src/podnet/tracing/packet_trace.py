"""One traced packet on a live cluster: trace chains in podnet's table of every node
namespace the packet can cross, a trace socket in each, the packet, the events, the routes,
and the chains removed again whatever happened (also on an error or ^C).

Which nodes: the source pod's, the node whose NodePort is addressed, the destination pod's,
and, for a Service, the node of every ready endpoint (DNAT may choose any). A trace chain
changes the node's nft generation, so the daemon's drift watch sees it and its next
periodic check runs one full sync (which also removes a chain that a killed trace left).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field

from podnet.datapath import nftrace
from podnet.datapath.nft import NetnsRunner, NftError
from podnet.datapath.route_lookup import RouteHop, link_names, route_get
from podnet.policy.engine import Endpoint, Engine
from podnet.policy.expectations import Observation
from podnet.policy.ports import PortProto
from podnet.policy.select import parse_selection
from podnet.probing.single import send_one
from podnet.render import kernel_names as names
from podnet.render.policy_nft import NodeRuleset
from podnet.render.runtime import Runtime
from podnet.tracing.path import Path, PolicyChain, Step, first_packet, verdict_of, walk
from podnet.tracing.target import Target

SOURCE_PORTS = (40000, 60999)  # inside Linux's ephemeral range: a port no server listens on


@dataclass
class TraceResult:
    target: Target
    sport: int
    seen: Observation
    path: Path
    verdict: str
    why: str
    engine_says: str | None = None  # explain's verdict for the same packet
    engine_why: str = ""
    removed: list[str] = field(default_factory=list)  # namespaces whose trace chain went
    problems: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool | None:
        if self.engine_says is None:
            return None
        if self.verdict == "passed":
            return self.engine_says == "allowed"
        if self.verdict == "blocked":
            return self.engine_says == "blocked"
        if self.verdict == "refused":
            return self.engine_says in ("allowed", "no ready endpoint")
        return False


def crossing(target: Target, engine: Engine, runtime: Runtime) -> list[str]:
    """Names of the nodes the packet can cross, the first one first."""
    nodes: list[str] = []
    if target.source_node:
        nodes.append(target.source_node)
    if target.node_port_of:
        nodes.append(target.node_port_of)
    if target.pod:
        p = runtime.pod(target.pod)
        if p is not None:
            nodes.append(p.node)
    if target.service is not None:
        from podnet.policy.via_service import hops

        for hop in hops(engine.cluster, engine.placement, engine.pods, target.service, None):
            nodes.append(hop.endpoint.node)
    return list(dict.fromkeys(n for n in nodes if runtime.node(n) is not None))


def policy_chains(
    engine: Engine, cluster: str, nodes: list[str]
) -> dict[tuple[str, str], PolicyChain]:
    """(node, chain name) -> whose policy chain it is and what each rule stands for, as the
    renderer makes them from the same engine."""
    out = {}
    for node in nodes:
        ruleset = NodeRuleset(engine, node, cluster)
        for p in engine.pods:
            if p.node != node or p.host_network:
                continue
            rules = ruleset.pod_rules(p)
            for direction, chain in (("ingress", rules.ingress), ("egress", rules.egress)):
                if chain is not None:
                    origins = tuple(ruleset.origins(p, direction))  # type: ignore[arg-type]
                    out[(node, chain[0])] = PolicyChain(p.key, direction, origins)
    return out


def trace(target: Target, engine: Engine, runtime: Runtime, timeout: float = 2.0) -> TraceResult:
    cluster = runtime.cluster
    table, family = names.table_name(cluster), names.NFT_FAMILY
    chain = names.trace_chain(f"{os.getpid()}-{time.time_ns()}")
    sport = random.randint(*SOURCE_PORTS)
    while sport == target.port:
        sport = random.randint(*SOURCE_PORTS)
    nodes = crossing(target, engine, runtime)
    netns_of = {n: runtime.node(n).netns for n in nodes}  # type: ignore[union-attr]
    node_of = {ns: n for n, ns in netns_of.items()}
    # One packet: for TCP the SYN only (the rest of the connection, which the kernel may
    # give the same trace id, would read as a second path), for UDP the one datagram.
    match = f"meta l4proto {target.protocol.lower()} th sport {sport}"
    if target.protocol == "TCP":
        match += " tcp flags & (syn | ack) == syn"
    runner = NetnsRunner()
    added: list[str] = []
    problems: list[str] = []
    listener = None
    try:
        for ns in netns_of.values():
            nftrace.add_chain(runner, ns, family, table, chain, match)
            added.append(ns)
        listener = nftrace.TraceListener(added)
        seen = send_one(
            target.netns,
            target.host,
            target.port,
            target.protocol,
            sport,
            timeout,
            dns=target.port == 53,
        )
        events = listener.read()
        handles = {ns: nftrace.chain_handles(runner, ns, family, table) for ns in added}
        links = {ns: link_names(ns) for ns in added}
    finally:
        if listener is not None:
            listener.close()
        removed = []
        for ns in added:
            try:
                if nftrace.remove_chain(runner, ns, family, table, chain):
                    removed.append(ns)
            except (NftError, OSError) as e:
                problems.append(f"the trace chain {chain} in {ns} could not be removed: {e}")
    per_ns = first_packet(events, table, chain)
    start = Path()
    if target.pod is not None:
        start.endpoint, start.endpoint_ip, start.endpoint_port = (
            target.pod,
            target.host,
            target.port,
        )
    for evs in per_ns.values():  # the address DNAT gave, as the first later hook saw it
        dst = next((e.header for e in evs if e.header and e.header.dst != target.host), None)
        if dst is not None and start.endpoint_ip is None:
            by_ip = {p.ip: p.key for p in runtime.pods if not p.host_network}
            start.endpoint, start.endpoint_ip, start.endpoint_port = (
                by_ip.get(dst.dst, dst.dst),
                dst.dst,
                dst.dport,
            )
    routes: dict[str, RouteHop] = {}
    if start.endpoint_ip:
        for ns in added:
            try:
                routes[ns] = route_get(ns, start.endpoint_ip)
            except OSError as e:
                problems.append(f"no route in {ns} to {start.endpoint_ip}: {e}")
    first = netns_of.get(target.source_node or target.node_port_of or "")
    order = [first] if first else []
    order += [ns for ns in per_ns if ns not in order]
    gateways = {n.ip: n.name for n in runtime.nodes}
    import ipaddress

    for n in runtime.nodes:  # flannel's gateway on vxlan: the .0 of the node's podCIDR
        gateways[str(ipaddress.IPv4Network(n.pod_cidr).network_address)] = n.name
    path = walk(
        per_ns,
        order,
        node_of,
        handles,
        policy_chains(engine, cluster, nodes),
        {p.ip: p.key for p in runtime.pods if not p.host_network},
        routes,
        gateways,
        links,
        start,
    )
    what = f"pod {target.source}" if target.source_node else f"the {target.source}"
    where = f" on node {target.source_node}" if target.source_node else ""
    path.steps.insert(
        0, Step(target.source_node or target.source, f"source {what} ({target.source_ip}){where}")
    )
    verdict, why = verdict_of(path, seen)
    if verdict == "passed" and path.endpoint:
        path.steps.append(
            Step(
                _node_of_pod(runtime, path.endpoint),
                f"destination pod {path.endpoint} answered: {seen.reply}",
                "deliver",
            )
        )
    result = TraceResult(
        target, sport, seen, path, verdict, why, removed=removed, problems=problems
    )
    _ask_engine(result, engine)
    return result


def _node_of_pod(runtime: Runtime, key: str) -> str:
    p = runtime.pod(key)
    return p.node if p is not None else "-"


def _ask_engine(result: TraceResult, engine: Engine) -> None:
    """The engine's verdict (`podnet explain`'s) for the pod the packet was addressed to in
    the end, on the port it arrived at."""
    t, path = result.target, result.path
    if t.service is not None and not path.endpoint:
        from podnet.policy.via_service import hops

        if (
            not hops(
                engine.cluster,
                engine.placement,
                engine.pods,
                t.service,
                [PortProto(t.port, t.protocol)],
            )
            and t.node_port_of is None
        ):
            result.engine_says, result.engine_why = (
                "no ready endpoint",
                f"Service {t.service.key} has no ready endpoint",
            )
        return
    dst = engine.by_key.get(path.endpoint or "")
    if dst is None:
        return
    src_text = t.source if t.source in engine.by_key else f"{t.source_ip}/32"
    srcs, outside = parse_selection(src_text, engine.pods, "--from")
    src: Endpoint = srcs[0] if srcs else outside[0]
    v = engine.explain(src, dst, PortProto(path.endpoint_port or t.port, t.protocol))
    result.engine_says = "allowed" if v.allowed else "blocked"
    parts = [v.reason] if v.reason else []
    for d in (v.egress, v.ingress):
        if d is not None and d.isolated:
            parts.append(
                f"{d.direction} of {d.subject}: "
                + (", ".join(d.admitted_by) or "no rule admits it")
            )
    result.engine_why = "; ".join(parts)
