"""The drift watch on real namespaces: quiet while nothing changes (traffic-made neighbours
included), and each kind of change behind the reconciler's back is seen. Needs root."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from podnet.datapath import netns
from podnet.datapath.drift import DriftWatch, nft_generation, nft_socket

pytestmark = pytest.mark.datapath


@pytest.fixture
def node() -> Iterator[tuple[str, str]]:
    prefix = f"podnet.drift{uuid.uuid4().hex[:6]}."
    name = prefix + "node.n1"
    with netns.Worker() as worker:
        worker.create(name)
    try:
        yield prefix, name
    finally:
        netns.remove(name)
        assert not netns.listing(prefix)


def ip(name: str, *args: str) -> None:
    subprocess.run(["ip", "netns", "exec", name, *args], check=True, capture_output=True)


def armed(prefix: str, name: str) -> DriftWatch:
    watch = DriftWatch(prefix)
    watch.arm([name], [name], {"n1": name})
    return watch


def test_nothing_changed_is_no_drift_and_arming_takes_our_own_changes(node):
    prefix, name = node
    ip(name, "ip", "link", "add", "a0", "type", "veth", "peer", "name", "a1")
    watch = armed(prefix, name)
    try:
        assert watch.drift() is None
        assert watch.drift() is None
    finally:
        watch.close()


@pytest.mark.parametrize(
    "change, seen",
    [
        (("nft", "add", "table", "inet", "x"), "nft ruleset"),
        (("ip", "link", "add", "b0", "type", "veth", "peer", "name", "b1"), "netlink"),
        (("ip", "route", "add", "10.9.0.0/24", "dev", "a0"), "netlink"),
        (("ip", "neigh", "add", "10.9.0.5", "lladdr", "aa:bb:cc:dd:ee:ff", "dev", "a0"), "netlink"),
    ],
    ids=["nft-table", "link", "route", "permanent-neighbour"],
)
def test_a_change_behind_our_back_is_drift(node, change, seen):
    prefix, name = node
    ip(name, "ip", "link", "add", "a0", "type", "veth", "peer", "name", "a1")
    ip(name, "ip", "link", "set", "a0", "up")
    ip(name, "ip", "link", "set", "a1", "up")
    watch = armed(prefix, name)
    try:
        ip(name, *change)
        assert seen in (watch.drift() or "")
        watch.arm([name], [name], {"n1": name})
        assert watch.drift() is None  # re-armed: the change is the new reference
    finally:
        watch.close()


def test_a_neighbour_that_traffic_makes_is_no_drift(node):
    prefix, name = node
    ip(name, "ip", "link", "add", "a0", "type", "veth", "peer", "name", "a1")
    ip(name, "ip", "link", "set", "a0", "up")
    ip(name, "ip", "link", "set", "a1", "up")
    watch = armed(prefix, name)
    try:
        ip(name, "ip", "neigh", "add", "10.9.0.6", "lladdr", "aa:bb:cc:dd:ee:01", "dev", "a0",
           "nud", "reachable")  # fmt: skip
        assert watch.drift() is None
    finally:
        watch.close()


def test_a_namespace_gone_or_added_is_drift(node):
    prefix, name = node
    watch = armed(prefix, name)
    other = prefix + "pod.x.y"
    try:
        with netns.Worker() as worker:
            worker.create(other)
        assert "unknown" in (watch.drift() or "")
        netns.remove(other)
        assert watch.drift() is None
    finally:
        netns.remove(other)
        watch.close()


def test_the_nft_generation_moves_with_each_commit(node):
    _, name = node
    with netns.Worker() as worker:
        sock = nft_socket(worker, name)
    try:
        before = nft_generation(sock)
        ip(name, "nft", "add", "table", "inet", "x")
        ip(name, "nft", "list", "ruleset")  # a listing is no commit
        assert nft_generation(sock) == before + 1
    finally:
        sock.close()


def test_arming_with_a_namespace_already_gone_reports_it_at_the_next_check(node):
    prefix, name = node
    watch = DriftWatch(prefix)
    try:
        watch.arm([name, prefix + "pod.x.gone"], [name], {"n1": name})
        assert "gone" in (watch.drift() or "")
    finally:
        watch.close()
