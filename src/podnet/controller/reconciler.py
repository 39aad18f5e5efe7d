"""The reconciler: make the kernel match the store. The one sync path from store to kernel:
`up` stores the cluster and runs the first sync (full) in its own process; the daemon runs
every later one (after `apply | delete | label`, and every resync period); without a daemon
the CLI runs it itself.

One sync:

1. snapshot: the revision, every stored object, the meta and the allocations, read in one
   read transaction (a change committed meanwhile is wholly in the next sync, never half in
   this one) -> `model.cluster.build` (the same validation as `up`);
   `place(held=store.held())`: pods keep their addresses, new pods get one, pods gone
   release theirs. Render the topology plan, runtime.json and every node's nft ruleset.
   Anything wrong here changes nothing: the store is not written.
2. removals first: namespaces of pods that are gone, and their node-side veths, routes and
   neighbours (the node namespaces applied without the *new* pods).
3. new namespaces are created, empty: no link exists in them yet.
4. nft: one `nft -f` transaction per node whose ruleset changed (all of them in a full
   sync). A new pod's rules are in place here, before its link exists, so the first packet
   a pod can send or receive already meets its rules.
5. additions: the new pods' veths from their node, their addresses and routes.
6. runtime.json rewritten when it changed; the daemon then reloads its listeners. dns.json
   (render.dns_file: the cluster's DNS records and the DNS pods) likewise; the daemon then
   tells the DNS server (docs/dns.md).
7. only after all of that succeeded, one store transaction records the new allocations and
   releases (what the kernel now holds) and `synced_revision`, the revision the sync read.
   A failed sync leaves the store as it was (IPAM included) and the next sync is full.

A full sync (the first one, the one after any failure, and a periodic one that found
drift) compares with the kernel itself: `datapath.wiring.apply_plan` of the whole plan (which reads the
live state and repairs what differs, e.g. a deleted pod namespace) and every node's ruleset
applied whatever the last sync applied (a deleted or flushed table comes back). An
incremental sync applies only the namespaces whose plan changed and the nodes whose ruleset
changed.

Between syncs the daemon's reconciler holds a `datapath.drift.DriftWatch`, armed after each
successful sync with what the kernel then holds. The resync period asks it (namespace
inodes, netlink events in the fabric and node namespaces, each node's nft generation:
cheap whatever the cluster's size); only drift, a failure, or a store revision that moved
makes the periodic sync do work, and drift makes it full.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podnet.controller.endpoint_tracker import (
    Derived,
    EndpointTracker,
    Readiness,
    stored_readiness,
)
from podnet.controller.policy_sync import SyncReport, sync_policies
from podnet.datapath import conntrack, netns, nft
from podnet.datapath.drift import DriftWatch
from podnet.datapath.wiring import apply_netns, apply_plan
from podnet.model.cluster import Cluster
from podnet.policy.engine import Engine
from podnet.render import dns_file, kernel_names, service_stale
from podnet.render import runtime as rt
from podnet.render.dns_records import ZoneRecords
from podnet.render.dns_zone import fqdn
from podnet.render.load_balancers import shapes_topology
from podnet.render.netplan import NetnsPlan, NetPlan
from podnet.render.policy_nft import PodRules, render_nodes
from podnet.render.policy_scope import affected
from podnet.render.service_nft import RulesDelta, ServiceRules, merge
from podnet.render.service_nft import render_changes as render_services
from podnet.render.service_ports import PortCache, ServicePort, service_ports
from podnet.render.topology import render
from podnet.state.addons import DNS_NAMESPACE
from podnet.state.allocations import Allocations
from podnet.state.cluster_patch import find, namespace_pods
from podnet.state.files import StateFiles, write_atomic
from podnet.state.follow import Followed, follow
from podnet.state.network import NetworkConfig
from podnet.state.placement import Placement
from podnet.state.snapshot import ParsedCache
from podnet.state.store import ObjectKey, Store

Progress = Callable[[int, int], None]


@dataclass
class Desired:
    revision: int
    cluster: Cluster
    placement: Placement
    plan: NetPlan
    runtime: rt.Runtime
    engine: Engine
    node_netns: dict[str, str]
    allocations: Allocations
    mode: str = ""
    net: NetworkConfig | None = None
    derived: Derived | None = None
    service_ports: tuple[ServicePort, ...] = ()
    services: dict[str, ServiceRules] = field(default_factory=dict)  # node -> its Service rules
    # node -> how `services` differ from the last Desired's (the changed Service ports):
    # the nft step applies only those (service_nft.difference). Empty: compare the tables.
    service_deltas: dict[str, RulesDelta] = field(default_factory=dict)
    followed: Followed | None = None  # what the next sync patches (state.follow)
    # The Services (namespace, name) whose object or slices may differ from the last
    # Desired's; None: unknown (a full sync), any may. The DNS records follow them.
    services_changed: frozenset[tuple[str, str]] | None = None


def no_pod_ready(namespace: str, pod: str) -> bool:
    """Readiness before anything serves (`up`'s first sync, a CLI sync without daemon)."""
    return False


@dataclass
class SyncResult:
    revision: int
    full: bool
    ok: bool
    seconds: float
    error: str | None = None
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    nft: SyncReport | None = None
    runtime_changed: bool = False
    dns_changed: bool = False  # dns.json rewritten: the DNS server must reload
    dns_servers_changed: bool = False  # ... and the DNS pods changed (port 53 changes hands)
    conntrack: int = 0  # stale UDP conntrack entries deleted (render/service_stale)
    notes: list[str] = field(default_factory=list)  # problems that did not fail the sync
    periodic: bool = False  # the resync period asked for it
    drift: str | None = None  # what the drift watch saw (a periodic sync is then full)
    checked: bool = False  # a periodic check that found nothing to do

    def summary(self) -> str:
        if self.checked:
            return f"periodic check of revision {self.revision} in {self.seconds:.3f}s: no drift"
        if not self.ok:
            return (
                f"sync of revision {self.revision} FAILED after {self.seconds:.3f}s: {self.error}"
            )
        what = []
        if self.added:
            what.append(f"+{len(self.added)} netns")
        if self.removed:
            what.append(f"-{len(self.removed)} netns")
        if self.changed:
            what.append(f"~{len(self.changed)} netns")
        if self.nft:
            what.append(self.nft.summary())
        if self.conntrack:
            what.append(f"{self.conntrack} stale UDP conntrack entries deleted")
        if self.runtime_changed:
            what.append("runtime.json rewritten")
        if self.dns_changed:
            what.append("dns.json rewritten")
        what += self.notes
        kind = ("periodic full" if self.periodic else "full") if self.full else "incremental"
        if self.drift:
            kind += f" (drift: {self.drift})"
        return f"{kind} sync of revision {self.revision} in {self.seconds:.3f}s: " + (
            "; ".join(what) or "nothing changed"
        )

    def status(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "ok": self.ok,
            "full": self.full,
            "error": self.error,
            "seconds": round(self.seconds, 4),
            "time": time.time(),
        }


class Reconciler:
    """Keeps what the last successful sync applied, to make the next one incremental.
    With `watch_drift` (the daemon's), a periodic sync is full only when the drift watch saw
    drift (or the last sync failed); without it (the CLI's, tests), every periodic sync is."""

    def __init__(
        self,
        state_dir: Path,
        cluster: str,
        runner: nft.NftRunner | None = None,
        watch_drift: bool = False,
        parsed: ParsedCache | None = None,
        readiness: Readiness = no_pod_ready,
    ) -> None:
        self.root = state_dir
        self.readiness = readiness  # the kubelet's word on each pod (the daemon's stand-in)
        self.cluster = cluster
        self.runner = runner or nft.NetnsRunner()
        self.watch = (
            DriftWatch(kernel_names.netns_prefix(cluster), kernel_names.fabric_netns(cluster))
            if watch_drift
            else None
        )
        self.revision = -1  # of the last successful sync
        self._drift: str | None = None  # what the last periodic check saw
        self.full_next = True
        self.plan: NetPlan | None = None
        self.rulesets: dict[str, Any] = {}  # node -> the ruleset the last sync applied
        self.pod_rules: dict[str, dict[str, PodRules]] = {}  # node -> its pods' part of it
        self.runtime: rt.Runtime | None = None
        self.dns: dns_file.DnsFile | None = None
        self._dns_inputs: tuple[Any, ...] = ()  # what self.dns was built from
        self.zone = ZoneRecords()  # its records, per Service (render.dns_records)
        self._dns_pods_from: tuple[Any, ...] = ()  # the pods and addresses they are of
        self.parsed: ParsedCache = parsed or {}  # objects validated, by resource version
        self.ports = PortCache()  # each Service's ports, while its objects are the same
        # The desired state the kernel holds (the last successful sync's): the next one
        # reuses its plan and runtime when the topology did not change, and narrows the
        # policy render to the nodes the change can touch (render/policy_scope).
        self.last: Desired | None = None
        self._since: Desired | None = None  # the `last` of the sync under way
        # The last successful sync's snapshot and placement, as of the revision it synced,
        # and its endpoints per Service: the next sync patches them (state.follow).
        self.followed: Followed | None = None
        self.endpoints = EndpointTracker()

    # --- the desired state ------------------------------------------------------------
    def desired(self, last: Desired | None = None) -> Desired:
        """The next state, from one consistent read of the store; writes nothing. With
        `last` (what the kernel holds), the snapshot, placement and endpoints are patched
        from what changed since (state.follow, controller.endpoint_tracker), and its plan
        and runtime are kept when only labels or policies changed."""
        with Store.open(self.root) as store:
            view = follow(store, self.parsed, self.followed if last is not None else None)
        revision, net, mode, placement = view.revision, view.net, view.mode, view.placement
        cluster, derived = self.endpoints.track(
            view.cluster, placement, self.readiness, None if view.whole else view.pods, view.keys
        )
        # The Services that may differ from `last`'s (None: unknown, any may).
        changed = (
            None
            if last is None or view.keys is None
            else _changed_services(last.cluster, cluster, view.keys, derived)
        )
        if last is not None and _same_topology(last, cluster, placement, mode, net, changed):
            plan, runtime = last.plan, last.runtime  # labels, policies, most Services
        else:
            plan = render(cluster, placement, self.cluster, mode, net)
            runtime = rt.build(cluster, placement, self.cluster, mode, net)
        node_netns = {
            n.metadata.name: kernel_names.node_netns(self.cluster, n.metadata.name)
            for n in cluster.nodes
        }
        engine = Engine(
            cluster,
            placement,
            like=last.engine if last is not None else None,
            changed=None if last is None or view.whole else view.pods,
        )
        ports = service_ports(cluster.services, cluster.endpoint_slices, self.ports)
        # The change tracker's delta, when it starts from what the kernel holds: only the
        # changed Service ports are rendered, and only they are written (kube-proxy's
        # partial sync); otherwise every port is rendered and the tables compared.
        delta = self.ports.delta
        follows = last is not None and delta is not None and delta.base is last.service_ports
        services, deltas = render_services(
            ports,
            node_netns,
            net.cluster_cidr,
            net.service_cidr,
            like=last.services if follows and last is not None else None,
            delta=delta if follows else None,
        )
        return Desired(
            revision,
            cluster,
            placement,
            plan,
            runtime,
            engine,
            node_netns,
            view.allocations,
            mode,
            net,
            derived,
            ports,
            services,
            deltas,
            dataclasses.replace(view, cluster=cluster),
            None if changed is None else frozenset(changed),
        )

    def assume_synced(self) -> bool:
        """Adopt the current store as what the kernel holds (after `up`, whose revision
        the store records as synced): the next sync can be incremental. False, and nothing
        adopted, when the store's allocations are not the placement's (then the kernel
        cannot be known to match: sync in full). The readiness is the stored slices' (what
        the kernel's Service rules were rendered from); the stand-in's, which has moved on
        since, is followed by the next, incremental, sync."""
        with Store.open(self.root) as store:
            as_stored = stored_readiness(store)
        live, self.readiness = self.readiness, as_stored
        try:
            d = self.desired()
        finally:
            self.readiness = live
        if d.allocations or d.derived:
            return False
        self.plan = d.plan
        self.runtime = d.runtime
        rendered = render_nodes(d.engine, self.cluster)
        self.rulesets = {n: merge(r.table, d.services.get(n)) for n, r in rendered.items()}
        self.pod_rules = {n: r.pods for n, r in rendered.items()}
        self.dns = self.dns_records(d, full=True)
        self._dns_inputs = _dns_inputs(d)
        self.last = d
        self.followed = d.followed
        self.revision = d.revision
        self._arm(d)
        self.full_next = False
        return True

    def dns_records(self, d: Desired, full: bool) -> dns_file.DnsFile:
        """dns.json's content for `d`: the records of the Services `d` says changed made
        again (render.dns_records), the others kept; all of them in a full sync. Equal
        to `dns_file.build` (tests/test_follow.py)."""
        net = d.net or NetworkConfig()
        pods_from = (d.cluster.pods, d.placement.pod_ip)
        same_pods = bool(self._dns_pods_from) and all(
            a is b for a, b in zip(pods_from, self._dns_pods_from, strict=True)
        )
        self._dns_pods_from = pods_from
        changed = None if full else d.services_changed
        if changed is None or self.zone.domain != fqdn(net.domain):
            self.zone.rebuild(
                d.cluster.services,
                d.cluster.endpoint_slices,
                dns_file.pod_addresses(d.cluster, d.placement),
                net.domain,
            )
        else:
            slices, index = d.cluster.endpoint_slices, self.endpoints.slices_of
            self.zone.update(
                lambda ns, name: find(d.cluster.services, (ns, name)),
                lambda ns, name: [find(slices, k) for k in index.get(f"{ns}/{name}", ())],
                changed,
                None if same_pods else dns_file.pod_addresses(d.cluster, d.placement),
            )
        zone, text = self.zone.zone(net.dns_ip, d.revision)
        return dns_file.DnsFile(zone, dns_file.servers(d.cluster, d.placement, self.cluster), text)

    @staticmethod
    def _names(d: Desired) -> list[str]:
        return [ns.name for ns in d.plan.namespaces]

    def _arm(self, d: Desired, unchanged: Collection[str] = ()) -> None:
        if self.watch is not None:
            self.watch.arm(
                self._names(d),
                (ns.name for ns in d.plan.namespaces if ns.role != "pod"),
                d.node_netns,
                unchanged,
            )

    def _periodic_check(self, started: float) -> SyncResult | None:
        """A periodic sync with a watch: None when it must sync (drift, a failure before,
        or a store that moved); else the result of a check that found nothing to do."""
        if self.full_next or self.watch is None:
            return None
        drift = self.watch.drift()
        if drift is not None:
            self.full_next = True
            self._drift = drift
            return None
        with Store.open(self.root) as store:
            revision = store.revision()
        if revision != self.revision:
            return None
        return SyncResult(
            revision, False, True, time.monotonic() - started, periodic=True, checked=True
        )

    # --- one sync ---------------------------------------------------------------------
    def sync(self, periodic: bool = False, progress: Progress | None = None) -> SyncResult:
        """One sync; `periodic` (the resync period) forces it full. `progress(done, total)`
        follows the namespaces a full sync applies (`up` shows it as a bar)."""
        started = time.monotonic()
        self._drift = None
        if periodic and (checked := self._periodic_check(started)) is not None:
            return checked
        full = self.full_next or (periodic and self.watch is None)
        self.full_next = True  # until this sync succeeds
        last, self.last = None if full else self.last, None  # likewise
        self.followed = None if full else self.followed
        revision = -1
        result = SyncResult(revision, full, False, 0.0, periodic=periodic, drift=self._drift)
        try:
            d = self.desired(last)
            result.revision = d.revision
            self._since = last  # what the narrowed nft step compares with
            self._apply(d, full, result, progress)
            result.revision = self.record(d)
            touched = set(result.added) | set(result.removed) | set(result.changed)
            self._arm(d, () if full else {n for n in self._names(d) if n not in touched})
        except Exception as e:  # any failure: report it, and the next sync is full
            result.error = f"{type(e).__name__}: {e}"
            if result.revision < 0:  # failed before reading it: the waiting CLI needs one
                with Store.open(self.root) as store:
                    result.revision = store.revision()
            result.seconds = time.monotonic() - started
            return result
        result.ok = True
        result.seconds = time.monotonic() - started
        self.adopt(d, result.revision)
        return result

    def record(self, d: Desired) -> int:
        """Step 7, once the kernel holds `d`: its allocations, what the endpoints
        controllers derived, and the synced revision, in one store transaction; returns
        that revision."""
        with Store.open(self.root) as store, store.transaction():
            d.allocations.record(store)
            moved = store.revision() != d.revision
            if d.derived:
                d.derived.record(store)
            # What this sync derived is what the kernel now holds: unless someone else
            # wrote meanwhile, the store's new revision is the synced one.
            synced = d.revision if moved else store.revision()
            store.set_meta("synced_revision", synced)
            # Every reader of changes (this reconciler) has seen the deletions up to here.
            store.compact(d.revision)
            return synced

    def adopt(self, d: Desired, revision: int) -> None:
        """`d`, recorded as of `revision`, is what the kernel holds: the next sync may be
        incremental from it."""
        self.revision = revision
        self.last = d
        d.service_deltas = {}  # they refer to the Desired before: let it go
        if d.followed is not None:
            self.followed = dataclasses.replace(d.followed, revision=revision)
        self.full_next = False

    def _clear_stale_udp(self, d: Desired, fresh: set[str], result: SyncResult) -> None:
        """Delete, in each node, the UDP conntrack entries toward a Service port that its
        rules no longer send there (render/service_stale). A failure is noted, as kube-proxy
        logs it: the rules stand."""
        if not any(p.protocol == "udp" for p in d.service_ports):
            return
        for node_ns in d.node_netns.values():
            if node_ns in fresh:
                continue
            try:
                entries = service_stale.parse(conntrack.list_udp(node_ns))
                gone = service_stale.stale(
                    entries, d.service_ports, (d.net or NetworkConfig()).service_cidr
                )
                result.conntrack += conntrack.delete(node_ns, (e.delete_argv() for e in gone))
            except (conntrack.ConntrackError, OSError, subprocess.SubprocessError) as e:
                result.notes.append(f"conntrack in {node_ns}: {e}")

    def _apply(self, d: Desired, full: bool, result: SyncResult, progress: Progress | None) -> None:
        kept = not full and d.plan is self.plan  # labels and policies only: nothing to compare
        old = {ns.name: ns for ns in self.plan.namespaces} if self.plan and not full else {}
        new = old if kept else {ns.name: ns for ns in d.plan.namespaces}
        existing = set(netns.listing(kernel_names.netns_prefix(self.cluster)))
        added = [n for n in new if n not in existing]
        result.added = added
        result.removed = sorted(existing - new.keys())
        if not kept:
            result.changed = [n for n, ns in new.items() if n in existing and old.get(n) != ns]
        # Existing namespaces with a link into a new one (a node, for its new pods).
        peers = {
            ns.name
            for ns in (d.plan.namespaces if added else ())
            if ns.name in existing and any(lk.peer and lk.peer.netns in added for lk in ns.links)
        }
        # 2. removals (and every other change that is not an addition) first. The peers
        # lose their links into new namespaces here: a pod namespace deleted behind our back
        # and now re-created under its old name still has its node-side veth as long as
        # something (the stand-in's sockets) holds the dead namespace, and step 5 would
        # take that stale veth for the new pod's.
        without_new = _without(d.plan, set(added))
        if full:
            apply_plan(without_new)
        elif result.removed or result.changed or peers:
            for name in result.removed:
                netns.remove(name)
            with netns.Worker() as worker:
                for ns in without_new.namespaces:
                    if ns.name in result.changed or ns.name in peers:
                        apply_netns(worker, ns)
        # 3. new namespaces, empty: a node's ruleset needs its namespace.
        if added:
            with netns.Worker() as worker:
                for name in added:
                    worker.create(name)
        # 4. rulesets: a new pod's rules exist before its link does.
        scope = None
        if not full and self._since is not None:
            known = d.followed.pods if d.followed is not None else None  # what changed
            keys = None if known is None else [f"{ns}/{name}" for ns, name in known]
            scope = affected(self._since.engine, d.engine, keys)
        report = sync_policies(
            self.cluster,
            d.engine,
            d.node_netns,
            self.runner,
            previous=None if full else self.rulesets,
            fresh=frozenset(added),
            only=None if scope is None else scope.nodes,
            reuse=None if scope is None else self.pod_rules,
            dirty=None if scope is None else scope.pods,
            services=d.services,
            previous_services=None if full or self._since is None else self._since.services,
            service_deltas=None if full or self._since is None else d.service_deltas,
        )
        result.nft = report
        if not report.ok:
            raise nft.NftError("; ".join(report.errors))
        self.rulesets = report.tables
        self.pod_rules = report.pods
        # 4b. stale UDP conntrack entries, now that the rules no longer choose them.
        # Only a UDP port can leave stale entries: a change of TCP ports (most) lists none.
        if full or self._since is None or _udp(self._since.service_ports) != _udp(d.service_ports):
            self._clear_stale_udp(d, set(added), result)
        # 5. additions: links, addresses and routes of the new namespaces.
        if full and added:
            apply_plan(d.plan, progress, fresh=frozenset(added))
        elif added:
            touched = set(added) | peers
            with netns.Worker() as worker:
                for ns in d.plan.namespaces:  # plan order: nodes before pods
                    if ns.name in touched:
                        apply_netns(worker, ns, fresh=ns.name in added)
        self.plan = d.plan
        # 6. runtime.json for the workload stand-in.
        if full or d.runtime != self.runtime:
            write_atomic(StateFiles(self.root).runtime, rt.dumps(d.runtime))
            result.runtime_changed = d.runtime != self.runtime
        self.runtime = d.runtime
        # 6b. dns.json for the DNS server: its records and the pods that serve them.
        # Its inputs unchanged (labels and policies changed), the records are too: building
        # them reads every pod (0.4 s at 5,000 pods on a loaded machine).
        inputs = _dns_inputs(d)
        was = self.dns
        if not full and was is not None and inputs == self._dns_inputs:
            dns = was
        else:
            dns = self.dns_records(d, full)
        self._dns_inputs = inputs
        if (
            full
            or was is None
            or (dns.zone.records, dns.servers) != (was.zone.records, was.servers)
        ):
            write_atomic(StateFiles(self.root).dns, dns.dumps())
            result.dns_changed = True
            result.dns_servers_changed = was is None or dns.servers != was.servers
        self.dns = dns


def _udp(ports: tuple[ServicePort, ...]) -> list[ServicePort]:
    return [p for p in ports if p.protocol == "udp"]


def _dns_inputs(d: Desired) -> tuple[Any, ...]:
    """Everything `dns_file.build` reads but the serial: Services, EndpointSlices, pod
    addresses (and namespaces: the keys), the DNS pods (kube-system's, labels included)."""
    return (
        d.cluster.services,
        d.cluster.endpoint_slices,
        d.placement.pod_ip,
        namespace_pods(d.cluster, DNS_NAMESPACE),
        d.net,
    )


def _same_topology(
    last: Desired,
    cluster: Cluster,
    placement: Placement,
    mode: str,
    net: NetworkConfig,
    changed: Collection[tuple[str, str]] | None = None,
) -> bool:
    """Whether the topology plan and runtime.json of `last` are those of this state: they
    read no labels, no policies and only the Services that `shapes_topology` names, so a
    change of only those keeps them (comparing is ~100 times cheaper than rendering them
    again: 30-40 ms at 10,000 Services). `changed`: the Services that may differ
    (`_changed_services`); None: any difference re-renders."""
    old = last.cluster
    if (last.mode, last.net) != (mode, net) or last.placement != placement:
        return False
    if (old.nodes, old.ingresses, old.ingress_classes) != (
        cluster.nodes,
        cluster.ingresses,
        cluster.ingress_classes,
    ):
        return False
    if (old.services, old.endpoints, old.endpoint_slices) != (
        cluster.services,
        cluster.endpoints,
        cluster.endpoint_slices,
    ) and (
        changed is None
        or any(
            svc is not None and shapes_topology(svc)
            for key in changed
            for svc in (find(old.services, key), find(cluster.services, key))
        )
    ):
        return False
    for before, after in ((old.namespaces, cluster.namespaces), (old.pods, cluster.pods)):
        if len(before) != len(after):
            return False
        pairs = zip(before, after, strict=True)
        if not all(a is b or _unlabelled(a) == _unlabelled(b) for a, b in pairs):
            return False
    return True


def _changed_services(
    old: Cluster, new: Cluster, keys: Collection[ObjectKey], derived: Derived | None
) -> set[tuple[str, str]]:
    """The Services changed in the store, and those of a changed slice (before or after the
    change, the store's or the controllers'): the only ones whose object or slices differ
    between `old` and `new`."""
    slices = {(ns, name) for kind, ns, name in keys if kind == "EndpointSlice"}
    if derived is not None:
        slices |= {(ns, name) for kind, ns, name, _ in derived.put if kind == "EndpointSlice"}
        slices |= {(ns, name) for kind, ns, name in derived.delete if kind == "EndpointSlice"}
    services = {(ns, name) for kind, ns, name in keys if kind == "Service"}
    for key in slices:
        for c in (old, new):
            s = find(c.endpoint_slices, key)
            if s is not None and s.service_name:
                services.add((s.metadata.namespace or "", s.service_name))
    return services


def _unlabelled(obj: Any) -> Any:
    """A pod or namespace without its labels."""
    return obj.model_copy(update={"metadata": obj.metadata.model_copy(update={"labels": {}})})


def _without(plan: NetPlan, gone: set[str]) -> NetPlan:
    """The plan minus the namespaces in `gone` and everything in other namespaces that
    refers to them (the node-side veth of a pod, its route and neighbour)."""
    if not gone:
        return plan
    out: list[NetnsPlan] = []
    for ns in plan.namespaces:
        if ns.name in gone:
            continue
        links = {lk.name for lk in ns.links if lk.peer and lk.peer.netns in gone}
        if links:
            ns = dataclasses.replace(
                ns,
                links=tuple(lk for lk in ns.links if lk.name not in links),
                addresses=tuple(a for a in ns.addresses if a.dev not in links),
                routes=tuple(r for r in ns.routes if r.dev not in links),
                neighbours=tuple(n for n in ns.neighbours if n.dev not in links),
            )
        out.append(ns)
    return dataclasses.replace(plan, namespaces=tuple(out))
