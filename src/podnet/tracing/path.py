"""A traced packet's path in Kubernetes terms: the kernel's trace events (chains, rule
handles, verdicts, per node namespace) read back through the renderer's naming into steps —
the Service and the endpoint its DNAT chose, each policy chain and the rule that accepted
or rejected the packet (`ns/policy ingress[i]`, as `explain` names it), the route to the
next node, the destination pod. Pure: everything read from the kernel comes in as values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from podnet.datapath.nftrace import TraceEvent
from podnet.datapath.route_lookup import RouteHop
from podnet.policy.expectations import Observation
from podnet.render import kernel_names as names

# (chain prefix) -> what kube-proxy's chain of that prefix does
_SERVICE_CHAINS = {
    names.SERVICE_CHAIN: "cluster traffic",
    names.LOCAL_CHAIN: "this node's endpoints (traffic policy Local)",
    names.EXTERNAL_CHAIN: "external traffic",
    names.ENDPOINT_CHAIN: "one endpoint",
}


@dataclass(frozen=True)
class PolicyChain:
    """A pod's policy chain as the renderer made it: whose, which direction, and what each
    of its rules stands for (`NodeRuleset.origins`)."""

    pod: str
    direction: str
    origins: tuple[str, ...]


@dataclass
class Step:
    node: str
    what: str
    kind: str = "info"  # info | service | dnat | policy | route | deliver | drop

    def to_json(self) -> dict[str, str]:
        return {"node": self.node, "kind": self.kind, "what": self.what}


@dataclass
class Path:
    steps: list[Step] = field(default_factory=list)
    verdict: str = "unknown"  # passed | blocked | refused | no-answer | error
    decided_by: str = ""  # the policy rule, or the Service rule, that decided
    endpoint: str | None = None  # the pod the packet was addressed to in the end
    endpoint_ip: str | None = None
    endpoint_port: int | None = None


def service_identity(chain: str) -> tuple[str, str] | None:
    """(what the chain does, `ns/name/proto/port`) of a kube-proxy chain, else None."""
    prefix, _, rest = chain.partition("-")
    if prefix not in _SERVICE_CHAINS or "-" not in rest:
        return None
    identity = rest.split("-", 1)[1]
    return _SERVICE_CHAINS[prefix], identity


def first_packet(
    events: Sequence[TraceEvent], table: str, trace_chain: str
) -> dict[str, list[TraceEvent]]:
    """Per namespace, the events of the first traced packet (a TCP SYN: the later packets of
    the connection carry other trace ids) in podnet's table, the trace chain left out."""
    first: dict[str, TraceEvent] = {}
    done: set[str] = set()
    out: dict[str, list[TraceEvent]] = {}
    for e in events:
        if e.table != table or e.chain == trace_chain or e.netns in done:
            continue
        head = first.setdefault(e.netns, e)
        if e is not head and (e.chain, e.handle, e.kind) == (head.chain, head.handle, head.kind):
            done.add(e.netns)  # the same packet again (a retransmitted SYN): one is enough
            continue
        if e.id == head.id:
            out.setdefault(e.netns, []).append(e)
    return out


def walk(
    events: Mapping[str, list[TraceEvent]],
    order: Sequence[str],
    node_of: Mapping[str, str],
    handles: Mapping[str, Mapping[str, list[int]]],
    chains: Mapping[tuple[str, str], PolicyChain],
    pod_by_ip: Mapping[str, str],
    routes: Mapping[str, RouteHop],
    node_by_gateway: Mapping[str, str],
    links: Mapping[str, Mapping[int, str]],
    path: Path | None = None,
) -> Path:
    """The steps of the packet through the node namespaces in `order` (`path`: what is
    known before, e.g. the pod a packet is addressed to directly)."""
    path = path or Path()
    for ns in order:
        node = node_of[ns]
        evs = events.get(ns, [])
        if not evs:
            continue
        iif = next((e.iif for e in evs if e.iif), None)
        came = links.get(ns, {}).get(iif or 0, f"if{iif}") if iif else "?"
        path.steps.append(Step(node, f"enters node {node} on {came}"))
        oif = None
        for i, e in enumerate(evs):
            if e.oif:
                oif = e.oif
            if e.kind == "rule" and e.handle is None:
                continue  # the end of a chain that decided nothing
            if e.kind == "policy":
                if e.verdict == "drop":
                    path.steps.append(
                        Step(node, f"dropped by the policy of chain {e.chain}", "drop")
                    )
                    path.verdict, path.decided_by = "blocked", e.chain
                continue
            _rule_step(path, node, ns, e, evs[i + 1 :], handles, chains, pod_by_ip)
            if path.verdict in ("blocked", "refused"):
                return path
        hop = routes.get(ns)
        out = links.get(ns, {}).get(oif or 0) if oif else None
        if hop is not None and path.endpoint_ip:
            path.steps.append(_route_step(node, hop, out, node_by_gateway, path))
    return path


def _rule_step(
    path: Path,
    node: str,
    ns: str,
    e: TraceEvent,
    later: Sequence[TraceEvent],
    handles: Mapping[str, Mapping[str, list[int]]],
    chains: Mapping[tuple[str, str], PolicyChain],
    pod_by_ip: Mapping[str, str],
) -> None:
    svc = service_identity(e.chain)
    target_svc = service_identity(e.target) if e.target else None
    policy = chains.get((node, e.chain))
    if e.verdict in ("jump", "goto") and target_svc is not None:
        what, identity = target_svc
        path.steps.append(
            Step(node, f"Service {identity}: kube-proxy's {what} chain {e.target}", "service")
        )
    elif e.verdict in ("jump", "goto") and e.target and (node, e.target) in chains:
        pc = chains[(node, e.target)]
        path.steps.append(
            Step(node, f"{pc.direction} policies of pod {pc.pod} (chain {e.target})", "policy")
        )
    elif svc is not None and e.verdict == "accept":
        dnat = next((x.header for x in later if x.header is not None), None)
        if dnat is not None:
            pod = pod_by_ip.get(dnat.dst, dnat.dst)
            path.endpoint, path.endpoint_ip, path.endpoint_port = pod, dnat.dst, dnat.dport
            path.steps.append(
                Step(
                    node,
                    f"DNAT to endpoint {pod} at {dnat.dst}:{dnat.dport} (chosen by {e.chain})",
                    "dnat",
                )
            )
    elif policy is not None and e.handle is not None:
        order = list(handles.get(ns, {}).get(e.chain, []))
        at = order.index(e.handle) if e.handle in order else -1
        origin = policy.origins[at] if 0 <= at < len(policy.origins) else f"rule handle {e.handle}"
        if len(order) != len(policy.origins):
            origin += " (the kernel's chain differs from the store's: run `podnet doctor`)"
        if e.verdict == "drop":
            why = "no policy rule admits it" if origin == "default deny" else origin
            path.steps.append(
                Step(node, f"REJECTED by {policy.direction} of {policy.pod}: {why}", "drop")
            )
            path.verdict = "blocked"
            path.decided_by = f"{policy.direction} of {policy.pod}: {why}"
        else:
            said = "the pod itself (hairpin)" if origin == "hairpin" else origin
            path.steps.append(
                Step(node, f"{policy.direction} of {policy.pod} allowed by {said}", "policy")
            )
    elif e.chain == names.REJECT_CHAIN and e.verdict == "drop":
        path.steps.append(
            Step(node, "REJECTED: the Service has no ready endpoint (kube-proxy's reject)", "drop")
        )
        path.verdict, path.decided_by = "refused", "the Service has no ready endpoint"
    elif e.chain == names.FORWARD_CHAIN and e.verdict == "accept":
        path.steps.append(Step(node, "accepted: part of an established connection", "policy"))
    elif e.chain == names.MASQUERADING_CHAIN and e.verdict == "accept":
        path.steps.append(Step(node, "masqueraded: source rewritten to the node's address", "dnat"))
    elif e.chain == names.MARK_MASQ_CHAIN:
        path.steps.append(Step(node, "marked for masquerade (a client outside the pod network)"))
    elif e.verdict == "drop":
        path.steps.append(Step(node, f"dropped by {e.chain} rule handle {e.handle}", "drop"))
        path.verdict, path.decided_by = "blocked", f"{e.chain} rule handle {e.handle}"


def _route_step(
    node: str, hop: RouteHop, out: str | None, node_by_gateway: Mapping[str, str], path: Path
) -> Step:
    dev = out or hop.dev
    if dev == names.VXLAN_IF:
        to = node_by_gateway.get(hop.via or "", hop.via or "?")
        return Step(
            node, f"routed to node {to} through the VXLAN overlay ({dev} via {hop.via})", "route"
        )
    if hop.via:
        to = node_by_gateway.get(hop.via, hop.via)
        return Step(node, f"routed to node {to} via {hop.via} on {dev} (host-gw)", "route")
    return Step(node, f"delivered to pod {path.endpoint} on {dev} ({hop.dst})", "deliver")


def verdict_of(path: Path, seen: Observation) -> tuple[str, str]:
    """What happened to the packet, from the trace and the socket together."""
    if seen.outcome == "reply":
        return "passed", f"answered by {seen.reply}"
    if path.verdict in ("blocked", "refused"):
        return path.verdict, path.decided_by
    if seen.outcome == "refused":
        return "refused", "nothing listens on that port (TCP reset or ICMP port unreachable)"
    if seen.outcome == "rejected":
        return "blocked", f"rejected ({seen.detail}) by a rule the trace did not see"
    return seen.outcome, seen.detail


def to_json(path: Path, extra: Mapping[str, Any]) -> dict[str, Any]:
    return {**extra, "steps": [s.to_json() for s in path.steps]}
