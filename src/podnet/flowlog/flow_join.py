"""Events of every node -> one record per connection attempt (sans-io: the caller feeds
events with the time they arrived and asks what is due).

One connection leaves traces on each node it crosses: a conntrack NEW event per node that
forwarded it (the kernel confirms an entry when the first packet leaves the node; a packet
rejected there is never confirmed and sends none), and an nflog message per policy chain
that decided it (egress on the source's node, ingress on the destination's). They are
joined on the connection's *wire tuple*: the source as the client sent it and the
destination after a Service's DNAT, i.e. the original tuple's source and the reply
tuple's source. A node that masquerades (a NodePort forwarded to another node) shows the
next node a different source: its entry's reply tuple names it, and that tuple becomes an
alias of the wire tuple. Events arrive on different sockets in no fixed order, so a group
is emitted once it has been quiet for `window` seconds (a blocked attempt leaves only log
messages; an allowed one, its conntrack events).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from podnet.flowlog.attribution import PROTOCOLS, Directory
from podnet.flowlog.flow_record import Decision, Flow, Peer, ServiceRef
from podnet.flowlog.nl_wire import CtEvent, FiveTuple, LogPacket
from podnet.policy.verdict import Direction
from podnet.render import flow_log
from podnet.render.flow_log import Tag

# Seconds without a new event before a group is emitted. It must exceed the delay of
# nflog's batching (nl_wire.FLUSH_TIMEOUT, 50 ms) plus the time a packet takes from one
# node to the next: the collector stamps an event when it reads it.
WINDOW = 0.25


@dataclass
class _Group:
    key: FiveTuple
    first: float
    last: float
    cts: list[tuple[str, CtEvent]] = field(default_factory=list)
    logs: list[tuple[str, Tag, FiveTuple]] = field(default_factory=list)

    def merge(self, other: _Group) -> None:
        self.first, self.last = min(self.first, other.first), max(self.last, other.last)
        self.cts += other.cts
        self.logs += other.logs


def wire_tuple(ev: CtEvent) -> FiveTuple:
    o, r = ev.orig, ev.reply
    return FiveTuple(o.proto, o.src, o.sport, r.src, r.sport)


def snat_alias(ev: CtEvent) -> FiveTuple | None:
    """The tuple the next node sees when this node changed the source (masquerade)."""
    o, r = ev.orig, ev.reply
    if (r.dst, r.dport) == (o.src, o.sport):
        return None
    return FiveTuple(o.proto, r.dst, r.dport, r.src, r.sport)


class Joiner:
    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self._groups: dict[FiveTuple, _Group] = {}
        self._alias: dict[FiveTuple, FiveTuple] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def _group(self, key: FiveTuple, now: float) -> _Group:
        g = self._groups.get(key)
        if g is None:
            g = self._groups[key] = _Group(key, now, now)
        g.last = max(g.last, now)
        return g

    def conntrack(self, node: str, ev: CtEvent, now: float) -> None:
        key = wire_tuple(ev)
        key = self._alias.get(key, key)  # the next node's entry: its source is the alias
        g = self._group(key, now)
        g.cts.append((node, ev))
        alias = snat_alias(ev)
        if alias is not None and alias != key:
            self._alias[alias] = key
            early = self._groups.pop(alias, None)  # the next node's events came first
            if early is not None:
                g.merge(early)

    def logged(self, node: str, pkt: LogPacket, now: float) -> bool:
        """False when the message is not one of podnet's tags (or not IPv4)."""
        tag = flow_log.parse(pkt.prefix)
        if tag is None or pkt.packet is None:
            return False
        key = self._alias.get(pkt.packet, pkt.packet)
        self._group(key, now).logs.append((node, tag, pkt.packet))
        return True

    def stale(self, d: Directory) -> bool:
        """A pending reject was logged by a rule written for other policies than `d` has."""
        for g in self._groups.values():
            for _, t, _ in g.logs:
                if t.verdict == "blocked" and t.policies_hash:
                    who = d.pod_of_hash(t.pod_hash)
                    pols = d.isolated_by(who, t.direction) if who else ()
                    if flow_log.policies_digest(pols) != t.policies_hash:
                        return True
        return False

    def due(self, now: float, d: Directory) -> list[Flow]:
        """The groups quiet for `window`, as records (oldest first)."""
        ready = [g for g in self._groups.values() if now - g.last >= self.window]
        return self._emit(ready, d)

    def flush(self, d: Directory) -> list[Flow]:
        return self._emit(list(self._groups.values()), d)

    def _emit(self, groups: list[_Group], d: Directory) -> list[Flow]:
        for g in groups:
            del self._groups[g.key]
        if groups:
            live = set(self._groups)
            self._alias = {a: k for a, k in self._alias.items() if k in live}
        return [record(g, d) for g in sorted(groups, key=lambda g: g.first)]


def record(g: _Group, d: Directory) -> Flow:
    """One group as a record (pure; see flow_record for the format)."""
    key = g.key
    natted = next(((n, ev) for n, ev in g.cts if ev.dnat or ev.snat), None)
    service = snat = None
    if natted is not None:
        ev = natted[1]
        if ev.dnat:
            hit = d.service(ev.orig.dst, ev.orig.proto, ev.orig.dport)
            if hit is not None:
                service = ServiceRef(hit.name, hit.port, f"{ev.orig.dst}:{ev.orig.dport}")
        alias = snat_alias(ev)
        if alias is not None:
            snat = f"{alias.src}:{alias.sport}"
    src_who, dst_who = d.who(key.src), d.who(key.dst)
    src = Peer(key.src, key.sport, src_who.name, src_who.kind)
    dst = Peer(key.dst, key.dport, dst_who.name, dst_who.kind)
    egress = _decision(g, d, "egress", src_who.name if src_who.kind == "pod" else None, None)
    ingress_pod = dst_who.name if dst_who.kind == "pod" else None
    ingress = _decision(g, d, "ingress", ingress_pod, egress)
    blocked = any(x is not None and x.verdict == "blocked" for x in (egress, ingress))
    nodes = {n for n, _ in g.cts} | {n for n, _, _ in g.logs}
    return Flow(
        g.first,
        PROTOCOLS.get(key.proto, str(key.proto)),
        src,
        dst,
        "blocked" if blocked else "allowed",
        egress,
        ingress,
        tuple(sorted(nodes)),
        service,
        snat,
    )


def _decision(
    g: _Group, d: Directory, direction: Direction, pod: str | None, before: Decision | None
) -> Decision | None:
    tags = [(n, t) for n, t, _ in g.logs if t.direction == direction]
    blocked = next(((n, t) for n, t in tags if t.verdict == "blocked"), None)
    if blocked is not None:
        node, tag = blocked
        who = d.pod_of_hash(tag.pod_hash) or pod
        pols = d.isolated_by(who, direction) if who else ()
        if tag.policies_hash and flow_log.policies_digest(pols) != tag.policies_hash:
            # the rule was written for other policies than the picture has (a change the
            # collector has not read yet): name none rather than the wrong ones
            return Decision("blocked", who, node, reason="policies changed")
        return Decision("blocked", who, node, policies=pols)
    if tags:
        node, tag = tags[0]
        policy = d.policy(tag.policy_hash) or f"<policy {tag.policy_hash}>"
        return Decision("allowed", pod, node, policy, tag.rule)
    if pod is None:
        return None  # not a pod: no policy judges this side
    if before is not None and before.verdict == "blocked":
        return Decision("not reached", pod)
    pols = d.isolated_by(pod, direction)
    if not pols:
        return Decision("allowed", pod, reason="not isolated")
    return Decision(
        "unknown",
        pod,
        policies=pols,
        reason="isolated, but no log message came (lost, or the rules were changing)",
    )
