"""The flow collector: conntrack NEW events and the nflog messages of podnet's policy rules,
read from every node namespace of one cluster, joined (flow_join), attributed (attribution)
and appended to the history (history). One thread, one selector over 2 sockets per node.

The cluster's picture (pods, Services, policies) is read again when the daemon synced a new
revision or runtime.json changed (checked every REFRESH seconds): records are attributed
with the objects of their time. A node namespace that was re-created (the reconciler
repairs a deleted one) gets new sockets.
"""

from __future__ import annotations

import dataclasses
import logging
import selectors
import time
from dataclasses import dataclass
from pathlib import Path

from podnet.datapath.netns import Namespaces
from podnet.flowlog import nl_sockets
from podnet.flowlog.attribution import Directory, directory
from podnet.flowlog.flow_join import Joiner
from podnet.flowlog.flow_record import Lost, Record
from podnet.flowlog.history import Writer
from podnet.render import flow_log
from podnet.render import runtime as rt
from podnet.state.files import StateFiles
from podnet.state.store import DB_NAME, Store

REFRESH = 1.0  # seconds between looks at the store's revision and runtime.json
TICK = 0.05  # the longest a due record waits for the selector to wake up
# While a pending reject names policies the picture lacks, the picture is read again at most
# this often (a sync writes the store before the kernel; a reject whose policies never
# appear would otherwise cost a read of runtime.json and the store every step).
STALE_LOOK = 0.2

log = logging.getLogger("podnet.flowlog")


def load_directory(root: Path) -> tuple[Directory, rt.Runtime, object]:
    """The lookups of the cluster as it runs: the stored objects, the placement of
    runtime.json (as `probe` builds its engine), and a stamp that says when to read again."""
    from podnet.policy.engine import Engine
    from podnet.policy.expectations import live_placement
    from podnet.state.placement import pod_key
    from podnet.state.snapshot import snapshot

    runtime = rt.load(root)
    with Store.open(root) as store:
        cluster = snapshot(store)
        nodes = store.nodes()
        stamp = (store.get_meta("synced_revision"), runtime.digest)
    pods = {(p.namespace, p.name): (p.node, p.ip) for p in runtime.pods}
    # Pods stored but not served yet (a change being applied) wait for the next picture.
    served = tuple(p for p in cluster.pods if pod_key(p) in pods)
    cluster = dataclasses.replace(cluster, pods=served)
    engine = Engine(cluster, live_placement(cluster, nodes, pods))
    node_ips = {n.name: n.ip for n in runtime.nodes}
    return directory(engine, node_ips, runtime.internet_ip), runtime, stamp


@dataclass
class _Reported:
    overruns: int = 0
    gap: int = 0


class Collector:
    def __init__(self, root: Path, group: int = flow_log.GROUP) -> None:
        self.root = root
        self.group = group
        self.spaces = Namespaces()
        self.selector = selectors.DefaultSelector()
        self.nodes: dict[str, nl_sockets.NodeSockets] = {}
        self.idents: dict[str, tuple[int, int]] = {}
        self.reported: dict[tuple[str, str], _Reported] = {}
        self.joiner = Joiner()
        self.writer = Writer(root)
        self.directory = Directory()
        self.stamp: object = None
        self.files_stamp: tuple[object, ...] = ()
        self.wanted: dict[str, str] = {}  # node -> its namespace
        self.next_refresh = 0.0
        self.next_stale_look = 0.0
        self.flows = 0

    # ---- the cluster's picture and the sockets ------------------------------------------
    def _files_stamp(self) -> tuple[object, ...]:
        """What changes when a sync wrote the store or runtime.json (stat calls only)."""
        out: list[object] = []
        for path in (
            StateFiles(self.root).runtime,
            self.root / DB_NAME,
            self.root / f"{DB_NAME}-wal",
        ):
            try:
                st = path.stat()
                out.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    def refresh(self) -> None:
        """Read the cluster's picture again if a sync changed it (an idle cluster costs
        three stat calls a second), and check each node's sockets."""
        files = self._files_stamp()
        if files != self.files_stamp:
            try:
                runtime = rt.load(self.root)
            except rt.RuntimeFileError as e:
                log.warning("no runtime.json yet: %s", e)
                return
            with Store.open(self.root) as store:
                stamp = (store.get_meta("synced_revision"), runtime.digest)
            if stamp != self.stamp:
                try:
                    self.directory, runtime, self.stamp = load_directory(self.root)
                except Exception as e:  # a change being applied: keep the last picture
                    log.info("cluster picture not refreshed: %s", e)
                    return
            self.files_stamp = files
            self.wanted = {n.name: n.netns for n in runtime.nodes}
        self._sockets(self.wanted)

    def _sockets(self, wanted: dict[str, str]) -> None:
        for node in list(self.nodes):
            ident = self.spaces.refresh(self.nodes[node].netns)
            if node not in wanted or ident != self.idents.get(node):
                self._close(node)
        for node, netns in wanted.items():
            if node in self.nodes:
                continue
            ident = self.spaces.refresh(netns)
            if ident is None:
                continue
            try:
                ns = nl_sockets.open_node(self.spaces, node, netns, self.group)
            except OSError as e:
                log.warning("node %s: no flow sockets: %s", node, e)
                continue
            self.nodes[node], self.idents[node] = ns, ident
            self.selector.register(ns.ct, selectors.EVENT_READ, (node, "conntrack"))
            self.selector.register(ns.log, selectors.EVENT_READ, (node, "nflog"))
            log.info("node %s: reading conntrack and nflog group %d", node, self.group)

    def _close(self, node: str) -> None:
        ns = self.nodes.pop(node)
        self.idents.pop(node, None)
        self.selector.unregister(ns.ct)
        self.selector.unregister(ns.log)
        ns.close()

    # ---- the loop ------------------------------------------------------------------------
    def step(self) -> int:
        """Read what is waiting, write what is due; the records written. With nothing
        pending it sleeps until an event or the next refresh, else TICK at most."""
        now = time.monotonic()
        if now >= self.next_refresh:
            self.refresh()
            self.next_refresh = now + REFRESH
        timeout = TICK if len(self.joiner) else max(0.0, self.next_refresh - now)
        # Every event the kernel queued before `start` is read below (each ready socket is
        # drained, the others were empty), so a group quiet since `start - window` is
        # complete, however long this step's reading takes (events are stamped when read).
        start = time.time()
        for key, _ in self.selector.select(timeout):
            self._read(*key.data)
        now = time.monotonic()
        if now >= self.next_stale_look and self.joiner.stale(self.directory):
            self.next_stale_look = now + STALE_LOOK  # a policy change not read yet: read it
            self.files_stamp = ()
            self.refresh()
        out: list[Record] = [*self._losses(), *self.joiner.due(start, self.directory)]
        self.writer.write(out)
        self.flows += len(out)
        return len(out)

    def _losses(self) -> list[Lost]:
        """A record for each socket that lost events since the last report."""
        out = []
        for node, ns in self.nodes.items():
            for source, lost in (("conntrack", ns.ct_lost), ("nflog", ns.log_lost)):
                seen = self.reported.setdefault((node, source), _Reported())
                overruns, gap = lost.overruns - seen.overruns, lost.gap - seen.gap
                if overruns or gap:
                    out.append(Lost(time.time(), node, source, overruns, gap))  # type: ignore[arg-type]
                    log.warning(
                        "node %s: %s lost events (%d overruns, %d messages)",
                        node,
                        source,
                        overruns,
                        gap,
                    )
                    seen.overruns, seen.gap = lost.overruns, lost.gap
        return out

    def _read(self, node: str, source: str) -> None:
        ns = self.nodes[node]
        t = time.time()
        if source == "conntrack":
            for ev in nl_sockets.ct_events(ns):
                self.joiner.conntrack(node, ev, t)
        else:
            for pkt in nl_sockets.log_packets(ns):
                self.joiner.logged(node, pkt, t)

    def close(self) -> None:
        """Read what the sockets still hold, write every pending record, close."""
        for node in list(self.nodes):
            self._read(node, "conntrack")
            self._read(node, "nflog")
        self.writer.write([*self._losses(), *self.joiner.flush(self.directory)])
        for node in list(self.nodes):
            self._close(node)
        self.writer.close()
        self.spaces.close()
