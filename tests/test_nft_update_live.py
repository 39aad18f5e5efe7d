"""nftables.text.update against the kernel: over random sequences of changes (those of
tests/test_policy_scope.py), a node namespace that only ever received the difference holds
exactly what a namespace that received each whole table holds, counters of the objects both
tables keep go on counting, and the kernel accepts every transaction (which orders adds,
element changes and deletes so that each reference is valid)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_policy_scope import CIDRS, CLUSTER, IPS, change, engine_of, initial, step

from podnet.datapath import netns
from podnet.datapath.nft import NetnsRunner
from podnet.nftables import text
from podnet.render import kernel_names
from podnet.render.policy_nft import render_all
from podnet.testing import unique_cluster

pytestmark = pytest.mark.datapath

NODES = ("node-1", "node-2", "node-3")


@pytest.fixture(scope="module")
def spaces() -> Iterator[dict[str, tuple[str, str]]]:
    """node -> (the namespace that gets differences, the one that gets whole tables)."""
    name = unique_cluster("nu")
    out = {
        n: (
            kernel_names.node_netns(name, f"{n}-u"),
            kernel_names.node_netns(name, f"{n}-r"),
        )
        for n in NODES
    }
    try:
        with netns.Worker() as worker:
            for pair in out.values():
                for ns in pair:
                    worker.create(ns)
        yield out
    finally:
        for pair in out.values():
            for ns in pair:
                netns.remove(ns)
        assert not netns.listing(kernel_names.netns_prefix(name))


def listing(ns: str) -> list[str]:
    """podnet's table as the kernel lists it, without handles, in a canonical order."""
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-j", "list", "table", "inet",
         kernel_names.table_name(CLUSTER)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip

    def canon(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: canon(v) for k, v in x.items() if k != "handle"}
        if isinstance(x, list):
            return sorted((canon(v) for v in x), key=json.dumps)
        return x

    items = json.loads(out.stdout)["nftables"]
    return sorted(json.dumps(canon(i), sort_keys=True) for i in items if "metainfo" not in i)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(change(IPS, CIDRS), min_size=1, max_size=6))
def test_the_difference_leaves_what_a_replace_leaves(
    spaces: dict[str, tuple[str, str]], changes: list[tuple[Any, ...]]
) -> None:
    runner = NetnsRunner()
    state = initial()
    tables = render_all(engine_of(state), CLUSTER)
    for node, (upd, rep) in spaces.items():
        runner.apply(upd, tables[node])
        runner.apply(rep, tables[node])
    for ch in changes:
        step(state, ch)
        new = {**tables, **render_all(engine_of(state), CLUSTER)}  # a node without pods goes
        for node, (upd, rep) in spaces.items():
            assert runner.update(upd, tables[node], new[node]), ch
            runner.apply(rep, new[node])
            assert listing(upd) == listing(rep), (node, ch)
        tables = new


def test_counters_both_tables_hold_keep_counting(spaces: dict[str, tuple[str, str]]) -> None:
    runner = NetnsRunner()
    state = initial()
    state["policies"]["x/p1"] = {"podSelector": {}, "ingress": [{}]}
    before = render_all(engine_of(state), CLUSTER)["node-1"]
    upd = spaces["node-1"][0]
    counted = {c.name: (7, 700) for c in before.counters}
    runner.apply(upd, before.with_counter_values(counted))
    state["pods"]["x/b"]["labels"] = {"pod": "b", "app": "web"}  # not x/a's node's pod
    state["policies"]["x/p2"] = {"podSelector": {}, "egress": [{}]}
    after = render_all(engine_of(state), CLUSTER)["node-1"]
    assert after != before
    assert runner.update(upd, before, after)
    values = runner.list_counters(upd)
    kept = {c.name for c in before.counters} & {c.name for c in after.counters}
    assert kept and all(values[n] == (7, 700) for n in kept)
    assert all(values[c.name] == (0, 0) for c in after.counters if c.name not in kept)
    assert text.update(after, after) == ""
