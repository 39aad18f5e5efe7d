"""The ingress controller's control loop, minus the process: it watches Ingress,
IngressClass, Service, EndpointSlice and Secret objects in the store and computes the
desired nginx configuration (docs/ingress.md). The daemon's `nginx_child` applies it.

A watch here is a read of those five kinds at a store revision the controller has not seen
(after each sync of the daemon, which is when EndpointSlices change). Objects whose
resource version it already parsed are not validated again (1,000 Ingresses over 1,000
Services would otherwise be parsed anew on every endpoint change), and neither are those
the daemon's reconciler parsed at that version in the sync just before (`parsed`, its
cache: an update of 1,000 Ingresses was parsed by the sync and again here).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from podnet.model.kinds import MODELS
from podnet.render import kernel_names
from podnet.render.ingress_routes import IngressPlan, build
from podnet.render.nginx_conf import render
from podnet.state.ingress_classes import served
from podnet.state.ingress_identity import NAMESPACE, pod_name
from podnet.state.store import Store

if TYPE_CHECKING:
    from podnet.state.snapshot import ParsedCache

WATCHED = ("Ingress", "IngressClass", "Service", "EndpointSlice", "Secret")


@dataclass(frozen=True)
class Desired:
    """What nginx should serve: the configuration text, the certificates it names, the
    problems found (reported, never fatal), and where nginx runs."""

    conf: str
    certificates: dict[str, tuple[bytes, bytes]]
    problems: tuple[str, ...]
    netns: str
    pod: str
    served: int  # how many Ingresses
    revision: int = 0
    plan: IngressPlan | None = field(default=None, compare=False)
    # Where the controller's time went, wall and this thread's CPU, in seconds:
    # {"read", "read_cpu", "plan", "plan_cpu", "render", "render_cpu"} (status.json).
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def digest(self) -> str:
        h = hashlib.sha256(self.conf.encode())
        for name in sorted(self.certificates):
            h.update(name.encode())
        return h.hexdigest()


class IngressController:
    def __init__(self, root: Path, cluster: str, parsed: ParsedCache | None = None) -> None:
        self.root = root
        self.cluster = cluster
        self.conf_root = str(root / "ingress")
        self._cache: dict[tuple[str, str, str], tuple[int, BaseModel]] = {}
        # The reconciler's objects by resource version (read only here: it writes them on
        # its own thread, never during our read, which runs after its sync).
        self._parsed: ParsedCache = parsed if parsed is not None else {}
        self._seen_revision: int | None = None
        self.last: Desired | None = None

    def installed(self, store: Store) -> bool:
        return store.get("Pod", NAMESPACE, pod_name()) is not None

    def desired(self) -> Desired | None:
        """The configuration at the store's revision; None when the cluster has no
        controller pod (nothing to run). Same revision as last time: the last answer."""
        clock = _Clock()
        with Store.open(self.root) as store, store.snapshot():
            revision = store.revision()
            if revision == self._seen_revision and self.last is not None:
                return self.last
            if not self.installed(store):
                self._seen_revision, self.last = revision, None
                return None
            objects = {kind: self._read(store, kind) for kind in WATCHED}
        clock.lap("read")
        ours = served(objects["Ingress"], objects["IngressClass"])  # type: ignore[arg-type]
        plan = build(ours, objects["Service"], objects["EndpointSlice"], objects["Secret"])  # type: ignore[arg-type]
        clock.lap("plan")
        conf = render(plan, self.conf_root)
        clock.lap("render")
        self._seen_revision = revision
        self.last = Desired(
            conf,
            plan.certificates,
            plan.problems,
            kernel_names.pod_netns(self.cluster, NAMESPACE, pod_name()),
            pod_name(),
            len(ours),
            revision,
            plan,
            clock.laps,
        )
        return self.last

    def _read(self, store: Store, kind: str) -> list[Any]:
        """Every object of a kind, validated (an object the store holds but the model now
        refuses is left out: the store's writers validated it, so that is a newer body)."""
        model = MODELS[kind]
        out = []
        for ns, name, rv in store.versions(kind):
            key = (kind, ns, name)
            hit = self._cache.get(key)
            if hit is None or hit[0] != rv:
                theirs = self._parsed.get(key)
                if theirs is not None and theirs[0] == rv and theirs[1].kind == kind:
                    hit = self._cache[key] = (rv, theirs[1].obj)
            if hit is None or hit[0] != rv:
                row = store.get(kind, ns or None, name)
                if row is None:
                    continue
                try:
                    hit = (rv, model.model_validate({**row.body, "kind": kind}))
                except ValidationError:
                    continue
                self._cache[key] = hit
            out.append(hit[1])
        return sorted(out, key=lambda o: (o.metadata.namespace or "", o.metadata.name))


class _Clock:
    """Laps of wall time and of the calling thread's CPU time (the controller runs in the
    daemon's worker thread, beside the event loop: process CPU would mix the two)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._wall, self._cpu = time.monotonic(), time.thread_time()

    def lap(self, name: str) -> None:
        wall, cpu = time.monotonic(), time.thread_time()
        self.laps[name] = round(wall - self._wall, 4)
        self.laps[f"{name}_cpu"] = round(cpu - self._cpu, 4)
        self._wall, self._cpu = wall, cpu
