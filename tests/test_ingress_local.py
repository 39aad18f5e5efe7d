"""`apply` of Ingresses checked locally (state.ingress_local) gives what validating the
whole next state gives: the same lines, the same errors (an unknown Service or port, a
classless Ingress among several default classes), the same stored bodies (status filled for
the Ingresses podnet serves), nothing written on an error; and it reads no more of the
store than the objects it names."""

from __future__ import annotations

import pytest
import yaml

from podnet.model.cluster import load_cluster
from podnet.model.errors import InputError
from podnet.model.load import load
from podnet.state import changes as change
from podnet.state import ingress_addon, ingress_checks, local_change
from podnet.state.allocations import Allocations
from podnet.state.changes import store_cluster
from podnet.state.network import NetworkConfig
from podnet.state.placement import place
from podnet.state.service_alloc import with_services
from podnet.state.store import Store
from podnet.testing import apply_outcome, ingress, namespace, pod, rule, service, store_contents

WEB = service("x/web", {"app": "a"}, [{"name": "http", "port": 80, "targetPort": 8080}])
API = service("x/api", {"app": "a"}, [{"port": 8443, "targetPort": 8080, "protocol": "TCP"}])
STORED_INGRESS = ingress("x/site", [rule("a.test", ("/", "Prefix", "web"))])


def other_class(name: str = "other", default: bool = False, controller: str = "x/y") -> dict:
    meta: dict = {"name": name}
    if default:
        meta["annotations"] = {"ingressclass.kubernetes.io/is-default-class": "true"}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": meta,
        "spec": {"controller": controller},
    }


def make_store(path, *extra: dict, addon: str = "auto", stored: dict = STORED_INGRESS):
    """A cluster as `up` stores it: the controller add-on, allocated Services, status."""
    path.mkdir(exist_ok=True)
    src = path / "in.yaml"
    docs = [namespace("x"), pod("x/a", labels={"app": "a"}), WEB, API, stored, *extra]
    src.write_text(yaml.safe_dump_all(docs))
    net = NetworkConfig()
    cluster = load_cluster([str(src)], node_count=2)
    if addon == "auto":
        cluster = ingress_addon.with_ingress_controller(cluster)
    cluster = with_services(cluster, net)
    ingress_checks.check(cluster)
    cluster = ingress_checks.with_ingress_status(cluster)
    placement = place(cluster, net, strict=True)
    s = Store.open(path / "state")
    store_cluster(s, cluster, placement, "c1", "host-gw", net)
    with s.transaction():
        Allocations.between({}, placement, cluster).record(s)
        s.set_meta("ingress_addon", addon)
    return s


KINDS = ("Namespace", "Pod", "Service", "Ingress", "IngressClass", "NetworkPolicy")


def contents(store: Store) -> dict:
    return store_contents(store, KINDS)


def outcome(store: Store, path, docs) -> tuple:
    return apply_outcome(store, path, docs, KINDS)


def site(name: str = "site", *paths, **spec) -> dict:
    return ingress(
        f"x/{name}", [rule(f"{name}.test", *(paths or [("/", "Prefix", "web")]))], **spec
    )


CASES = {
    # local
    "new ingress": ([site("b")], True),
    "ingress updated": ([site("site", ("/v2", "Exact", "web", "http"))], True),
    "ingress unchanged": ([STORED_INGRESS], True),
    "port by name": ([site("b", ("/", "Prefix", "web", "http"))], True),
    "two ingresses and a policy": (
        [
            site("c", ("/", "Prefix", "api", 8443)),
            site("b"),
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "p", "namespace": "x"},
                "spec": {"podSelector": {}},
            },
        ],
        True,
    ),
    "another controller's class": ([site("b", ingressClassName="other")], True),
    "default backend": (
        [ingress("x/d", defaultBackend={"service": {"name": "api", "port": {"number": 8443}}})],
        True,
    ),
    "unknown service": ([site("b", ("/", "Prefix", "nope"))], True),
    "unknown port number": ([site("b", ("/", "Prefix", "web", 81))], True),
    "unknown port name": ([site("b", ("/", "Prefix", "api", "http"))], True),
    "service of another namespace": (
        [ingress("y/b", [rule("b.test", ("/", "Prefix", "web"))])],
        False,
    ),
    "problems of two ingresses": (
        [site("z", ("/", "Prefix", "web", 99)), site("b", ("/", "Prefix", "nope"))],
        True,
    ),
    # not local: the whole next state decides
    "ingress and its service": (
        [site("b", ("/", "Prefix", "new")), service("x/new", {"app": "a"})],
        False,
    ),
    "ingress class": ([other_class(), site("b")], False),
    "key given twice": ([site("b"), site("b", ("/x", "Exact", "web"))], False),
}


@pytest.mark.parametrize("docs, local", CASES.values(), ids=CASES.keys())
def test_local_ingress_apply_equals_the_whole_state_apply(tmp_path, monkeypatch, docs, local):
    (tmp_path / "fast").mkdir()
    (tmp_path / "whole").mkdir()
    extra = [other_class()]
    with (
        make_store(tmp_path / "fast", *extra) as fast,
        make_store(tmp_path / "whole", *extra) as whole,
    ):
        objects = load([str(_write(tmp_path / "fast", docs))]).objects
        with fast.transaction():
            try:
                found = local_change.local_writes(fast, objects, change.body_of) is not None
            except InputError:
                found = True  # refused locally
        assert found == local
        got = outcome(fast, tmp_path / "fast", docs)
        monkeypatch.setattr(change, "local_writes", lambda *a: None)
        want = outcome(whole, tmp_path / "whole", docs)
    assert got == want


def test_several_default_classes_refuse_a_classless_ingress_alike(tmp_path, monkeypatch):
    extra = [other_class("d1", default=True, controller=ingress_addon.CONTROLLER)]
    extra.append(other_class("d2", default=True))
    with pytest.raises(InputError, match="several IngressClasses"):
        make_store(tmp_path / "probe", *extra)  # the stored Ingress has no class either
    docs = [site("b", ingressClassName="d1"), site("c")]
    stored = ingress("x/site", [rule("a.test", ("/", "Prefix", "web"))], ingressClassName="d1")
    fast, whole = (make_store(tmp_path / d, *extra, stored=stored) for d in ("fast", "whole"))
    with fast, whole:
        got = outcome(fast, tmp_path / "fast", docs)
        monkeypatch.setattr(change, "local_writes", lambda *a: None)
        want = outcome(whole, tmp_path / "whole", docs)
    assert "several IngressClasses" in str(got[0])
    assert got == want


def test_without_the_controller_the_whole_path_adds_it(tmp_path):
    with make_store(tmp_path, addon="off") as store:
        store.delete("IngressClass", None, "other")
    with Store.open(tmp_path / "state") as store:
        with store.transaction():
            store.set_meta("ingress_addon", "auto")
            objects = load([str(_write(tmp_path, [site("b")]))]).objects
            assert local_change.local_writes(store, objects, change.body_of) is None
        change.apply_objects(store, objects)
        assert store.get("Pod", "ingress-nginx", ingress_addon.pod_name()) is not None
        assert store.get("Ingress", "x", "b").body["status"]["loadBalancer"]["ingress"]


def test_a_local_ingress_apply_reads_only_what_it_names(tmp_path, monkeypatch):
    def whole_store_read(*args, **kwargs):
        raise AssertionError("read the whole store")

    monkeypatch.setattr(change, "_stored", whole_store_read)
    monkeypatch.setattr(change, "build", whole_store_read)
    with make_store(tmp_path) as store:
        before = store.revision()
        docs = [site(f"s{i}") for i in range(5)]
        lines, revision = change.apply_objects(store, load([str(_write(tmp_path, docs))]).objects)
        assert lines == [f"ingress.networking.k8s.io/s{i} created" for i in range(5)]
        assert revision == before + 5
        lb = store.get("Service", "ingress-nginx", "ingress-nginx-controller").body["status"]
        assert store.get("Ingress", "x", "s3").body["status"] == lb


def test_a_bad_backend_is_refused_with_nothing_written(tmp_path):
    with make_store(tmp_path) as store:
        before = contents(store), store.revision()
        docs = [site("b"), site("c", ("/", "Prefix", "web", 81))]
        with pytest.raises(InputError, match=r"Ingress x/c: spec\.rules\[0\]\.http\.paths\[0\]"):
            change.apply_objects(store, load([str(_write(tmp_path, docs))]).objects)
        assert (contents(store), store.revision()) == before


def _write(path, docs):
    src = path / "probe.yaml"
    src.write_text(yaml.safe_dump_all(docs))
    return src


def test_a_stored_service_the_model_refuses_leaves_it_to_the_whole_path(tmp_path):
    with make_store(tmp_path) as store, store.transaction():
        store.put("Service", "x", "odd", {"metadata": {"name": "odd"}, "spec": {"ports": 7}})
        docs = [site("b", ("/", "Prefix", "odd"))]
        objects = load([str(_write(tmp_path, docs))]).objects
        assert local_change.local_writes(store, objects, change.body_of) is None


def test_a_dangling_stored_ingress_does_not_block_other_changes(tmp_path, monkeypatch):
    """After the Service an Ingress names is deleted (the controller answers 503 for it),
    the whole-state path refuses only Ingresses the change creates or changes, as the local
    path does: an unrelated change goes through, a change of that Ingress does not."""
    with make_store(tmp_path) as store:
        change.delete_object(store, "Service", "x", "web")
        unrelated = [service("x/other", {"app": "a"})]  # not local: the whole path
        lines, _ = change.apply_objects(store, load([str(_write(tmp_path, unrelated))]).objects)
        assert lines == ["service/other created"]
        touched = [site("site", ("/v2", "Exact", "web"))]
        for path in ("local", "whole"):
            if path == "whole":
                monkeypatch.setattr(change, "local_writes", lambda *a: None)
            with pytest.raises(InputError, match=r'Not found: Service "web"'):
                change.apply_objects(store, load([str(_write(tmp_path, touched))]).objects)
