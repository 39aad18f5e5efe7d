"""Make the kernel match a plan: create what is missing, fix what differs, remove extras.

Idempotent and safe after a crash: every step reads the live state first. Namespaces are
handled in the plan's order (fabric, internet, nodes, pods) because the owner of a veth pair
creates both ends: the fabric makes the nodes' uplinks, each node makes its pods' veths.
A namespace with the cluster's prefix that the plan does not list is removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from podnet.datapath import netns, rtnl_batch
from podnet.datapath.fresh import apply_fresh
from podnet.datapath.session import Session
from podnet.render import kernel_names
from podnet.render.netplan import NetnsPlan, NetPlan

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ApplyResult:
    created: int  # namespaces created
    removed: int  # namespaces removed
    changes: int  # netlink changes and sysctl writes


def apply_plan(
    plan: NetPlan, progress: Progress | None = None, fresh: frozenset[str] = frozenset()
) -> ApplyResult:
    """`fresh`: namespaces the caller has just created, empty (datapath.fresh builds them
    without reading them first); namespaces created here are fresh too."""
    prefix = kernel_names.netns_prefix(plan.cluster)
    wanted = [ns.name for ns in plan.namespaces]
    existing = set(netns.listing(prefix))
    removed = sum(netns.remove(n) for n in sorted(existing - set(wanted)))
    total, changes = len(plan.namespaces), 0
    with netns.Worker() as worker:
        new = {n for n in wanted if n not in existing and worker.create(n)}
        fresh = fresh | new
        for done, ns in enumerate(plan.namespaces, 1):
            changes += apply_netns(worker, ns, ns.name in fresh)
            if progress:
                progress(done, total)
    return ApplyResult(len(new), removed, changes)


def apply_netns(worker: netns.Worker, ns: NetnsPlan, fresh: bool = False) -> int:
    """Make one namespace match its plan; `fresh` (created empty by this sync) builds it
    without reading it first, and falls back to the diff if the kernel refuses anything."""
    # sysctls first: links created afterwards inherit conf.default.* values.
    if fresh:
        changes, sock = worker.prepare(ns.name, ns.sysctls)
        try:
            return changes + apply_fresh(sock, ns)
        except rtnl_batch.BatchError:
            pass  # not as fresh as thought: the diff below reads it and repairs
        finally:
            sock.close()
    else:
        changes = worker.sysctls(ns.name, ns.sysctls) if ns.sysctls else 0
    with Session(worker, ns.name) as s:
        s.ensure_lo()
        s.sync_links(ns.links)
        s.sync_addresses(ns.addresses)
        s.sync_routes(ns.routes)
        s.sync_neighbours(ns.neighbours)
        if ns.role == "node":
            s.sync_fdb(ns.fdb)
        return changes + s.changes
