"""apply/delete/label against the store, without root: the next state is validated whole and
written in one transaction; stored objects read back mean what they meant."""

from __future__ import annotations

import threading
import time

import pytest
import yaml

from podnet.cli.label import parse_label
from podnet.controller import reconciler as reconcile
from podnet.controller.reconciler import Reconciler, _without
from podnet.model.cluster import load_cluster
from podnet.model.errors import InputError, Problem
from podnet.model.load import load
from podnet.render.topology import render
from podnet.state import changes as change
from podnet.state import snapshot as snapshot_mod
from podnet.state.allocations import Allocations
from podnet.state.changes import store_cluster
from podnet.state.network import NetworkConfig, from_meta
from podnet.state.placement import place
from podnet.state.snapshot import snapshot, stored_objects
from podnet.state.store import Store
from podnet.testing import namespace, pod

POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "p", "namespace": "x"},
    "spec": {
        "podSelector": {},
        "ingress": [
            {"from": [{"podSelector": {}}, {"namespaceSelector": {}}]},
            {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"a": "b"}}}]},
        ],
    },
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "x"},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    },
}


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "in.yaml"
    path.write_text(yaml.safe_dump_all([namespace("x"), pod("x/a", labels={"app": "a"}), POLICY]))
    cluster = load_cluster([str(path)], node_count=2)
    net = NetworkConfig()
    placement = place(cluster, net, strict=True)
    with Store.open(tmp_path / "state") as s:
        store_cluster(s, cluster, placement, "c1", "host-gw", net)
        with s.transaction():  # what the first sync records once the kernel holds it
            Allocations.between({}, placement, cluster).record(s)
        yield s


def write(tmp_path, *docs) -> str:
    path = tmp_path / "apply.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def test_empty_selectors_survive_the_store(store):
    pol = snapshot(store).policies[0]
    assert pol.spec.ingress[0].from_[0].pod_selector is not None
    assert pol.spec.ingress[0].from_[1].namespace_selector is not None
    assert pol.spec.ingress[1].from_[0].namespace_selector is not None


def test_a_workload_applied_again_replaces_its_pods(store, tmp_path):
    for replicas in (3, 1):
        incoming = load(
            [write(tmp_path, {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "replicas": replicas}})]
        )
        current = [
            o
            for o in stored_objects(store).objects
            if not change._owned_by(o, {("x", "Deployment", "web")})
        ]
        change._commit(store, [*current, *incoming.objects], change.no_check)
        pods = [o.name for o in store.list("Pod", "x") if o.name.startswith("web-")]
        assert len(pods) == replicas


def test_an_invalid_next_state_writes_nothing(store, tmp_path):
    before = store.revision()
    clash = pod("x/b", ip=store.held()[("x", "a")][1])  # the address pod a holds
    incoming = load([write(tmp_path, clash)])
    with pytest.raises(InputError):
        change._commit(store, [*stored_objects(store).objects, *incoming.objects], change.no_check)
    assert store.revision() == before
    assert ("x", "b") not in store.held()


def test_without_new_pods_drops_their_namespaces_and_node_side_links(store):
    cluster = snapshot(store)
    net = from_meta(store.get_meta("config"))
    placement = place(cluster, net, held=store.held(), strict=True)
    plan = render(cluster, placement, "c1", "host-gw", net)
    pod_ns = next(ns.name for ns in plan.namespaces if ns.role == "pod")
    reduced = _without(plan, {pod_ns})
    assert pod_ns not in {ns.name for ns in reduced.namespaces}
    for ns in reduced.namespaces:
        assert not any(link.peer and link.peer.netns == pod_ns for link in ns.links)
        devs = {link.name for link in ns.links}
        assert all(r.dev in devs or r.dev in ("eth0", "flannel.1") for r in ns.routes)


def test_network_config_round_trips_through_meta(store):
    assert from_meta(store.get_meta("config")) == NetworkConfig()


@pytest.mark.parametrize(
    "text, want", [("k=v", ("k", "v")), ("k-", ("k", None)), ("k=", ("k", ""))]
)
def test_label_arguments(text, want):
    assert parse_label(text) == want


def test_two_concurrent_applies_of_different_objects_both_survive(store, tmp_path, monkeypatch):
    """Each apply reads, validates and writes in one transaction: the second one starts
    from the first one's result instead of deleting what it did not read."""
    slow_build = change.build

    def build(*args, **kwargs):
        time.sleep(0.2)  # a long validation: both would have read the old state
        return slow_build(*args, **kwargs)

    monkeypatch.setattr(change, "build", build)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def apply(name: str) -> None:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(pod(f"x/{name}")))
        incoming = load([str(path)]).objects
        try:
            with Store.open(tmp_path / "state") as mine:
                start.wait()
                change.apply_objects(mine, incoming)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=apply, args=(n,)) for n in ("b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [o.name for o in store.list("Pod", "x")] == ["a", "b", "c"]


def test_delete_namespace_takes_its_objects_and_keeps_the_rest(store, tmp_path):
    path = write(tmp_path, namespace("y"), pod("y/q"))
    change.apply_objects(store, load([path]).objects)
    change.delete_object(store, "Namespace", "", "x")
    kept = {
        (o.kind, o.namespace, o.name)
        for k in ("Namespace", "Pod", "NetworkPolicy")
        for o in store.list(k)
    }
    assert kept == {("Namespace", "", "y"), ("Pod", "y", "q")}


def test_label_writes_nothing_when_refused(store):
    before = store.revision()
    with pytest.raises(InputError, match="--overwrite"):
        change.label_object(store, "Pod", "x", "a", [("app", "z")])
    assert store.revision() == before
    assert change.label_object(store, "Pod", "x", "a", [("app", "z")], overwrite=True) > before
    assert store.get("Pod", "x", "a").body["metadata"]["labels"] == {"app": "z"}


def test_desired_reads_one_revision_whole(store, tmp_path, monkeypatch):
    """A change committed while the reconciler reads is wholly in the next sync, not half
    in this one (the revision it reports and the objects it read belong together)."""
    before = store.revision()
    read = snapshot_mod.stored_objects
    once = []

    def commit_meanwhile(s, cache=None):
        if not once:  # (apply reads the store with this function too)
            once.append(True)
            with Store.open(tmp_path / "state") as other:
                change.apply_objects(other, load([write(tmp_path, pod("x/late"))]).objects)
        return read(s, cache)

    monkeypatch.setattr(snapshot_mod, "stored_objects", commit_meanwhile)
    d = Reconciler(tmp_path / "state", "c1").desired()
    assert d.revision == before
    assert "late" not in {p.metadata.name for p in d.cluster.pods}
    assert store.revision() > before  # the change is stored, for the next sync


def _new_pod(store, tmp_path) -> int:
    return change.apply_objects(store, load([write(tmp_path, pod("x/new"))]).objects)[1]


def _render_fails(*args, **kwargs):
    raise InputError([Problem(None, "", "", "cannot render")])


def _kernel_fails(self, *args, **kwargs):
    raise OSError("netlink said no")


@pytest.mark.parametrize(
    "where, patch",
    [("render", ("render", _render_fails)), ("kernel", ("Reconciler._apply", _kernel_fails))],
    ids=["render", "kernel"],
)
def test_a_failed_sync_leaves_ipam_as_it_was(store, tmp_path, monkeypatch, where, patch):
    _new_pod(store, tmp_path)
    held, synced = store.held(), store.get_meta("synced_revision")
    name, fake = patch
    if "." in name:
        monkeypatch.setattr(reconcile.Reconciler, name.split(".")[1], fake)
    else:
        monkeypatch.setattr(reconcile, name, fake)
    result = Reconciler(tmp_path / "state", "c1").sync()
    assert not result.ok and result.error
    assert store.held() == held and ("x", "new") not in held
    assert store.get_meta("synced_revision") == synced


def test_a_successful_sync_records_allocations_and_its_revision(store, tmp_path, monkeypatch):
    revision = _new_pod(store, tmp_path)
    change.delete_object(store, "Pod", "x", "a")
    revision = store.revision()
    monkeypatch.setattr(
        reconcile.Reconciler, "_apply", lambda self, d, full, result, progress: None
    )
    rec = Reconciler(tmp_path / "state", "c1")
    assert rec.desired().allocations  # x/new is not recorded yet
    result = rec.sync()
    assert result.ok and result.revision == revision
    assert set(store.held()) == {("x", "new")}
    assert store.get_meta("synced_revision") == revision
    assert not rec.desired().allocations


def test_host_network_pods_hold_no_address(store, tmp_path, monkeypatch):
    # Two hostNetwork pods on one node share its address: neither is recorded in IPAM.
    docs = [pod(f"x/h{i}", host_network=True, node="node-1") for i in (1, 2)]
    change.apply_objects(store, load([write(tmp_path, *docs)]).objects)
    monkeypatch.setattr(
        reconcile.Reconciler, "_apply", lambda self, d, full, result, progress: None
    )
    rec = Reconciler(tmp_path / "state", "c1")
    assert rec.sync().ok
    assert set(store.held()) == {("x", "a")}
    assert not rec.desired().allocations and rec.assume_synced()


def test_ups_parse_cache_gives_the_cluster_a_fresh_read_gives(tmp_path):
    """`up` hands the first sync the objects it validated; the sync must see the same
    cluster as one that validates every stored body again (a Deployment's pods included)."""
    path = tmp_path / "in.yaml"
    path.write_text(yaml.safe_dump_all([namespace("x"), pod("x/a"), POLICY, DEPLOYMENT]))
    cluster = load_cluster([str(path)], node_count=2)
    net = NetworkConfig()
    with Store.open(tmp_path / "s") as s:
        cache = store_cluster(s, cluster, place(cluster, net, strict=True), "c1", "host-gw", net)
    assert len(cache) > 4  # the namespace, the pods, the policy, the Deployment
    primed = Reconciler(tmp_path / "s", "c1", parsed=cache).desired()
    fresh = Reconciler(tmp_path / "s", "c1").desired()

    def dump(c):
        return [
            o.model_dump(mode="json", by_alias=True)
            for objs in (c.namespaces, c.nodes, c.pods, c.policies)
            for o in objs
        ]

    assert dump(primed.cluster) == dump(fresh.cluster)
    assert primed.runtime == fresh.runtime and primed.plan == fresh.plan
