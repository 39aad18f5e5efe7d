"""The SQLite store: resource versions, host-local IPAM, meta, state directory."""

from __future__ import annotations

import pytest

from podnet.state import store as store_mod
from podnet.state.placement import place
from podnet.state.store import IpHeld, Store
from podnet.testing import cluster, pod


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "c") as s:
        yield s


def test_state_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PODNET_STATE_DIR", str(tmp_path))
    assert store_mod.state_dir("x") == tmp_path / "x"
    monkeypatch.delenv("PODNET_STATE_DIR")
    assert str(store_mod.state_dir("x")) == "/var/lib/podnet/x"


def test_resource_version_changes_only_with_the_body(store):
    rv1 = store.put("Pod", "shop", "a", {"metadata": {"name": "a"}})
    assert store.put("Pod", "shop", "a", {"metadata": {"name": "a"}}) == rv1
    rv2 = store.put("Pod", "shop", "a", {"metadata": {"name": "a", "labels": {"x": "y"}}})
    assert rv2 > rv1
    got = store.get("Pod", "shop", "a")
    assert got is not None and got.rv == rv2 and got.body["metadata"]["labels"] == {"x": "y"}


def test_list_by_namespace_and_cluster_scope(store):
    store.put("Pod", "b", "z", {})
    store.put("Pod", "a", "y", {})
    store.put("Node", None, "node-1", {})
    assert [(o.namespace, o.name) for o in store.list("Pod")] == [("a", "y"), ("b", "z")]
    assert [o.name for o in store.list("Pod", "b")] == ["z"]
    assert [o.namespace for o in store.list("Node")] == [""]


def test_deleting_a_pod_releases_its_address(store):
    store.put("Pod", "shop", "a", {})
    store.allocate("shop", "a", "node-1", "10.244.0.2")
    assert store.delete("Pod", "shop", "a")
    assert store.held() == {}
    assert not store.delete("Pod", "shop", "a")  # already gone: fine


def test_an_address_held_by_one_pod_is_never_handed_to_another(store):
    store.allocate("shop", "a", "node-1", "10.244.0.2")
    store.allocate("shop", "a", "node-1", "10.244.0.2")  # idempotent for the holder
    with pytest.raises(IpHeld, match="shop/a"):
        store.allocate("shop", "b", "node-1", "10.244.0.2")
    store.release("shop", "a")
    store.allocate("shop", "b", "node-1", "10.244.0.2")
    assert store.held() == {("shop", "b"): ("node-1", "10.244.0.2")}


def test_held_allocations_survive_replacement(store):
    c = cluster(pod("shop/a"), pod("shop/b"), nodes=2)
    first = place(c, strict=True)
    for key, ip in first.pod_ip.items():
        store.allocate(*key, first.pod_node[key], ip)
    grown = cluster(pod("shop/new"), pod("shop/a"), pod("shop/b"), nodes=2)
    again = place(grown, strict=True, held=store.held())
    assert {k: again.pod_ip[k] for k in first.pod_ip} == first.pod_ip
    assert again.pod_ip[("shop", "new")] not in first.pod_ip.values()


def test_a_failed_transaction_leaves_nothing(store):
    with pytest.raises(RuntimeError), store.transaction():
        store.put("Pod", "shop", "a", {})
        store.allocate("shop", "a", "node-1", "10.244.0.2")
        raise RuntimeError
    assert store.list("Pod") == [] and store.held() == {} and store.revision() == 0


def test_meta_and_nodes_round_trip(tmp_path):
    with Store.open(tmp_path) as s:
        s.set_meta("mode", "vxlan")
        s.set_node("node-1", "172.18.0.2", "10.244.0.0/24")
    assert Store.exists(tmp_path)
    with Store.open(tmp_path) as s:
        assert s.get_meta("mode") == "vxlan"
        assert s.get_meta("missing", 3) == 3
        assert s.nodes() == {"node-1": ("172.18.0.2", "10.244.0.0/24")}


def test_a_snapshot_reads_one_state_while_others_commit(tmp_path):
    with Store.open(tmp_path) as reader, Store.open(tmp_path) as writer:
        writer.put("Pod", "shop", "a", {})
        with reader.snapshot():
            revision = reader.revision()
            writer.put("Pod", "shop", "b", {})  # commits while the snapshot is open
            assert [o.name for o in reader.list("Pod")] == ["a"]
            assert reader.revision() == revision
        assert [o.name for o in reader.list("Pod")] == ["a", "b"]
        assert reader.revision() == revision + 1


def test_a_write_transaction_waits_for_another(tmp_path):
    """BEGIN IMMEDIATE: the second writer waits for the first instead of interleaving."""
    import threading

    order: list[str] = []
    inside = threading.Event()

    def other() -> None:
        inside.wait()
        with Store.open(tmp_path) as second, second.transaction():
            order.append("second")

    t = threading.Thread(target=other)
    t.start()
    with Store.open(tmp_path) as first, first.transaction():
        inside.set()
        t.join(0.2)  # the other thread is now waiting for the lock
        order.append("first")
    t.join()
    assert order == ["first", "second"]
