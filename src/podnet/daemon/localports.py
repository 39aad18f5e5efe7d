"""The `podnet.io/localhost-ports` annotation of a runtime pod (see podnet.model.localports)."""

from __future__ import annotations

from podnet.daemon.runtime import Pod
from podnet.model import localports

ANNOTATION = localports.ANNOTATION


def localhost_ports(pod: Pod) -> tuple[frozenset[tuple[int, str]], tuple[str, ...]]:
    """((port, protocol) bound to localhost, problems as lines naming the pod)."""
    declared = [(p.name, p.port, p.protocol) for c in pod.containers for p in c.ports]
    chosen, unknown = localports.localhost_ports(pod.annotations, declared)
    problems = tuple(
        f"pod {pod.key}: annotation {ANNOTATION}: {ref!r} is not a declared "
        "containerPort (PORT[/PROTOCOL] or a port name); ignored"
        for ref in unknown
    )
    return chosen, problems
