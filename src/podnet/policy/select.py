"""SEL: which endpoints a question is about — `ns/pod`, `ns/*`, `*`, or an IP address / CIDR
(a peer outside the cluster); several separated by commas."""

from __future__ import annotations

import fnmatch
import ipaddress

from podnet.model.errors import InputError, Problem
from podnet.policy.addresses import AddressSet
from podnet.policy.endpoints import PodEndpoint
from podnet.policy.engine import External


def parse_selection(
    text: str, pods: list[PodEndpoint], flag: str
) -> tuple[list[PodEndpoint], list[External]]:
    chosen: dict[str, PodEndpoint] = {}
    outside: list[External] = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        if item[0].isdigit():
            try:
                net = ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise InputError(
                    [Problem(None, "", flag, f"{item!r} is not an IP address or CIDR")]
                ) from None
            if net.version != 4:
                raise InputError([Problem(None, "", flag, f"{item}: only IPv4 is modelled")])
            outside.append(External(str(net) if "/" in item else item, AddressSet.cidr(str(net))))
            continue
        pattern = item if "/" in item or item == "*" else None
        if pattern is None:
            raise InputError(
                [Problem(None, "", flag, f"{item!r}: expected ns/pod, ns/*, * or an IP/CIDR")]
            )
        hits = [p for p in pods if pattern == "*" or fnmatch.fnmatchcase(p.key, pattern)]
        if not hits and item != "*":
            raise InputError([Problem(None, "", flag, f"{item!r} matches no pod")])
        for p in hits:
            chosen[p.key] = p
    return sorted(chosen.values(), key=lambda p: p.key), outside
