"""The reconciler: make the kernel match the store, after `podnet apply | delete | label`.

One sync, run by the daemon (on SIGUSR1) or by the CLI when no daemon runs:

1. snapshot: the revision, every stored object, the meta and the allocations, read in one
   read transaction (a change committed meanwhile is wholly in the next sync, never half in
   this one) -> `model.cluster.build` (the same validation as `up`);
   `place(held=store.held())`: pods keep their addresses, new pods get one, pods gone
   release theirs. Render the topology plan, runtime.json and every node's nft ruleset.
   Anything wrong here changes nothing: the store is not written.
2. removals first: namespaces of pods that are gone, and their node-side veths, routes and
   neighbours (the node namespaces applied without the *new* pods).
3. nft: one `nft -f` transaction per node whose ruleset changed (all of them in a full sync).
   A new pod's rules are in place here, before its link exists.
4. additions: new pod namespaces, their veths from the node, their addresses and routes.
5. runtime.json rewritten when it changed; the daemon then reloads its listeners.

6. only after all of that succeeded, one store transaction records the new allocations and
   releases (what the kernel now holds) and `synced_revision`, the revision the sync read.
   A failed sync leaves the store as it was (IPAM included) and the next sync is full.

A full sync (the first one, the one after any failure, and one every resync period: 30 s,
`PODNET_RESYNC_SECONDS`) compares with the kernel itself: `datapath.apply.apply` of the
whole plan (which reads the live state and repairs what differs, e.g. a deleted pod
namespace) and every node's ruleset applied whatever the last sync applied (a deleted or
flushed table comes back). An incremental sync applies only the namespaces whose plan
changed and the nodes whose ruleset text changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podnet.daemon.paths import StateFiles, write_atomic
from podnet.daemon.supervisor import SYNC_SIGNAL
from podnet.datapath import netns as dp_netns
from podnet.datapath import nft
from podnet.datapath.apply import apply as apply_plan
from podnet.datapath.apply import apply_netns
from podnet.model.cluster import Cluster, build
from podnet.model.errors import InputError, Origin
from podnet.model.load import Loaded, LoadResult, validate_object
from podnet.policy.engine import Engine
from podnet.render import names
from podnet.render.plan import NetnsPlan, Plan
from podnet.render.policy_nft import render_all
from podnet.render.runtime import runtime_doc
from podnet.render.topology import render
from podnet.state.kinds import KIND_NAMES
from podnet.state.network import NetworkConfig
from podnet.state.placement import Placement, place, pod_key
from podnet.state.store import PodKey, Store

RESYNC_ENV = "PODNET_RESYNC_SECONDS"
RESYNC_SECONDS = 30.0  # a full sync at least this often: repairs what else changed the kernel

log = logging.getLogger(__name__)


def network_config(meta: dict[str, str] | None) -> NetworkConfig:
    """NetworkConfig from the store's meta `config` (every value stored as a string)."""
    if not meta:
        return NetworkConfig()
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(NetworkConfig):
        if f.name not in meta:
            continue
        default = f.default
        if isinstance(default, ipaddress.IPv4Network):
            kw[f.name] = ipaddress.IPv4Network(meta[f.name])
        elif isinstance(default, int):
            kw[f.name] = int(meta[f.name])
        else:
            kw[f.name] = meta[f.name]
    return NetworkConfig(**kw)


ParsedCache = dict[tuple[str, str, str], tuple[int, Loaded]]


def stored_objects(store: Store, cache: ParsedCache | None = None) -> LoadResult:
    """Every stored object, validated again as the loader does (origin `<store>`). With a
    cache, an object whose resource version did not change is not parsed again (a sync of
    a 1,000-pod cluster would otherwise spend most of its time here)."""
    result = LoadResult()
    problems = []
    skipped: Counter[str] = Counter()
    seen: set[tuple[str, str, str]] = set()
    for i, kind in enumerate(KIND_NAMES):
        for j, o in enumerate(store.list(kind)):
            key = (kind, o.namespace, o.name)
            seen.add(key)
            hit = cache.get(key) if cache is not None else None
            if hit is not None and hit[0] == o.rv:
                result.objects.append(hit[1])
                continue
            body = json.loads(json.dumps(o.body))  # the loader mutates (raw defaults)
            body.setdefault("kind", kind)
            problems += validate_object(body, Origin("<store>", i, j), result, skipped)
            if cache is not None and result.objects and result.objects[-1].kind == kind:
                cache[key] = (o.rv, result.objects[-1])
    if cache is not None:
        for key in cache.keys() - seen:
            del cache[key]
    if problems:
        raise InputError(problems)
    return result


def snapshot(store: Store, cache: ParsedCache | None = None) -> Cluster:
    return build(stored_objects(store, cache), node_count=None)


@dataclass(frozen=True)
class Allocations:
    """What a sync changes in IPAM: recorded only once the kernel holds it."""

    allocate: dict[PodKey, tuple[str, str]]  # (ns, pod) -> (node, ip), new or moved
    release: tuple[PodKey, ...]  # pods gone

    @classmethod
    def between(
        cls, held: dict[PodKey, tuple[str, str]], placement: Placement, cluster: Cluster
    ) -> Allocations:
        """A hostNetwork pod uses its node's address and holds none (as `up` records it):
        two of them on one node would otherwise claim the same address."""
        host = {pod_key(p) for p in cluster.pods if p.spec.host_network}
        own = {key: ip for key, ip in placement.pod_ip.items() if key not in host}
        allocate = {
            key: (placement.pod_node[key], ip)
            for key, ip in own.items()
            if held.get(key) != (placement.pod_node[key], ip)
        }
        return cls(allocate, tuple(sorted(held.keys() - own.keys())))

    def __bool__(self) -> bool:
        return bool(self.allocate or self.release)

    def record(self, store: Store) -> None:
        """Into the store (inside the caller's transaction). A pod deleted since the sync
        read the store holds nothing: `delete` released it, and it stays released."""
        for (ns, pod), (node, ip) in self.allocate.items():
            if store.get("Pod", ns, pod) is not None:
                store.allocate(ns, pod, node, ip)
        for key in self.release:
            store.release(*key)


@dataclass
class Desired:
    revision: int
    cluster: Cluster
    placement: Placement
    plan: Plan
    runtime: dict[str, Any]
    engine: Engine
    node_netns: dict[str, str]
    allocations: Allocations


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
    nft: nft.SyncReport | None = None
    runtime_changed: bool = False
    periodic: bool = False  # the resync period forced it

    def summary(self) -> str:
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
        if self.runtime_changed:
            what.append("runtime.json rewritten")
        kind = ("periodic full" if self.periodic else "full") if self.full else "incremental"
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
    """Keeps what the last successful sync applied, to make the next one incremental."""

    def __init__(self, state_dir: Path, cluster: str, runner: nft.NftRunner | None = None) -> None:
        self.root = state_dir
        self.cluster = cluster
        self.runner = runner or nft.IpNetnsRunner()
        self.full_next = True
        self.plan: Plan | None = None
        self.nft_texts: dict[str, str] = {}
        self.runtime: dict[str, Any] | None = None
        self.parsed: ParsedCache = {}

    # --- the desired state ------------------------------------------------------------
    def desired(self) -> Desired:
        """The next state, from one consistent read of the store; writes nothing."""
        with Store.open(self.root) as store, store.snapshot():
            revision = store.revision()
            cluster = snapshot(store, self.parsed)
            mode = store.get_meta("mode", "host-gw")
            net = network_config(store.get_meta("config"))
            held = store.held()
        placement = place(cluster, net, held=held, strict=True)
        plan = render(cluster, placement, self.cluster, mode, net)
        runtime = runtime_doc(cluster, placement, self.cluster, mode, net)
        node_netns = {
            n.metadata.name: names.node_netns(self.cluster, n.metadata.name) for n in cluster.nodes
        }
        engine = Engine(cluster, placement)
        allocations = Allocations.between(held, placement, cluster)
        return Desired(revision, cluster, placement, plan, runtime, engine, node_netns, allocations)

    def assume_synced(self) -> bool:
        """Adopt the current store as what the kernel holds (after `up`, whose revision
        the store records as synced): the next sync can be incremental. False, and nothing
        adopted, when the store's allocations are not the placement's (then the kernel
        cannot be known to match: sync in full)."""
        d = self.desired()
        if d.allocations:
            return False
        self.plan = d.plan
        self.runtime = d.runtime
        self.nft_texts = render_all(d.engine, self.cluster)
        self.full_next = False
        return True

    # --- one sync ---------------------------------------------------------------------
    def sync(self, periodic: bool = False) -> SyncResult:
        """One sync; `periodic` (the resync period) forces it full."""
        started = time.monotonic()
        full = self.full_next or periodic
        self.full_next = True  # until this sync succeeds
        revision = -1
        result = SyncResult(revision, full, False, 0.0, periodic=periodic)
        try:
            d = self.desired()
            result.revision = d.revision
            self._apply(d, full, result)
            with Store.open(self.root) as store, store.transaction():
                d.allocations.record(store)
                store.set_meta("synced_revision", d.revision)
        except Exception as e:  # any failure: report it, and the next sync is full
            result.error = f"{type(e).__name__}: {e}"
            if result.revision < 0:  # failed before reading it: the waiting CLI needs one
                with Store.open(self.root) as store:
                    result.revision = store.revision()
            result.seconds = time.monotonic() - started
            return result
        result.ok = True
        result.seconds = time.monotonic() - started
        self.full_next = False
        return result

    def _apply(self, d: Desired, full: bool, result: SyncResult) -> None:
        old = {ns.name: ns for ns in self.plan.namespaces} if self.plan and not full else {}
        new = {ns.name: ns for ns in d.plan.namespaces}
        existing = set(dp_netns.listing(names.netns_prefix(self.cluster)))
        added = [n for n in new if n not in existing]
        result.added = added
        result.removed = sorted(existing - new.keys())
        result.changed = [n for n, ns in new.items() if n in existing and old.get(n) != ns]
        # 2. removals (and every other change that is not an addition) first.
        without_new = _without(d.plan, set(added))
        if full:
            apply_plan(without_new)
        elif result.removed or result.changed:
            for name in result.removed:
                dp_netns.remove(name)
            with dp_netns.Worker() as worker:
                for ns in without_new.namespaces:
                    if ns.name in result.changed:
                        apply_netns(worker, ns)
        # 3. rulesets: a new pod's rules exist before its link does.
        report = nft.sync_policies(
            self.cluster,
            d.engine,
            d.node_netns,
            self.runner,
            previous=None if full else self.nft_texts,
        )
        result.nft = report
        if not report.ok:
            raise nft.NftError("; ".join(report.errors))
        self.nft_texts = report.texts
        # 4. additions.
        if full and added:
            apply_plan(d.plan)
        elif added:
            touched = set(added) | {
                ns.name
                for ns in d.plan.namespaces
                if any(link.peer and link.peer.netns in added for link in ns.links)
            }
            with dp_netns.Worker() as worker:
                for name in added:
                    worker.create(name)
                for ns in d.plan.namespaces:  # plan order: nodes before pods
                    if ns.name in touched:
                        apply_netns(worker, ns)
        self.plan = d.plan
        # 5. runtime.json for the daemon's listeners.
        if full or d.runtime != self.runtime:
            write_atomic(StateFiles(self.root).runtime, json.dumps(d.runtime, indent=2) + "\n")
            result.runtime_changed = d.runtime != self.runtime
        self.runtime = d.runtime


def _without(plan: Plan, gone: set[str]) -> Plan:
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


def resync_period() -> float:
    """Seconds between full syncs: $PODNET_RESYNC_SECONDS (tests use a short one), else 30."""
    text = os.environ.get(RESYNC_ENV, "")
    try:
        value = float(text) if text else RESYNC_SECONDS
    except ValueError:
        log.warning("%s=%r is not a number of seconds: using %g", RESYNC_ENV, text, RESYNC_SECONDS)
        return RESYNC_SECONDS
    return value if value > 0 else RESYNC_SECONDS


class Syncer:
    """The daemon's side: SIGUSR1 -> one sync (in a worker thread; signals that arrive
    during a sync coalesce into one more), then a listener reload when runtime.json changed
    or a namespace was (re-)created. Every `period` seconds without a full sync, a full one
    (kube-proxy's baseline: it repairs what else changed the kernel, such as a deleted table
    or pod namespace). `status` goes into daemon.json as "sync" ({"revision", "ok", "error",
    ...}): the CLI waits until it shows the revision it wrote."""

    def __init__(
        self,
        reconciler: Reconciler,
        reload: Callable[[], Awaitable[None]],
        period: float = RESYNC_SECONDS,
    ) -> None:
        self.reconciler = reconciler
        self.reload = reload
        self.period = period
        self.event = asyncio.Event()
        self.status: dict[str, Any] | None = None
        self.last_full = time.monotonic()

    @classmethod
    def for_state(
        cls, root: Path, cluster: str, reload: Callable[[], Awaitable[None]]
    ) -> Syncer | None:
        """None for a state directory without a store (hand-built test namespaces)."""
        if not Store.exists(root):
            return None
        # Until the loop's handler is installed, a sync request must not kill the daemon.
        signal.signal(SYNC_SIGNAL, signal.SIG_IGN)
        return cls(Reconciler(root, cluster), reload, resync_period())

    def start(
        self, loop: asyncio.AbstractEventLoop, write_status: Callable[[], None]
    ) -> asyncio.Task[None]:
        loop.add_signal_handler(SYNC_SIGNAL, self.event.set)
        return asyncio.ensure_future(self._run(loop, write_status))

    async def _run(self, loop: asyncio.AbstractEventLoop, write_status: Callable[[], None]) -> None:
        try:
            synced = await loop.run_in_executor(None, self._baseline)
        except Exception as e:  # the first sync will be full and say what is wrong
            log.warning("no baseline (%s: %s): the first sync is full", type(e).__name__, e)
            synced = False
        if not synced:
            self.event.set()
        self.last_full = time.monotonic()
        while True:
            periodic = not await self._wait()
            self.event.clear()
            result = await loop.run_in_executor(None, self.reconciler.sync, periodic)
            (log.info if result.ok else log.error)("%s", result.summary())
            if result.full:
                self.last_full = time.monotonic()
            if result.runtime_changed or result.added:
                await self.reload()  # new namespaces: their sockets are opened anew
            self.status = result.status()
            write_status()

    async def _wait(self) -> bool:
        """True on a sync request, False when the resync period has passed without one
        full sync."""
        left = self.last_full + self.period - time.monotonic()
        try:
            await asyncio.wait_for(self.event.wait(), timeout=max(0.0, left))
        except TimeoutError:
            return False
        return True

    def _baseline(self) -> bool:
        """True when the kernel already matches the store (`up` recorded its revision)."""
        with Store.open(self.reconciler.root) as store:
            revision, synced = store.revision(), store.get_meta("synced_revision")
        if synced != revision:
            log.info("store revision %s, synced %s: full sync", revision, synced)
            return False
        started = time.monotonic()
        if not self.reconciler.assume_synced():
            log.info("allocations of revision %s not recorded: full sync", revision)
            return False
        self.status = {"revision": revision, "ok": True, "full": True, "error": None}
        log.info("baseline of revision %d in %.3fs", revision, time.monotonic() - started)
        return True
