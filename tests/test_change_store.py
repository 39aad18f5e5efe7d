"""apply/delete/label against the store, without root: the next state is validated whole and
written in one transaction; stored objects read back mean what they meant."""

from __future__ import annotations

import pytest
import yaml

from podnet.cli import change
from podnet.cli.cluster import _record
from podnet.daemon.reconcile import _without, network_config, snapshot, stored_objects
from podnet.model.cluster import load_cluster
from podnet.model.errors import InputError
from podnet.model.load import load
from podnet.render.topology import render
from podnet.state.network import NetworkConfig
from podnet.state.placement import place
from podnet.state.store import Store
from podnet.testing.builders import namespace, pod

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
    _record(tmp_path / "state", cluster, place(cluster, net, strict=True), "c1", "host-gw", net)
    with Store.open(tmp_path / "state") as s:
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
        change._commit(store, [*current, *incoming.objects])
        pods = [o.name for o in store.list("Pod", "x") if o.name.startswith("web-")]
        assert len(pods) == replicas


def test_an_invalid_next_state_writes_nothing(store, tmp_path):
    before = store.revision()
    clash = pod("x/b", ip=store.held()[("x", "a")][1])  # the address pod a holds
    incoming = load([write(tmp_path, clash)])
    with pytest.raises(InputError):
        change._commit(store, [*stored_objects(store).objects, *incoming.objects])
    assert store.revision() == before
    assert ("x", "b") not in store.held()


def test_without_new_pods_drops_their_namespaces_and_node_side_links(store):
    cluster = snapshot(store)
    net = network_config(store.get_meta("config"))
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
    assert network_config(store.get_meta("config")) == NetworkConfig()


@pytest.mark.parametrize(
    "text, want", [("k=v", ("k", "v")), ("k-", ("k", None)), ("k=", ("k", ""))]
)
def test_label_arguments(text, want):
    assert change._parse_label(text) == want
