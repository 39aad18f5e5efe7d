"""The flow log's records and their one JSON line format (what `flows -o json` prints, what
the history file holds, what the dashboard reads).

A flow line:

    {"type": "flow", "seq": 4711, "time": 1764483600.123, "proto": "TCP",
     "src": {"ip": "10.244.1.3", "port": 40312, "name": "shop/frontend-0", "kind": "pod"},
     "dst": {"ip": "10.244.2.4", "port": 8080, "name": "shop/api-0", "kind": "pod"},
     "service": {"name": "shop/api", "port": "http", "address": "10.96.7.1:8080"} | null,
     "snat": "172.18.0.3:41022" | null,
     "verdict": "allowed" | "blocked",
     "egress": DECISION | null, "ingress": DECISION | null,
     "nodes": ["node-1", "node-2"]}

`dst` is the endpoint that received (or would have received) the connection: after a
Service's DNAT. `src` is the client as it sent (before a node's masquerade, which `snat`
shows). `kind` is pod, node, internet or outside. A DECISION says how one direction was
judged, on which node, about which pod:

    {"verdict": "allowed", "policy": "shop/api-ingress", "rule": 0, "pod": "shop/api-0", "node": "node-2"}
    {"verdict": "allowed", "policy": null, "rule": null, "pod": ..., "node": null,
     "reason": "not isolated"}                                  no policy selects the pod
    {"verdict": "blocked", "policies": ["shop/default-deny", "shop/api-ingress"], "pod": ..., "node": ...}
    {"verdict": "not reached", ...}                  the other direction blocked it first
    {"verdict": "unknown", "reason": "..."}          isolated, but no log message came
null: that side is not a pod (the internet, a node), no policy judges it.

A lost line: `{"type": "lost", "seq": N, "time": ..., "node": "node-1", "source": "nflog" |
"conntrack", "overruns": N, "messages": M}`: the kernel dropped events of that node's
socket (N buffer overruns of unknown size, M messages missing from nflog's numbering).
A reader of the history that fell a whole file behind makes one itself: `"source":
"history"`, `"node": ""`, `"messages"`: how many records rotated away unread, `"seq": 0`.

`seq` numbers the records of a cluster's history 1, 2, 3, ... (history.Writer gives each
its number as it writes it, and goes on from the last one after a restart): a reader
identifies a record by it, so it reads none twice and sees which it missed. 0: not
numbered (a record not yet written, or a line written before numbering).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

Verdict = Literal["allowed", "blocked"]


@dataclass(frozen=True, slots=True)
class Peer:
    ip: str
    port: int
    name: str
    kind: str

    def to_json(self) -> dict[str, Any]:
        return {"ip": self.ip, "port": self.port, "name": self.name, "kind": self.kind}


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: str  # allowed, blocked, not reached, unknown
    pod: str | None = None
    node: str | None = None
    policy: str | None = None
    rule: int | None = None
    policies: tuple[str, ...] = ()
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.verdict, "pod": self.pod, "node": self.node}
        if self.verdict == "allowed":
            out |= {"policy": self.policy, "rule": self.rule}
        if self.verdict == "blocked":
            out["policies"] = list(self.policies)
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class ServiceRef:
    name: str
    port: str
    address: str  # ip:port the client addressed

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "port": self.port, "address": self.address}


@dataclass(frozen=True, slots=True)
class Flow:
    time: float
    proto: str
    src: Peer
    dst: Peer
    verdict: Verdict
    egress: Decision | None
    ingress: Decision | None
    nodes: tuple[str, ...]
    service: ServiceRef | None = None
    snat: str | None = None
    seq: int = 0  # the history's number of the record (history.Writer), 0 until written

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "flow",
            "seq": self.seq,
            "time": round(self.time, 6),
            "proto": self.proto,
            "src": self.src.to_json(),
            "dst": self.dst.to_json(),
            "service": self.service.to_json() if self.service else None,
            "snat": self.snat,
            "verdict": self.verdict,
            "egress": self.egress.to_json() if self.egress else None,
            "ingress": self.ingress.to_json() if self.ingress else None,
            "nodes": list(self.nodes),
        }


@dataclass(frozen=True, slots=True)
class Lost:
    time: float
    node: str
    source: Literal["nflog", "conntrack", "history"]
    overruns: int
    messages: int
    seq: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "lost",
            "seq": self.seq,
            "time": round(self.time, 6),
            "node": self.node,
            "source": self.source,
            "overruns": self.overruns,
            "messages": self.messages,
        }


Record = Flow | Lost


def dumps(record: Record) -> str:
    """One JSON line (no newline)."""
    return json.dumps(record.to_json(), separators=(",", ":"))


def _peer(d: dict[str, Any]) -> Peer:
    return Peer(str(d["ip"]), int(d["port"]), str(d["name"]), str(d["kind"]))


def _decision(d: dict[str, Any] | None) -> Decision | None:
    if d is None:
        return None
    return Decision(
        str(d["verdict"]),
        d.get("pod"),
        d.get("node"),
        d.get("policy"),
        d.get("rule"),
        tuple(d.get("policies", ())),
        d.get("reason"),
    )


def loads(line: str) -> Record:
    """A record from its JSON line (ValueError, KeyError or TypeError when it is not one)."""
    d = json.loads(line)
    if d["type"] == "lost":
        return Lost(
            float(d["time"]),
            str(d["node"]),
            d["source"],
            int(d["overruns"]),
            int(d["messages"]),
            int(d.get("seq", 0)),
        )
    if d["type"] != "flow":
        raise ValueError(f"not a flow record: {d['type']!r}")
    svc = d.get("service")
    return Flow(
        float(d["time"]),
        str(d["proto"]),
        _peer(d["src"]),
        _peer(d["dst"]),
        d["verdict"],
        _decision(d.get("egress")),
        _decision(d.get("ingress")),
        tuple(d.get("nodes", ())),
        ServiceRef(svc["name"], svc["port"], svc["address"]) if svc else None,
        d.get("snat"),
        int(d.get("seq", 0)),
    )
