"""What `podnet probe` expects, and how it judges what the packets did: pure.

The expectations come from the one policy engine (the vectorised matrix, which tests hold
equal to Engine.allowed): never a second evaluator. A probe is one source pod, one
destination pod and one declared container port of the destination; the workload stand-in
answers it with the line `NS/POD CONTAINER`, so a reply proves both that the packets passed
and that they reached the right pod.

The live snapshot is the cluster's stored objects (built by the daemon's reconciler) with
the placement the cluster really has (pod IPs and nodes as served): `live_placement`.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from podnet.model.cluster import Cluster
from podnet.model.errors import InputError, Problem
from podnet.policy.endpoints import PodEndpoint
from podnet.policy.engine import Engine
from podnet.policy.matrix import compute, declared_ports
from podnet.policy.ports import PortProto
from podnet.state.dns_identity import DNS_IDENTITY as DNS_IDENTITY  # probing's answer from DNS
from podnet.state.dns_identity import DNS_PORT, is_dns_pod
from podnet.state.ingress_identity import INGRESS_IDENTITY as INGRESS_IDENTITY  # nginx's answer
from podnet.state.ingress_identity import NGINX_PORTS, is_ingress_pod
from podnet.state.placement import Placement, pod_key

# What the packets did, after every retry. Only "reply" means the connection passed (a reply
# with another pod's identity is reported apart: the packets passed, to the wrong pod).
# "rejected": a policy chain refused it (ICMP admin-prohibited); "refused": it reached the
# destination and nothing listens there (a TCP reset, ICMP port-unreachable); "no-answer":
# silence, attempt after attempt. podnet rejects blocked traffic actively, so silence is
# never a verdict: it is reported as such and never counted as blocked.
Outcome = Literal["reply", "refused", "rejected", "no-answer", "error"]
# The verdict a result shows: what the packets did, in the user's words.
Verdict = Literal["passed", "blocked", "refused", "no answer", "wrong pod", "error"]
VERDICT: dict[str, Verdict] = {
    "reply": "passed",
    "rejected": "blocked",
    "refused": "refused",
    "no-answer": "no answer",
    "error": "error",
}
EXIT_MISMATCH = 1
EXIT_NO_ANSWER = 3
PROBED_PROTOCOLS = ("TCP", "UDP")  # the stand-in serves SCTP only where the kernel has it


@dataclass(frozen=True, slots=True)
class Choice:
    """One endpoint kube-proxy may pick for a probe through a Service: the pod, the port
    DNAT gives (the resolved targetPort), and the engine's verdict for that pod and port."""

    endpoint: str  # ns/pod
    target: int
    expected: bool
    identity: str  # the line the endpoint answers with
    listens: bool = True  # False: the pod does not serve the target port (a refusal)


@dataclass(frozen=True, slots=True)
class Probe:
    source: str  # ns/pod
    destination: str  # ns/pod, or svc/NS/NAME through a Service
    port: int
    protocol: str
    expected: bool  # the engine's answer
    identity: str  # the line the destination answers with: "ns/pod container"
    # A pod reaching itself on a port it binds to 127.0.0.1 (podnet.io/localhost-ports): the
    # probe goes to 127.0.0.1 inside the pod, the only way such a port is reached.
    loopback: bool = False
    # Another pod reaching a port the destination binds to 127.0.0.1: nothing listens on the
    # pod's address, so a refusal is the expected answer (a policy may reject it first).
    refusal_expected: bool = False
    # Through a Service (`probe --via service`): the address connected to (its ClusterIP)
    # and every endpoint kube-proxy may pick for this source. Empty `choices` with an
    # `address`: a Service port without ready endpoints, refused at once by the rules.
    address: str = ""
    choices: tuple[Choice, ...] = ()

    @property
    def via_service(self) -> bool:
        return bool(self.address)


@dataclass(frozen=True, slots=True)
class Observation:
    outcome: Outcome
    reply: str = ""  # the line received, without its newline
    detail: str = ""  # e.g. the errno of a failed connect
    seconds: float = 0.0
    attempts: int = 1  # a probe without an answer is tried again


@dataclass(frozen=True, slots=True)
class Result:
    probe: Probe
    seen: Observation

    @property
    def allowed(self) -> bool:
        return self.seen.outcome == "reply"

    @property
    def chosen(self) -> Choice | None:
        """Through a Service: the endpoint that answered (its identity line names it)."""
        if not self.allowed:
            return None
        return next((c for c in self.probe.choices if c.identity == self.seen.reply), None)

    @property
    def wrong_identity(self) -> bool:
        if self.probe.via_service:
            return self.allowed and self.chosen is None
        return self.allowed and self.seen.reply != self.probe.identity

    @property
    def expected(self) -> bool | None:
        """The engine's answer for what was probed. Through a Service it is the verdict for
        the endpoint kube-proxy chose; when no reply names it (a policy rejected the
        connection, and the ICMP error carries the ClusterIP, not the endpoint) and the
        endpoints' verdicts differ, None: it depended on the pick."""
        p = self.probe
        if not p.via_service:
            return p.expected
        if (c := self.chosen) is not None:
            return c.expected
        verdicts = {c.expected for c in p.choices}
        if not verdicts:
            return False  # no ready endpoint: refused, nothing passes
        return verdicts.pop() if len(verdicts) == 1 else None

    @property
    def verdict(self) -> Verdict:
        return "wrong pod" if self.wrong_identity else VERDICT[self.seen.outcome]

    @property
    def answered(self) -> bool:
        """False for silence: no verdict either way (neither agreement nor a mismatch)."""
        return self.seen.outcome != "no-answer"

    @property
    def ok(self) -> bool:
        """The packets did what the engine says. An allowed probe must pass; a blocked one
        must be rejected by a policy chain — a refusal means it went through the policy to
        a destination where nothing listens, which is a mismatch unless the port is bound to
        localhost (then nothing but the pod itself can reach it, whatever the policies say).
        An unanswered probe is not ok: it is inconclusive (`answered` is False)."""
        outcome, p = self.seen.outcome, self.probe
        if self.wrong_identity or outcome in ("no-answer", "error"):
            return False
        if p.via_service:
            return self._ok_through_service()
        if p.expected:
            return outcome == "reply"
        return outcome == "rejected" or (outcome == "refused" and p.refusal_expected)

    def _ok_through_service(self) -> bool:
        """A reply must come from an endpoint the engine lets the source reach on its
        target port. A rejection agrees when a policy blocks some endpoint kube-proxy may
        have picked (with every endpoint blocked, it is the only agreeing outcome). A
        refusal agrees without ready endpoints (the Service's reject rule) or when a
        pickable endpoint does not serve its target port."""
        outcome, choices = self.seen.outcome, self.probe.choices
        if outcome == "reply":
            c = self.chosen
            return c is not None and c.expected and c.listens
        if outcome == "rejected":
            return any(not c.expected for c in choices)
        if outcome == "refused":
            return not choices or any(not c.listens for c in choices)
        return False

    @property
    def mismatch(self) -> bool:
        """A definite disagreement with the engine (silence is not one)."""
        return self.answered and not self.ok

    def to_json(self) -> dict[str, object]:
        p = self.probe
        doc: dict[str, object] = {
            "from": p.source,
            "to": p.destination,
            "port": p.port,
            "protocol": p.protocol,
            "allowed": self.allowed,
            "expected": self.expected,
            "outcome": self.seen.outcome,
            "verdict": self.verdict,
        }
        if p.via_service:
            doc["address"] = p.address
            if (c := self.chosen) is not None:
                doc["endpoint"] = c.endpoint
                doc["targetPort"] = c.target
            doc["endpoints"] = [
                {"pod": c.endpoint, "targetPort": c.target, "expected": c.expected}
                for c in p.choices
            ]
        if p.loopback:
            doc["loopback"] = True
        if self.wrong_identity:
            doc["identity"] = self.seen.reply
            doc["expectedIdentity"] = p.identity
        if self.seen.detail:
            doc["detail"] = self.seen.detail
        if self.seen.attempts > 1:
            doc["attempts"] = self.seen.attempts
        return doc


@dataclass(frozen=True)
class ProbePlan:
    """The probes of one question, and what was asked but cannot be probed."""

    pods: list[str]  # every pod of the question, sorted
    ports: list[PortProto]
    probes: list[Probe]
    skipped: list[str]  # one line per reason


# --- the live snapshot -----------------------------------------------------------------


def live_placement(
    cluster: Cluster,
    nodes: Mapping[str, tuple[str, str]],
    pods: Mapping[tuple[str, str], tuple[str, str]],
) -> Placement:
    """The placement the cluster has: `nodes` {name: (ip, podCIDR)}, `pods` {(ns, name):
    (node, ip)} as served (a hostNetwork pod has its node's IP). A pod of the snapshot that
    is not served (a change being applied) is an error: its expectations would be guesses."""
    missing = sorted(f"{ns}/{n}" for ns, n in map(pod_key, cluster.pods) if (ns, n) not in pods)
    unknown = sorted({node for node, _ in pods.values() if node not in nodes})
    if missing or unknown:
        what = []
        if missing:
            what.append(f"pods not running yet: {', '.join(missing[:5])}")
        if unknown:
            what.append(f"nodes unknown: {', '.join(unknown)}")
        raise InputError(
            [
                Problem(
                    None,
                    "",
                    "",
                    "the stored objects and the running cluster differ ("
                    + "; ".join(what)
                    + "): a change is being applied, try again",
                )
            ]
        )
    keys = {pod_key(p) for p in cluster.pods}
    return Placement(
        node_cidr={n: ipaddress.IPv4Network(cidr) for n, (_, cidr) in nodes.items()},
        node_ip={n: ip for n, (ip, _) in nodes.items()},
        pod_node={k: v[0] for k, v in pods.items() if k in keys},
        pod_ip={k: v[1] for k, v in pods.items() if k in keys},
    )


# --- expectations ----------------------------------------------------------------------


def identity(dst: PodEndpoint, pp: PortProto) -> str:
    """The line the stand-in answers with on pp: the first container declaring it. A DNS
    pod's port 53 is the cluster DNS server's: a DNS response is its answer."""
    if pp.port == DNS_PORT and is_dns_pod(dst.namespace, dict(dst.labels), dst.host_network):
        return DNS_IDENTITY
    if (pp.port, pp.protocol) in NGINX_PORTS and is_ingress_pod(dst.namespace, dst.name):
        return INGRESS_IDENTITY
    for port in dst.ports:
        if port.port == pp.port and port.protocol == pp.protocol:
            return f"{dst.key} {port.container}"
    return f"{dst.key} ?"


def plan(
    engine: Engine,
    sources: list[PodEndpoint],
    destinations: list[PodEndpoint],
    ports: list[PortProto] | None,
) -> ProbePlan:
    """Every (source, destination, port) to probe, with the engine's verdict.

    Without `ports`, each destination on its own declared ports (as analyze). With them, only
    destinations that declare the port: nothing listens elsewhere, so a refusal there would
    say nothing about policy. A pod to itself is probed too, as the upstream e2e truth
    tables do (always allowed: it never leaves the pod's namespace), so 9 pods on 2 ports are
    162 probes. A self-probe goes to the pod's own IP, except on a port the pod binds to
    127.0.0.1 (podnet.io/localhost-ports): there it goes to 127.0.0.1 (`Probe.loopback`), the
    path its own containers take, while every other pod is expected blocked on that port.
    """
    asked = ports if ports is not None else declared_ports(destinations)
    probed = [pp for pp in asked if pp.protocol in PROBED_PROTOCOLS]
    skipped = [
        f"{pp}: {pp.protocol} is not probed (the stand-in serves TCP and UDP)"
        for pp in asked
        if pp.protocol not in PROBED_PROTOCOLS
    ]
    index = {p.key: i for i, p in enumerate(engine.pods)}
    src_idx = [index[p.key] for p in sources]
    dst_idx = [index[p.key] for p in destinations]
    matrix = compute(engine, probed, declared_only=True)
    probes: list[Probe] = []
    undeclared = 0
    for k, pp in enumerate(probed):
        cols = [j for j in dst_idx if matrix.relevant[k][j]]
        undeclared += len(dst_idx) - len(cols)
        if not cols:
            continue
        m = matrix.dense(k, np.array(cols, dtype=np.int64))
        for i in src_idx:
            for pos, j in enumerate(cols):
                dst = engine.pods[j]
                probes.append(
                    Probe(
                        engine.pods[i].key,
                        dst.key,
                        pp.port,
                        pp.protocol,
                        bool(m[i, pos]),
                        identity(dst, pp),
                        loopback=i == j and (pp.port, pp.protocol) in dst.localhost,
                        refusal_expected=i != j and (pp.port, pp.protocol) in dst.localhost,
                    )
                )
    if ports is not None and undeclared:
        skipped.append(
            f"{undeclared} destination/port combinations not probed: the destination does "
            "not declare the port, so nothing listens there"
        )
    probes.sort(key=lambda p: (p.source, p.destination, p.port, p.protocol))
    pods = sorted({p.key for p in (*sources, *destinations)})
    return ProbePlan(pods, probed, probes, skipped)


# --- judging ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    plan: ProbePlan
    results: list[Result]
    seconds: float = 0.0

    @property
    def mismatches(self) -> list[Result]:
        return [r for r in self.results if r.mismatch]

    @property
    def unanswered(self) -> list[Result]:
        return [r for r in self.results if not r.answered]

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.unanswered

    @property
    def exit_status(self) -> int:
        """0 every probe agrees with the engine; 1 some disagree; 3 none disagrees but some
        got no answer (no verdict: the truth table is incomplete, not wrong)."""
        if self.mismatches:
            return EXIT_MISMATCH
        return EXIT_NO_ANSWER if self.unanswered else 0

    def counts(self) -> dict[str, int]:
        c: Counter[str] = Counter()
        for r in self.results:
            c["probes"] += 1
            c["allowed"] += r.allowed
            c["expected"] += r.expected is True
            c["mismatches"] += r.mismatch
            c["wrong identity"] += r.wrong_identity
            c[r.verdict] += 1
            c["retried"] += r.seen.attempts > 1
        return dict(c)

    def to_json(self) -> dict[str, object]:
        """{"pods": [...], "results": [{"from","to","port","protocol","allowed","expected",
        "outcome", ...}]}: analyze's JSON (README.md) plus `expected` and what happened."""
        return {
            "pods": self.plan.pods,
            "results": [r.to_json() for r in self.results],
            "summary": {**self.counts(), "seconds": round(self.seconds, 3)},
            "skipped": self.plan.skipped,
        }


def judge(plan_: ProbePlan, seen: list[Observation], seconds: float = 0.0) -> Report:
    if len(seen) != len(plan_.probes):
        raise ValueError(f"{len(seen)} observations for {len(plan_.probes)} probes")
    return Report(plan_, [Result(p, o) for p, o in zip(plan_.probes, seen, strict=True)], seconds)
