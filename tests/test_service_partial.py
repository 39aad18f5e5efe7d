"""The partial Service sync (kube-proxy's): the change tracker's delta (PortCache.delta),
the rules rendered from it (service_nft.render_changes), the node's table patched with it
(merge_delta) and the difference written from it (difference) against the full path kept
as the reference: render_all of every port, merge, nftables.text.update of whole tables.
The live side (what the kernel then holds) is tests/test_service_update_live.py."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from podnet.controller.policy_sync import SyncReport, sync_policies
from podnet.datapath.nft import NftRunner
from podnet.model.service import EndpointSlice, Service
from podnet.nftables import text
from podnet.nftables.expr import Jump
from podnet.nftables.model import Chain, Hook, Rule, Table
from podnet.policy.engine import Engine
from podnet.render.policy_nft import render_nodes
from podnet.render.service_nft import (
    ServiceRules,
    difference,
    merge,
    merge_delta,
    render_all,
    render_changes,
)
from podnet.render.service_ports import PortCache, service_ports
from podnet.testing import FakeRunner, engine, namespace, pod, policy

CIDR, SCIDR = IPv4Network("10.244.0.0/16"), IPv4Network("10.96.0.0/12")
NODES = ("node-1", "node-2")
# A policy part, as policy_nft renders it: the Service objects are merged beside it.
POLICY = Table(
    "inet",
    "podnet_partial",
    chains=(Chain("forward", (Rule(verdict=Jump("x")),), Hook("filter", "forward", 0)),),
)


def _svc(i: int, version: int) -> Service:
    """Service i in one of five shapes, picked by the version: ClusterIP, ClientIP
    affinity, NodePort, NodePort with externalTrafficPolicy Local, two ports."""
    kind = version % 5
    spec: dict[str, Any] = {"clusterIP": f"10.96.0.{i + 1}", "ports": [{"port": 80}]}
    if kind == 1:
        spec["sessionAffinity"] = "ClientIP"
    if kind in (2, 3):
        spec.update(type="NodePort", ports=[{"port": 80, "nodePort": 30000 + i}])
    if kind == 3:
        spec["externalTrafficPolicy"] = "Local"
    if kind == 4:
        spec["ports"] = [{"name": "a", "port": 80}, {"name": "b", "port": 81, "protocol": "UDP"}]
    return Service.model_validate(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}", "namespace": "p"},
         "spec": spec}
    )  # fmt: skip


def _slice(i: int, j: int, version: int) -> EndpointSlice:
    ready = version % 4 != 3  # now and then an endpoint that is not ready
    return EndpointSlice.model_validate(
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": f"s{i}-{j}", "namespace": "p",
                      "labels": {"kubernetes.io/service-name": f"s{i}"}},
         "addressType": "IPv4",
         "ports": [{"port": 8080}, {"name": "a", "port": 8080}, {"name": "b", "port": 53, "protocol": "UDP"}],
         "endpoints": [{"addresses": [f"10.244.{j}.{version % 250 + 1}"],
                        "nodeName": NODES[version % 2], "conditions": {"ready": ready}}]}
    )  # fmt: skip


def canonical(table: Table) -> dict[str, Any]:
    """What the kernel would hold: objects by name, map elements as a set (order is not
    the kernel's business; the partial path puts changed Services last)."""
    out: dict[str, Any] = {"counters": sorted(c.name for c in table.counters)}
    out.update((f"set {s.name}", s) for s in table.sets)
    for m in table.maps:
        out[f"map {m.name}"] = (m.type, m.flags, sorted(map(repr, m.elements)))
    out.update((f"chain {c.name}", c) for c in table.chains)
    assert len(out) == 1 + len(table.sets) + len(table.maps) + len(table.chains), "a name twice"
    return out


def by_port(rules: ServiceRules) -> dict[str, Any]:
    return dict(rules.ports)


_ops = st.lists(
    st.tuples(
        st.sampled_from(["svc", "unsvc", "slice", "unslice"]),
        st.integers(0, 5),
        st.integers(0, 2),
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=120, deadline=None)
@given(_ops)
@example([("unsvc", i, 0) for i in range(4)] + [("svc", 2, 0)])  # the last goes, one comes
def test_the_partial_sync_equals_the_full_render(ops: list[tuple[str, int, int]]) -> None:
    services = {i: _svc(i, i) for i in range(4)}
    slices = {(i, 0): _slice(i, 0, i) for i in range(4)}
    cache = PortCache()
    ports = service_ports(services.values(), slices.values(), cache)
    assert cache.delta is None  # the first call walks everything
    rules = render_all(ports, NODES, CIDR, SCIDR)
    tables = {n: merge(POLICY, rules[n]) for n in NODES}
    for version, (op, i, j) in enumerate(ops, start=5):
        if op == "svc":
            services[i] = _svc(i, version)
        elif op == "unsvc":
            services.pop(i, None)
        elif op == "slice":
            slices[(i, j)] = _slice(i, j, version)
        else:
            slices.pop((i, j), None)
        new_ports = service_ports(services.values(), slices.values(), cache)
        delta = cache.delta
        assert delta is not None and delta.base is ports, (op, i, j)
        new_rules, deltas = render_changes(new_ports, NODES, CIDR, SCIDR, like=rules, delta=delta)
        # The partial path whenever ports changed, unless the first came or the last went
        # (the static chains come or go: a whole merge).
        edge = not ports or not new_ports
        assert bool(deltas) == bool((delta.came or delta.went) and not edge)
        full = render_all(service_ports(services.values(), slices.values()), NODES, CIDR, SCIDR)
        for n in NODES:
            assert new_rules[n] == full[n], (op, i, j, n)  # the same ports, in order
            reference = merge(POLICY, full[n])
            if n not in deltas:
                if edge:
                    tables[n] = merge(tables[n], new_rules[n])
                else:
                    assert new_rules[n] is rules[n]
                assert canonical(tables[n]) == canonical(reference)
                continue
            patched = merge_delta(tables[n], deltas[n])
            assert canonical(patched) == canonical(reference), (op, i, j, n)
            diff = difference(deltas[n], "inet", POLICY.name)
            whole = text.update(tables[n], reference)
            assert (diff is None) == (whole is None)
            assert sorted((diff or "").splitlines()) == sorted((whole or "").splitlines()), (
                json.dumps([op, i, j, n]),
                diff,
                whole,
            )
            tables[n] = patched
        ports, rules = new_ports, new_rules


def test_one_service_added_touches_only_its_pieces() -> None:
    """At 500 Services, one added: the delta names its port only, the rules keep every
    other port's pieces (the same objects), and the difference is that Service's."""
    services = [_svc(i, 0) for i in range(200)]
    slices = [_slice(i, 0, 0) for i in range(200)]
    cache = PortCache()
    ports = service_ports(services, slices, cache)
    rules = render_all(ports, NODES, CIDR, SCIDR)
    services.append(_svc(210, 0))
    slices.append(_slice(210, 0, 0))
    new_ports = service_ports(services, slices, cache)
    assert cache.delta is not None
    assert [p.service for p in cache.delta.came] == ["s210"] and cache.delta.went == ()
    new_rules, deltas = render_changes(new_ports, NODES, CIDR, SCIDR, rules, cache.delta)
    kept = dict(rules["node-1"].ports)
    assert all(kept[k] is v for k, v in new_rules["node-1"].ports if k in kept)
    diff = difference(deltas["node-1"], "inet", POLICY.name) or ""
    assert diff and all("p/s210/" in line for line in diff.splitlines()), diff


# --- through policy_sync: what the node's table holds, sync after sync -------------------
def _policies(variant: int) -> Engine:
    """Two pods on each node and a policy whose shape depends on `variant`: a change of it
    re-renders the policy part of every node's table (policy_sync then compares whole
    tables: nftables.text.update)."""
    port = 8080 + variant % 2
    return engine(
        namespace("x"),
        pod("x/a", labels={"app": "a"}, ports=[{"containerPort": port}], node="node-1"),
        pod("x/b", labels={"app": "b"}, ports=[{"containerPort": port}], node="node-2"),
        policy("x/p", {"podSelector": {"matchLabels": {"app": "a"}},
                       "ingress": [{"ports": [{"port": port}]}]}),
    )  # fmt: skip


def held_objects(table: Table) -> set[int]:
    return {id(x) for x in (*table.chains, *table.sets)} | {
        id(e) for m in table.maps for e in m.elements
    }


_sync_ops = st.lists(
    st.tuples(
        # "same": the Service made again, equal (a new object: its rules are rendered again)
        st.sampled_from(["svc", "same", "unsvc", "slice", "unslice", "policy"]),
        st.integers(0, 3),
        st.integers(0, 1),
    ),
    min_size=1,
    max_size=10,
)


@dataclass
class Synced:
    """One sync of `syncs`: the change, the engine, what policy_sync reported, the Service
    rules kept for the next sync, and every node's Service rules rendered afresh."""

    op: tuple[str, int, int]
    engine: Engine
    report: SyncReport
    rules: dict[str, ServiceRules]
    whole: dict[str, ServiceRules]


def syncs(
    ops: list[tuple[str, int, int]], cluster: str, nodes: Mapping[str, str], runner: NftRunner
) -> Iterator[Synced]:
    """The daemon's steps over `_sync_ops`: the change tracker's delta, render_changes from
    the last rules, policy_sync with the last tables (every node's policy part rendered
    again after a policy change, none otherwise)."""
    variant = 0
    services = {i: _svc(i, i) for i in range(3)}
    slices = {(i, 0): _slice(i, 0, i) for i in range(3)}
    cache = PortCache()
    ports = service_ports(services.values(), slices.values(), cache)
    rules = render_all(ports, nodes, CIDR, SCIDR)
    report = sync_policies(cluster, _policies(variant), nodes, runner, services=rules)
    assert report.ok, report.errors
    for version, (op, i, j) in enumerate(ops, start=5):
        if op == "svc":
            services[i] = _svc(i, version)
        elif op == "same" and i in services:
            services[i] = services[i].model_copy(deep=True)
        elif op == "unsvc":
            services.pop(i, None)
        elif op == "slice":
            slices[(i, j)] = _slice(i, j, version)
        elif op == "unslice":
            slices.pop((i, j), None)
        elif op == "policy":
            variant += 1
        eng = _policies(variant)
        new_ports = service_ports(services.values(), slices.values(), cache)
        delta = cache.delta
        follows = delta is not None and delta.base is ports
        new_rules, deltas = render_changes(
            new_ports, nodes, CIDR, SCIDR, rules if follows else None, delta if follows else None
        )
        report = sync_policies(
            cluster,
            eng,
            nodes,
            runner,
            previous=report.tables,
            only=None if op == "policy" else frozenset(),
            reuse=report.pods,
            dirty=None if op == "policy" else frozenset(),
            services=new_rules,
            previous_services=rules,
            service_deltas=deltas,
        )
        assert report.ok, report.errors
        whole = render_all(service_ports(services.values(), slices.values()), nodes, CIDR, SCIDR)
        yield Synced((op, i, j), eng, report, new_rules, whole)
        ports, rules = new_ports, new_rules


@settings(max_examples=80, deadline=None)
@given(_sync_ops)
# A Service rendered again to equal rules (other objects), then changed or deleted: the
# table had kept the first objects, so merge_delta took nothing out (the old and the new
# pieces side by side, a name twice) or the table compared equal to the previous one and a
# deleted Service stayed in the kernel (tests/test_service_update_live.py saw it).
@example([("same", 1, 0), ("svc", 1, 0), ("policy", 0, 0)])
@example([("svc", 0, 0), ("unsvc", 0, 0)])  # _svc(0, 5) equals _svc(0, 0)
def test_each_table_holds_the_pieces_of_the_service_rules_kept_for_it(
    ops: list[tuple[str, int, int]],
) -> None:
    """The invariant the partial path rests on (merge_delta takes the pieces that went
    out of the table by identity): after every sync, the node's table holds the very
    objects of the Service rules the reconciler keeps for the next sync, each name once,
    and equals the whole merge of the policy part with every port rendered afresh."""
    nodes = {"node-1": "ns.node-1", "node-2": "ns.node-2"}
    for done in syncs(ops, "c1", nodes, FakeRunner()):
        if done.op[0] == "same":  # equal rules: nothing to send to any node
            assert not done.report.applied, done.report.applied
        policy_part = {n: r.table for n, r in render_nodes(done.engine, "c1").items()}
        for n in nodes:
            table = done.report.tables[n]
            assert canonical(table) == canonical(merge(policy_part[n], done.whole[n])), done.op
            held = held_objects(table)
            assert all(id(x) in held for _, p in done.rules[n].ports for x in p.objects()), (
                done.op,
                n,
                "the table holds other objects than the rules kept for it",
            )
