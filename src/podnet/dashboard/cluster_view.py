"""What the dashboard shows of one cluster, read-only: one consistent read of its store
(state.snapshot.read_cluster), the analysis of every pod on its declared ports, and what
the page derives from it (map, matrix, explanations), each computed once per store revision
and only when asked for. The daemon's status files and the policy counters are read here
too; nothing is ever written."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podnet.daemon import supervisor
from podnet.policy.analysis import Analysis, analyze
from podnet.policy.engine import Engine
from podnet.render import kernel_names
from podnet.report import matrix_doc
from podnet.state.files import StateFiles
from podnet.state.snapshot import StoredCluster, read_cluster
from podnet.state.store import Store


def store_revision(sdir: Path) -> int:
    """The store's change counter (bumped by every apply, delete, label and sync write)."""
    with Store.open(sdir) as store:
        return store.revision()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class DaemonStatus:
    running: bool
    synced: int | None  # the store revision of the daemon's last sync
    ok: bool | None
    error: str | None
    ready: dict[str, bool] | None

    def to_json(self) -> dict[str, Any]:
        return {"running": self.running, "synced": self.synced, "ok": self.ok, "error": self.error}


def daemon_status(sdir: Path, check_pid: bool = True) -> DaemonStatus:
    """daemon.json and ready.json as the daemon last wrote them (docs/daemon.md)."""
    files = StateFiles(sdir)
    status = _read_json(files.status) or {}
    sync = status.get("sync") or {}
    running = supervisor.running_pid(sdir) is not None if check_pid else bool(status)
    ready = _read_json(files.ready) if running else None
    return DaemonStatus(
        running=running,
        synced=sync.get("revision"),
        ok=sync.get("ok"),
        error=status.get("error") or sync.get("error"),
        ready=ready if isinstance(ready, dict) else None,
    )


class ClusterView:
    """One revision of the cluster, as the engine sees it."""

    def __init__(
        self, cluster: str, stored: StoredCluster, nodes: dict[str, tuple[str, str]]
    ) -> None:
        self.cluster = cluster
        self.stored = stored
        self.revision = stored.revision
        self.nodes = nodes  # name -> (address, podCIDR), the store's node table
        self.engine = Engine(stored.cluster, stored.placement())
        pods = self.engine.pods
        self.analysis: Analysis = analyze(self.engine, pods, pods, [], [], None)
        self._graph: tuple[str, dict[str, Any], bytes] | None = None

    @classmethod
    def read(cls, cluster: str, sdir: Path) -> ClusterView:
        with Store.open(sdir) as store, store.snapshot():
            stored = read_cluster(store)
            nodes = store.nodes()
        return cls(cluster, stored, nodes)

    def graph(self, ready: dict[str, bool] | None) -> dict[str, Any]:
        """The map; computed again only when the revision or the readiness changed."""
        return self._graph_for(ready)[1]

    def graph_json(self, ready: dict[str, bool] | None) -> bytes:
        """The map as the page reads it (JSON, serialised once per revision and
        readiness: 1.2 MB at 1,000 pods, that every page and every reload would
        otherwise encode again)."""
        return self._graph_for(ready)[2]

    def _graph_for(self, ready: dict[str, bool] | None) -> tuple[str, dict[str, Any], bytes]:
        from podnet.dashboard.map_graph import graph

        key = json.dumps(ready, sort_keys=True)
        if self._graph is None or self._graph[0] != key:
            doc = graph(self.stored.cluster, self.analysis, self.nodes, ready)
            doc["revision"] = self.revision
            body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
            self._graph = (key, doc, body)
        return self._graph

    @functools.cached_property
    def matrix(self) -> dict[str, Any]:
        doc = matrix_doc.document(self.analysis, explain=False, title=self.cluster)
        doc["revision"] = self.revision
        return doc

    @functools.cached_property
    def _groups(self) -> tuple[list[matrix_doc.Group], list[matrix_doc.Group]]:
        return matrix_doc.groups(self.analysis)

    def explain(self, k: int, r: int, c: int) -> list[dict[str, Any]]:
        """`explain` of the matrix cell (port k, row group r, column group c)."""
        rows, cols = self._groups
        if not (0 <= k < len(self.analysis.ports) and 0 <= r < len(rows) and 0 <= c < len(cols)):
            raise IndexError("no such cell")
        code = self.matrix["ports"][k]["cells"][r][c]
        block = matrix_doc.Block.of(self.analysis, k)
        return [
            v.to_json()
            for _, _, v in matrix_doc.cell_verdicts(self.analysis, block, k, rows[r], cols[c], code)
        ]

    def policy_counts(self) -> dict[str, Any]:
        """{"counts": {policy: [accepted, dropped]} | None, "why": ...}: connections per
        policy as `get networkpolicies` shows them, from the nft counters of the node
        namespaces (read with `nft list`, root only)."""
        if os.geteuid() != 0:
            return {
                "counts": None,
                "why": "the counters live in the nodes' nftables tables: root reads them",
            }
        from podnet.datapath import netns
        from podnet.datapath.nft import read_counters
        from podnet.render.policy_counters import policy_counts

        node_ns = {n: kernel_names.node_netns(self.cluster, n) for n in self.nodes}
        if not set(node_ns.values()) & set(netns.listing(kernel_names.netns_prefix(self.cluster))):
            return {"counts": None, "why": "no node of the cluster runs: nothing counts"}
        counts = policy_counts(self.engine, read_counters(node_ns))
        return {"counts": {k: [a, d] for k, (a, d) in sorted(counts.items())}, "why": ""}
