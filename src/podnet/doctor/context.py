"""What every check reads, computed once per doctor run: the store's desired state (the
reconciler's), runtime.json, the kernel's namespaces."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from podnet.controller.reconciler import Desired, Reconciler
from podnet.datapath import netns
from podnet.render import kernel_names
from podnet.render import runtime as rt
from podnet.render.policy_nft import NodeRender, render_nodes
from podnet.state.files import StateFiles
from podnet.state.store import Store


@dataclass
class Context:
    cluster: str
    sdir: Path
    checked: dict[str, int] = field(default_factory=dict)  # what was looked at, how many

    @cached_property
    def files(self) -> StateFiles:
        return StateFiles(self.sdir)

    @cached_property
    def wants_daemon(self) -> bool:
        """Brought up with its daemon (not `up --no-daemon`), and built."""
        with Store.open(self.sdir) as store:
            return bool(store.get_meta("daemon", True)) and store.get_meta("phase") == "Running"

    @cached_property
    def readiness(self) -> dict[str, bool]:
        """The kubelet's word on each pod, as the daemon last wrote it: the EndpointSlices
        (and so the Service rules) the reconciler derives depend on it."""
        for path in (self.files.readiness, self.files.ready):
            try:
                return {str(k): bool(v) for k, v in json.loads(path.read_text()).items()}
            except (FileNotFoundError, ValueError, AttributeError):
                continue
        return {}

    @cached_property
    def desired(self) -> Desired:
        ready = self.readiness
        reconciler = Reconciler(
            self.sdir, self.cluster, readiness=lambda ns, pod: ready.get(f"{ns}/{pod}", False)
        )
        return reconciler.desired()

    @cached_property
    def rendered(self) -> dict[str, NodeRender]:
        """Each node's policy table as the reconciler renders it, and its pods' chains."""
        return render_nodes(self.desired.engine, self.cluster)

    @cached_property
    def runtime(self) -> rt.Runtime | None:
        try:
            return rt.load(self.sdir)
        except rt.RuntimeFileError:
            return None

    @cached_property
    def existing(self) -> set[str]:
        return set(netns.listing(kernel_names.netns_prefix(self.cluster)))

    def who(self, name: str) -> str:
        """A namespace in Kubernetes terms: "pod shop/db", "node node-1", "the fabric"."""
        for ns in self.desired.plan.namespaces:
            if ns.name == name:
                if ns.role in ("pod", "node"):
                    return f"{ns.role} {ns.owner}"
                return f"the {ns.role} network"
        return f"namespace {name}"

    def fix_command(self) -> str:
        return f"podnet doctor --fix --cluster {self.cluster}"

    def note(self, what: str, count: int) -> None:
        self.checked[what] = self.checked.get(what, 0) + count

    def status(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.files.status.read_text()))
        except (FileNotFoundError, ValueError):
            return {}
