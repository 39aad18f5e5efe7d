"""`apply` of a local change (state.local_change) gives what validating the whole next state
gives: the same lines, the same errors, the same stored objects; and it reads no more of
the store than the objects it touches."""

from __future__ import annotations

import copy

import pytest
import yaml

from podnet.model.cluster import load_cluster
from podnet.model.errors import InputError
from podnet.model.load import load
from podnet.state import changes as change
from podnet.state import local_change
from podnet.state.allocations import Allocations
from podnet.state.changes import store_cluster
from podnet.state.network import NetworkConfig
from podnet.state.placement import place
from podnet.state.store import Store
from podnet.testing import apply_outcome, namespace, pod, store_contents

POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "p", "namespace": "x"},
    "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]},
}


def policy(name: str = "p", ns: str = "x", **spec) -> dict:
    doc = copy.deepcopy(POLICY)
    doc["metadata"] = {"name": name, "namespace": ns}
    doc["spec"].update(spec)
    return doc


def stored_pod(**kw) -> dict:
    return pod("x/a", labels={"app": "a"}, ports=[{"name": "http", "containerPort": 80}], **kw)


def make_store(path):
    src = path / "in.yaml"
    src.write_text(yaml.safe_dump_all([namespace("x", team="t"), stored_pod(), POLICY]))
    cluster = load_cluster([str(src)], node_count=2)
    net = NetworkConfig()
    placement = place(cluster, net, strict=True)
    s = Store.open(path / "state")
    store_cluster(s, cluster, placement, "c1", "host-gw", net)
    with s.transaction():
        Allocations.between({}, placement, cluster).record(s)
    return s


KINDS = ("Namespace", "Node", "Pod", "NetworkPolicy", "Service")


def contents(store: Store) -> dict:
    return store_contents(store, KINDS)


def outcome(store: Store, path, docs) -> tuple:
    return apply_outcome(store, path, docs, KINDS)


def relabelled(labels: dict) -> dict:
    return stored_pod() | {"metadata": stored_pod()["metadata"] | {"labels": labels}}


CASES = {
    # local
    "new policy": ([policy("q")], True),
    "policy updated": ([policy(ingress=[])], True),
    "policy unchanged": ([POLICY], True),
    "pod relabelled": ([relabelled({"app": "b"})], True),
    "pod labels removed": ([relabelled({})], True),
    "pod annotated": ([stored_pod(annotations={"note": "x"})], True),
    "pod unchanged": ([stored_pod()], True),
    "namespace relabelled": ([namespace("x", team="u")], True),
    "policy and pod": ([policy("q"), relabelled({"app": "c"})], True),
    # not local: the whole next state decides
    "policy in a new namespace": ([policy(ns="y")], False),
    "pod ports changed": ([pod("x/a", labels={"app": "a"})], False),
    "new pod": ([pod("x/b")], False),
    "pod at a held address": ([pod("x/b", ip="10.244.0.2")], False),
    "key given twice": ([policy("q"), policy("q", ingress=[])], False),
    "namespace of its own": ([namespace("z")], False),
    "policy and new pod": ([policy("q"), pod("x/b")], False),
}


@pytest.mark.parametrize("docs, local", CASES.values(), ids=CASES.keys())
def test_local_apply_equals_the_whole_state_apply(tmp_path, monkeypatch, docs, local):
    (tmp_path / "fast").mkdir()
    (tmp_path / "whole").mkdir()
    with make_store(tmp_path / "fast") as fast, make_store(tmp_path / "whole") as whole:
        fast_src = load([str(_write(tmp_path / "fast", docs))]).objects
        with fast.transaction():
            found = local_change.local_writes(fast, fast_src, change.body_of)
        assert (found is not None) == local
        got = outcome(fast, tmp_path / "fast", docs)
        monkeypatch.setattr(change, "local_writes", lambda *a: None)
        want = outcome(whole, tmp_path / "whole", docs)
    assert got == want


def _write(path, docs):
    src = path / "probe.yaml"
    src.write_text(yaml.safe_dump_all(docs))
    return src


@pytest.mark.parametrize(
    "docs",
    [[policy("q")], [relabelled({"app": "b"})], [namespace("x", team="u")]],
    ids=["policy", "pod labels", "namespace labels"],
)
def test_a_local_apply_reads_only_what_it_touches(tmp_path, monkeypatch, docs):
    def whole_store_read(*args, **kwargs):
        raise AssertionError("read the whole store")

    monkeypatch.setattr(change, "_stored", whole_store_read)
    monkeypatch.setattr(change, "build", whole_store_read)
    with make_store(tmp_path) as store:
        before = store.revision()
        lines, revision = change.apply_objects(store, load([str(_write(tmp_path, docs))]).objects)
    assert revision == before + 1
    assert lines[0].split()[1] in ("created", "configured")


def test_a_bad_label_is_refused_before_anything_is_written(tmp_path):
    with make_store(tmp_path) as store:
        before = contents(store), store.revision()
        with pytest.raises(InputError, match=r"Pod x/a: metadata\.labels"):
            outcome_docs = [relabelled({"app": "-bad-"})]
            change.apply_objects(store, load([str(_write(tmp_path, outcome_docs))]).objects)
        assert (contents(store), store.revision()) == before
