"""NetworkPolicy rulesets into the kernel for one sync: render every node's table (pure,
podnet.render.policy_nft), then hand each node whose table changed to the datapath (one
`nft -f` transaction per node, nodes in parallel). Failures are recorded per node, never
raised: the reconciler decides, and forces the next sync to be full."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import is_, itemgetter

from podnet.datapath.nft import NetnsRunner, NftError, NftRunner
from podnet.nftables.model import Table
from podnet.policy.engine import Engine
from podnet.render.policy_nft import PodRules, render_nodes
from podnet.render.service_nft import RulesDelta, ServiceRules, difference, merge, merge_delta

MAX_PARALLEL = 8


@dataclass(frozen=True)
class NodeSync:
    node: str
    netns: str
    rules: int
    render_s: float  # rendering every node's table (one shared pass, see render_all)
    apply_s: float  # reading the counters (a replace only), rendering the text and `nft -f`
    applied: bool  # False: the table was unchanged since the last sync and not re-applied
    error: str | None = None
    updated: bool = False  # only the difference applied (nftables.text.update), no replace
    by_service: bool = False  # ... computed from the changed Service ports alone


@dataclass
class SyncReport:
    nodes: dict[str, NodeSync]
    tables: dict[str, Table]  # node -> table applied (without counter values): for the next sync
    seconds: float
    # node -> what each of its pods put into the table: the next sync renders only the
    # pods a change touches and keeps these for the others.
    pods: dict[str, dict[str, PodRules]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(n.error is None for n in self.nodes.values())

    @property
    def errors(self) -> list[str]:
        return [f"{n.node}: {n.error}" for n in self.nodes.values() if n.error]

    @property
    def rules(self) -> int:
        return sum(n.rules for n in self.nodes.values())

    @property
    def applied(self) -> list[str]:
        return sorted(n.node for n in self.nodes.values() if n.applied)

    def summary(self) -> str:
        updated = sum(1 for n in self.nodes.values() if n.updated)
        return (
            f"nft: {len(self.applied)}/{len(self.nodes)} node(s) applied"
            + (f" ({updated} by difference)" if updated else "")
            + ", "
            f"{self.rules} rules, {self.seconds:.3f}s"
            + (f"; errors: {'; '.join(self.errors)}" if self.errors else "")
        )


def sync_policies(
    cluster_name: str,
    engine: Engine,
    node_netns: Mapping[str, str],
    runner: NftRunner | None = None,
    previous: Mapping[str, Table] | None = None,
    keep_counters: bool = True,
    fresh: frozenset[str] = frozenset(),
    only: frozenset[str] | None = None,
    reuse: Mapping[str, Mapping[str, PodRules]] | None = None,
    dirty: frozenset[str] | None = None,
    services: Mapping[str, ServiceRules] | None = None,
    previous_services: Mapping[str, ServiceRules] | None = None,
    service_deltas: Mapping[str, RulesDelta] | None = None,
) -> SyncReport:
    """Render every node's ruleset and apply it, one `nft -f` transaction per node, nodes in
    parallel. With `previous` (node -> table of the last successful sync, which the kernel
    holds), a node whose table is unchanged is not re-applied and one whose table changed
    gets only the difference (the incremental path; pass None for a full sync: replace).
    Failures are recorded per node, never raised: the caller decides (and must force the
    next sync to be full). `fresh` namespaces were created by this sync: they hold no
    table, so no counters are read there (a process each, 256 of them at `up`). With
    `only` (and `previous`: render/policy_scope.affected_nodes says which nodes a change can
    touch), only those nodes are rendered; every other node keeps its previous table. With
    `reuse` (the last report's `pods`) and `dirty` (the pod keys a change can touch), only
    those pods of the rendered nodes are rendered. With `previous_services` (the Service
    rules `previous` was merged with), a node neither rendered nor given other Service rules
    keeps its previous table as it is: merging and comparing every node's table again cost
    ~60 ms a sync at 50 nodes and 471 Services. With `service_deltas` (node -> how its
    Service rules differ from `previous_services`', service_nft.render_all), a node whose
    policy part was not rendered again gets the difference of the changed Service ports
    only (service_nft.difference, merge_delta): kube-proxy's partial sync, without a pass
    over the table's 10,000 unchanged Services."""
    runner = runner or NetnsRunner()
    started = time.monotonic()
    previous = previous or {}
    tables: dict[str, Table] = {}
    pods: dict[str, dict[str, PodRules]] = {}
    if only is not None and previous:
        only = only | {n for n in node_netns if n not in previous}
        tables.update((n, t) for n, t in previous.items() if n in node_netns and n not in only)
        pods = {n: dict(reuse[n]) for n in tables if reuse is not None and n in reuse}
        rendered = render_nodes(engine, cluster_name, only, reuse, dirty)
    else:
        rendered = render_nodes(engine, cluster_name)  # peer addresses computed once for all
    tables.update((n, r.table) for n, r in rendered.items())
    pods.update((n, r.pods) for n, r in rendered.items())
    patches: dict[str, str | None] = {}  # node -> the difference of its changed Services
    if services is not None:
        merged: dict[str, Table] = {}
        for n, t in tables.items():
            delta = (service_deltas or {}).get(n)
            if _kept(n, t, previous, services, previous_services):
                merged[n] = t
            elif delta is not None and _patchable(n, t, delta, previous, previous_services):
                merged[n] = merge_delta(t, delta)
                patches[n] = difference(delta, t.family, t.name)
            else:
                merged[n] = merge(t, services.get(n))
        tables = merged
    render_s = time.monotonic() - started

    def one(node: str) -> tuple[NodeSync, Table]:
        ns, table = node_netns[node], tables[node]
        rules = table.rule_count
        prior = previous.get(node)
        if prior is table or prior == table:
            return NodeSync(node, ns, rules, render_s, 0.0, False), table
        t0 = time.monotonic()
        patch = patches.get(node)
        if prior is not None and patch == "" and ns not in fresh:
            # Equal pieces, other objects (see _kept): the kernel holds the table already.
            return NodeSync(node, ns, rules, render_s, 0.0, False), table
        if prior is not None and patch is not None and ns not in fresh:
            try:
                runner.patch(ns, prior, table, patch)
                took = time.monotonic() - t0
                return NodeSync(node, ns, rules, render_s, took, True, None, True, True), table
            except NftError:
                pass  # the kernel does not hold `prior` after all: as below
        try:
            # The kernel holds the previous table (a failure since would have made this
            # sync full, and drift is caught by the periodic check): change only what
            # differs, and the counters keep counting where they are.
            updated = prior is not None and ns not in fresh and _update(runner, ns, prior, table)
            if not updated:
                values = runner.list_counters(ns) if keep_counters and ns not in fresh else {}
                runner.apply(ns, table.with_counter_values(values))
        except (NftError, OSError, ValueError, subprocess.SubprocessError) as e:
            err = f"{type(e).__name__}: {e}"
            return NodeSync(node, ns, rules, render_s, 0.0, True, err), table
        took = time.monotonic() - t0
        return NodeSync(node, ns, rules, render_s, took, True, updated=updated), table

    nodes = sorted(node_netns)
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(nodes)))) as pool:
        results = list(pool.map(one, nodes))
    return SyncReport(
        nodes={r.node: r for r, _ in results},
        tables={r.node: t for r, t in results if r.error is None},
        seconds=time.monotonic() - started,
        pods={r.node: pods[r.node] for r, _ in results if r.error is None and r.node in pods},
    )


def _kept(
    node: str,
    table: Table,
    previous: Mapping[str, Table],
    services: Mapping[str, ServiceRules],
    previous_services: Mapping[str, ServiceRules] | None,
) -> bool:
    """Whether `table` is the node's previous table, already merged with the Service rules
    it gets now: the very same pieces as last time. Equal pieces that are other objects
    (a Service re-rendered to the same rules) do not count: the next sync's `merge_delta`
    takes the pieces that go out of the table by identity, so the table must hold the
    objects of the rules the reconciler keeps. Kept by value, the table held the old
    objects; a later delete of that Service took nothing out, the table compared equal to
    the previous one, and the kernel kept the deleted Service's rules (a sync behind the
    store; tests/test_service_update_live.py). The patch path swaps the objects at no
    kernel cost: an empty difference."""
    if previous_services is None or previous.get(node) is not table:
        return False
    now, was = services.get(node), previous_services.get(node)
    if now is was:
        return True
    if now is None or was is None or len(now.ports) != len(was.ports):
        return False
    return (
        (now.cluster_cidr, now.service_cidr) == (was.cluster_cidr, was.service_cidr)
        and all(map(is_, map(_PIECES, now.ports), map(_PIECES, was.ports)))
        and list(map(_NAME, now.ports)) == list(map(_NAME, was.ports))
    )


_PIECES, _NAME = itemgetter(1), itemgetter(0)


def _patchable(
    node: str,
    table: Table,
    delta: RulesDelta,
    previous: Mapping[str, Table],
    previous_services: Mapping[str, ServiceRules] | None,
) -> bool:
    """Whether `table` is the node's previous table (its policy part not rendered again)
    and holds the pieces of the rules the delta starts from."""
    return (
        previous_services is not None
        and previous.get(node) is table
        and previous_services.get(node) is delta.base
    )


def _update(runner: NftRunner, ns: str, old: Table, new: Table) -> bool:
    """The difference applied; False when it cannot be, or the kernel refused it (it does
    not hold `old` after all, e.g. a daemon that adopted a kernel someone changed): a
    refused transaction changed nothing, and the caller replaces the table instead."""
    try:
        return runner.update(ns, old, new)
    except NftError:
        return False
