"""The `podnet.io/localhost-ports` pod annotation: container ports bound to 127.0.0.1 only.

    metadata:
      annotations:
        podnet.io/localhost-ports: "9000, metrics, 5353/UDP"

A comma-separated list of references to the pod's declared containerPorts: a port number with
an optional `/TCP|/UDP|/SCTP` (default TCP), or a port's name. Such a port is served on
127.0.0.1 inside the pod's namespace, so the pod's other containers reach it over localhost
(the container-to-container path) and nobody else reaches it at all: a connection to the pod
IP on that port is refused, like a real process bound to localhost. A reference to a port
the pod does not declare is reported and ignored.
"""

from __future__ import annotations

from podnet.daemon.runtime import Pod

ANNOTATION = "podnet.io/localhost-ports"
PROTOCOLS = ("TCP", "UDP", "SCTP")


def localhost_ports(pod: Pod) -> tuple[frozenset[tuple[int, str]], tuple[str, ...]]:
    """((port, protocol) bound to localhost, problems as lines naming the pod)."""
    text = pod.annotations.get(ANNOTATION, "")
    declared = {(p.port, p.protocol): p for c in pod.containers for p in c.ports}
    by_name = {p.name: (p.port, p.protocol) for p in declared.values() if p.name}
    chosen: set[tuple[int, str]] = set()
    problems: list[str] = []
    for ref in (r.strip() for r in text.split(",")):
        if not ref:
            continue
        key = _resolve(ref, by_name)
        if key is None or key not in declared:
            problems.append(
                f"pod {pod.key}: annotation {ANNOTATION}: {ref!r} is not a declared "
                "containerPort (PORT[/PROTOCOL] or a port name); ignored"
            )
            continue
        chosen.add(key)
    return frozenset(chosen), tuple(problems)


def _resolve(ref: str, by_name: dict[str, tuple[int, str]]) -> tuple[int, str] | None:
    number, _, protocol = ref.partition("/")
    protocol = protocol.strip().upper() or "TCP"
    if protocol not in PROTOCOLS:
        return None
    if number.strip().isdigit():
        return (int(number), protocol)
    return by_name.get(ref) if not _ else None
