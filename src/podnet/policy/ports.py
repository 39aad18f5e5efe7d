"""Ports: parsing `80/TCP,53/UDP`, and whether a policy port admits a packet's port."""

from __future__ import annotations

from dataclasses import dataclass

from podnet.model.errors import InputError, Problem
from podnet.model.networkpolicy import NetworkPolicyPort
from podnet.policy.endpoints import PodEndpoint

PROTOCOLS = ("TCP", "UDP", "SCTP")


@dataclass(frozen=True, slots=True, order=True)
class PortProto:
    port: int
    protocol: str

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol}"


def parse_ports(text: str) -> list[PortProto]:
    """`80/TCP,53/UDP,8080` (protocol defaults to TCP, as in the API); `80-82/TCP` ranges."""
    out: list[PortProto] = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        spec, _, proto = item.partition("/")
        proto = (proto or "TCP").upper()
        if proto not in PROTOCOLS:
            raise InputError(
                [Problem(None, "", "--ports", f"{item}: protocol must be one of TCP, UDP, SCTP")]
            )
        lo, _, hi = spec.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise InputError([Problem(None, "", "--ports", f"{item}: not a port number")]) from None
        if not (1 <= first <= last <= 65535):
            raise InputError([Problem(None, "", "--ports", f"{item}: ports must be 1..65535")])
        out += [PortProto(p, proto) for p in range(first, last + 1)]
    return sorted(set(out))


def port_admits(rule_port: NetworkPolicyPort, pp: PortProto, dst: PodEndpoint | None) -> bool:
    """Does one entry of a rule's `ports` admit traffic to `pp` at `dst` (None: outside)?"""
    if rule_port.protocol != pp.protocol:
        return False
    if rule_port.port is None:
        # "If this field is not provided, this matches all port names and numbers."
        return True
    if isinstance(rule_port.port, str):
        # A named port only exists on a pod; outside addresses have no container ports.
        return dst is not None and pp.port in dst.resolve(rule_port.port, pp.protocol)
    if rule_port.end_port is not None:
        # "endPort indicates that the range of ports from port to endPort if set, inclusive"
        return rule_port.port <= pp.port <= rule_port.end_port
    return rule_port.port == pp.port


def ports_admit(
    ports: tuple[NetworkPolicyPort, ...] | None, pp: PortProto, dst: PodEndpoint | None
) -> bool:
    # "If this field is empty or missing, this rule matches all ports (traffic not restricted
    # by port). If this field is present and contains at least one item, then this rule
    # allows traffic only if the traffic matches at least one port in the list."
    if not ports:
        return True
    return any(port_admits(p, pp, dst) for p in ports)
