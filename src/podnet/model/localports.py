"""The `podnet.io/localhost-ports` pod annotation: container ports bound to 127.0.0.1 only.

    metadata:
      annotations:
        podnet.io/localhost-ports: "9000, metrics, 5353/UDP"

A comma-separated list of references to the pod's declared containerPorts: a port number with
an optional `/TCP|/UDP|/SCTP` (default TCP), or a port's name. Such a port is served on
127.0.0.1 inside the pod's namespace, so the pod's other containers reach it over localhost
(the container-to-container path) and nobody else reaches it at all, whatever the policies
say: the analyzer answers "denied" for it and the workload stand-in refuses it on the pod IP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ANNOTATION = "podnet.io/localhost-ports"
PROTOCOLS = ("TCP", "UDP", "SCTP")


def localhost_ports(
    annotations: Mapping[str, str], declared: Iterable[tuple[str | None, int, str]]
) -> tuple[frozenset[tuple[int, str]], tuple[str, ...]]:
    """((port, protocol) bound to localhost, references that name no declared port)."""
    text = annotations.get(ANNOTATION, "")
    ports = {(port, proto) for _, port, proto in declared}
    by_name = {name: (port, proto) for name, port, proto in declared if name}
    chosen: set[tuple[int, str]] = set()
    unknown: list[str] = []
    for ref in (r.strip() for r in text.split(",")):
        if not ref:
            continue
        key = _resolve(ref, by_name)
        if key is None or key not in ports:
            unknown.append(ref)
            continue
        chosen.add(key)
    return frozenset(chosen), tuple(unknown)


def _resolve(ref: str, by_name: dict[str, tuple[int, str]]) -> tuple[int, str] | None:
    number, slash, protocol = ref.partition("/")
    protocol = protocol.strip().upper() or "TCP"
    if protocol not in PROTOCOLS:
        return None
    if number.strip().isdigit():
        return (int(number), protocol)
    return None if slash else by_name.get(ref)
