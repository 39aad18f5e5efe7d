"""The daemon's sync patches its snapshot, placement, IPAM difference, EndpointSlices and
policy endpoints from what the store says changed (state.follow, state.cluster_patch,
state.placement_patch, controller.endpoint_tracker, Engine(changed=...)); every one of
them must equal what a whole read and rebuild of the same store gives. No root: the
reconciler's desired state and its store records only, as a sync makes them."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from podnet.controller.reconciler import Desired, Reconciler
from podnet.model.cluster import Cluster, load_cluster
from podnet.model.errors import InputError
from podnet.model.load import load
from podnet.model.service import MANAGED_BY_LABEL
from podnet.render import dns_file, policy_nft
from podnet.render.policy_nft import render_nodes
from podnet.state import changes as change
from podnet.state.allocations import Allocations
from podnet.state.changes import body_of, store_cluster
from podnet.state.endpoint_slices import CONTROLLER
from podnet.state.labels import label_object
from podnet.state.network import NetworkConfig
from podnet.state.placement import place
from podnet.state.service_alloc import with_services
from podnet.state.store import Store
from podnet.testing import namespace, pod, policy, service

NAMESPACES = ("x", "y")
NAMES = ("a", "b", "c", "d")
APPS = ("web", "db", "cache")
NODES = ("node-1", "node-2", "node-3")
PEERS = [  # selectors of pods and namespaces: the renderer's peer sets follow every change
    {"podSelector": {"matchLabels": {"app": "web"}}},
    {
        "namespaceSelector": {"matchLabels": {"team": "blue"}},
        "podSelector": {"matchLabels": {"app": "db"}},
    },
]


class World:
    """A store of a small live cluster, the daemon's reconciler over it, and the pods'
    readiness as the stand-in would report it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ready: dict[tuple[str, str], bool] = {}
        docs = [
            namespace("x", team="blue"),
            namespace("y", team="red"),
            pod("x/a", labels={"app": "web"}, ports=[{"name": "http", "containerPort": 8080}]),
            pod("y/a", labels={"app": "db"}, node="node-2"),
            pod("y/h", labels={"app": "web"}, node="node-3", host_network=True),
            policy("x/p", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]}),
            policy(
                "y/q", {"podSelector": {}, "ingress": [{"from": PEERS}], "egress": [{"to": PEERS}]}
            ),
            service("x/web", selector={"app": "web"}, ports=[{"port": 80, "targetPort": "http"}]),
        ]
        path = root / "up.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        net = NetworkConfig()
        cluster = with_services(load_cluster([str(path)], node_count=len(NODES)), net)
        placement = place(cluster, net, strict=True)
        self.sdir = root / "state"
        with Store.open(self.sdir) as s:
            store_cluster(s, cluster, placement, "c1", "host-gw", net)
        self.rec = Reconciler(self.sdir, "c1", readiness=self.readiness)
        self.sync(incremental=False)

    def readiness(self, ns: str, name: str) -> bool:
        return self.ready.get((ns, name), False)

    def sync(self, incremental: bool = True) -> Desired:
        """What a successful sync computes and records, checked against a whole rebuild."""
        d = self.rec.desired(self.rec.last if incremental else None)
        whole = Reconciler(self.sdir, "c1", readiness=self.readiness).desired()
        assert d.revision == whole.revision
        assert same(d.cluster) == same(whole.cluster)
        assert d.placement == whole.placement
        assert d.allocations == whole.allocations
        assert d.derived == whole.derived
        assert d.engine.pods == whole.engine.pods
        assert d.engine.by_key == whole.engine.by_key
        assert d.plan == whole.plan
        assert d.runtime == whole.runtime
        assert d.services == whole.services
        # The DNS records, updated per Service, against a whole build.
        dns = self.rec.dns_records(d, full=not incremental)
        reference = dns_file.build(whole.cluster, whole.placement, "c1", whole.net, d.revision)
        assert dns.zone.records == reference.zone.records
        assert (dns.dumps(), dns.servers) == (reference.dumps(), reference.servers)
        # The renderer's PeerIndex follows the engines (patched from the last one rendered,
        # as in the daemon); the whole render must not become the one the next follows.
        got = {n: r.table for n, r in render_nodes(d.engine, "c1").items()}
        followed = policy_nft._last[:]
        assert got == {n: r.table for n, r in render_nodes(whole.engine, "c1").items()}
        policy_nft._last[:] = followed
        self.rec.adopt(d, self.rec.record(d))
        return d

    def apply(self, *docs: dict[str, Any]) -> None:
        path = self.root / "apply.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        with Store.open(self.sdir) as s:
            change.apply_objects(s, list(load([str(path)]).objects))

    def delete(self, kind: str, ns: str, name: str) -> None:
        with Store.open(self.sdir) as s, contextlib.suppress(InputError):  # not found
            change.delete_object(s, kind, ns, name)

    def label(self, kind: str, ns: str, name: str, key: str, value: str | None) -> None:
        with Store.open(self.sdir) as s:
            if s.get(kind, ns, name) is not None:
                label_object(s, kind, ns, name, [(key, value)], overwrite=True)


def same(cluster: Cluster) -> tuple[Any, ...]:
    """A cluster as the store sees it: an EndpointSlice or Endpoints object the store holds
    with an equal body keeps its identity (the one read back, not the one computed), so
    those compare by body."""
    return (
        dataclasses.replace(cluster, endpoint_slices=(), endpoints=()),
        [body_of(o) for o in cluster.endpoint_slices],
        [body_of(o) for o in cluster.endpoints],
    )


SERVICE_KINDS = ("manual", "lb", "lb-local", "clusterip", "hl", "mh")
NAMED = [{"name": "http", "port": 80, "targetPort": 8080}]


def kind_of_service(ns: str, kind: str) -> dict[str, Any]:
    """A Service named after its kind (the `lb` one changes kind: lb, lb-local, clusterip)."""
    if kind == "manual":
        return service(f"{ns}/manual", ports=[{"name": "http", "port": 80, "targetPort": 80}])
    if kind in ("hl", "mh"):  # headless: the DNS records follow the slices
        selector = {"app": "web"} if kind == "hl" else None
        return service(f"{ns}/{kind}", selector=selector, ports=NAMED, clusterIP="None")
    spec: dict[str, Any] = {"type": "ClusterIP"}
    if kind != "clusterip":
        spec = {"type": "LoadBalancer"}
    if kind == "lb-local":
        spec["externalTrafficPolicy"] = "Local"
    return service(f"{ns}/lb", selector={"app": "web"}, **spec)


def user_slice(ns: str, svc: str, name: str, controller: bool, ip: str) -> dict[str, Any]:
    labels = {"kubernetes.io/service-name": svc} if svc else {}  # "": a slice of no Service
    if controller:
        labels["endpointslice.kubernetes.io/managed-by"] = "endpointslice-controller.k8s.io"
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{svc}-user-{name}", "namespace": ns, "labels": labels},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "nodeName": "node-2", "conditions": {"ready": True}}],
    }


def user_endpoints(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": ns},
        "subsets": [{"addresses": [{"ip": "10.250.0.9"}], "ports": [{"port": 80}]}],
    }


ns_ = st.sampled_from(NAMESPACES)
name_ = st.sampled_from(NAMES)
app_ = st.sampled_from(APPS)
CHANGE = st.one_of(
    st.tuples(st.just("label pod"), ns_, name_, st.sampled_from((*APPS, None))),
    st.tuples(st.just("label ns"), ns_, st.sampled_from(("blue", "red", None))),
    st.tuples(
        st.just("add pod"),
        ns_,
        name_,
        app_,
        st.sampled_from((None, *NODES)),
        st.booleans(),  # hostNetwork (with a node: a floating one is placed whole)
        st.booleans(),  # a nodeSelector
        st.booleans(),  # a named port
    ),
    st.tuples(st.just("delete pod"), ns_, name_),
    st.tuples(st.just("policy"), ns_, app_, st.booleans()),
    st.tuples(st.just("service"), ns_, app_, st.booleans()),
    st.tuples(st.just("ready"), ns_, name_, st.booleans()),
    st.tuples(st.just("namespace"), st.sampled_from(("z", "y")), st.booleans()),
    # Services the topology reads (a LoadBalancer, Local: its routes follow its endpoints;
    # a healthCheckNodePort) or not (selectorless, with the slices the user writes).
    st.tuples(st.just("kind of service"), ns_, st.sampled_from(SERVICE_KINDS), st.booleans()),
    st.tuples(
        st.just("slice"),
        ns_,
        st.sampled_from(("manual", "lb", "web", "s-db", "", "mh")),  # whose slice it claims to be
        st.sampled_from(("a", "b")),
        st.booleans(),  # labelled as the controller's
        st.sampled_from((None, "10.250.0.1", "10.250.0.2")),  # None: deleted
    ),
    st.tuples(st.just("endpoints"), ns_, st.sampled_from(("manual", "web")), st.booleans()),
    st.tuples(st.just("drop controller slices"), ns_),  # the controllers write them again
)


def run(world: World, c: tuple[Any, ...]) -> None:
    what = c[0]
    if what == "label pod":
        world.label("Pod", c[1], c[2], "app", c[3])
    elif what == "label ns":
        world.label("Namespace", "", c[1], "team", c[2])
    elif what == "add pod":
        _, ns, name, app, node, host, selector, named = c
        doc = pod(
            f"{ns}/{name}",
            labels={"app": app},
            ports=[{"name": "http", "containerPort": 8080}] if named else None,
            node=node,
            host_network=host and node is not None,
        )
        if selector:
            doc["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "node-2"}
        world.apply(doc)
    elif what == "delete pod":
        world.delete("Pod", c[1], c[2])
    elif what == "policy":
        _, ns, app, add = c
        if add:
            spec = {
                "podSelector": {"matchLabels": {"app": app}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}],
            }
            world.apply(policy(f"{ns}/p-{app}", spec))
        else:
            world.delete("NetworkPolicy", ns, f"p-{app}")
    elif what == "service":
        _, ns, app, add = c
        if add:
            world.apply(service(f"{ns}/s-{app}", selector={"app": app}))
        else:
            world.delete("Service", ns, f"s-{app}")
    elif what == "ready":
        world.ready[(c[1], c[2])] = c[3]
    elif what == "kind of service":
        _, ns, kind, add = c
        name = kind if kind in ("manual", "hl", "mh") else "lb"
        if add:
            world.apply(kind_of_service(ns, kind))
        else:
            world.delete("Service", ns, name)
    elif what == "slice":
        _, ns, svc, name, controller, ip = c
        if ip is None:
            world.delete("EndpointSlice", ns, f"{svc}-user-{name}")
        else:
            world.apply(user_slice(ns, svc, name, controller, ip))
    elif what == "drop controller slices":
        with Store.open(world.sdir) as s:
            for o in s.list("EndpointSlice", c[1]):
                if o.body["metadata"].get("labels", {}).get(MANAGED_BY_LABEL) == CONTROLLER:
                    change.delete_object(s, "EndpointSlice", c[1], o.name)
    elif what == "endpoints":
        _, ns, name, add = c
        if add:
            world.apply(user_endpoints(ns, name))
        else:
            world.delete("Endpoints", ns, name)
    elif what == "namespace":
        if c[2]:
            world.apply(namespace(c[1]))
        else:
            world.delete("Namespace", "", c[1])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.lists(CHANGE, min_size=1, max_size=3), min_size=1, max_size=6))
@example(
    [
        [("kind of service", "x", "mh", True)],
        [("slice", "x", "mh", "a", False, "10.250.0.1")],
        [("slice", "x", "mh", "a", False, "10.250.0.2")],
        [("slice", "x", "mh", "a", False, None)],
    ]
)
@example(
    [
        [("kind of service", "x", "hl", True)],
        [("ready", "x", "a", True)],
        [("ready", "x", "a", False)],
    ]
)
# The per-Service change tracking's own cases, always tried: an object the controllers own
# written by someone else, a Service the topology reads, a selectorless one and its slices.
@example([[("endpoints", "x", "web", True)], [("endpoints", "x", "web", False)]])
@example(
    [[("drop controller slices", "x")], [("add pod", "x", "b", "web", None, False, False, True)]]
)
@example(
    [
        [("slice", "x", "web", "a", True, "10.250.0.1")],
        [("slice", "y", "web", "a", True, "10.250.0.2")],
    ]
)
@example(
    [
        [("kind of service", "x", "lb-local", True)],
        [("ready", "x", "a", True)],
        [("kind of service", "x", "clusterip", True)],
    ]
)
@example(
    [
        [("kind of service", "x", "manual", True)],
        [("slice", "x", "manual", "a", False, "10.250.0.1")],
        [("slice", "x", "manual", "b", True, "10.250.0.2")],
        [("slice", "x", "manual", "a", False, None)],
    ]
)
@example(
    [
        [("service", "x", "web", True)],
        [("slice", "x", "s-web", "a", False, "10.250.0.1")],
        [("service", "x", "web", False)],
    ]
)
def test_patched_equals_rebuilt(tmp_path_factory: pytest.TempPathFactory, steps: Any) -> None:
    world = World(tmp_path_factory.mktemp("follow"))
    for batch in steps:  # several changes may land between two syncs
        for c in batch:
            run(world, c)
        world.sync()


def test_a_label_change_is_patched_not_rebuilt(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.label("Pod", "x", "a", "app", "db")
    d = world.sync()
    assert d.followed is not None and not d.followed.whole
    assert d.followed.pods == {("x", "a")}
    world.apply(pod("x/new", labels={"app": "web"}))
    d = world.sync()
    assert d.followed is not None and d.followed.pods == {("x", "new")}
    assert d.allocations.allocate.keys() == {("x", "new")}


def test_the_peer_index_is_patched(tmp_path: Path) -> None:
    """A relabelling into a class that exists keeps the selector compiler (its memoised
    masks) of the last sync; the tables are still those of a whole render (World.sync)."""
    world = World(tmp_path)
    world.apply(pod("x/b", labels={"app": "db"}, ports=[{"name": "http", "containerPort": 8080}]))
    world.sync()
    before = policy_nft._last[0]
    world.label("Pod", "x", "b", "app", "web")  # as x/a: no new class
    world.sync()
    after = policy_nft._last[0]
    assert after is not before and after._compiler is before._compiler


def test_pods_added_side_by_side(tmp_path: Path) -> None:
    """Several pods inserted next to each other in one sync, of different classes: every
    patched position must be right (World.sync compares the rendered tables)."""
    world = World(tmp_path)
    world.apply(
        pod("x/b", labels={"app": "db"}),
        pod("x/c", labels={"app": "web"}),
        pod("x/d", labels={"app": "cache"}),
    )
    world.sync()
    world.delete("Pod", "x", "b")
    world.delete("Pod", "x", "c")
    world.sync()


def test_a_new_node_rebuilds_whole(tmp_path: Path) -> None:
    """A pod naming a node that does not exist: the patch declines, the whole build says
    what is wrong (the node derived, as at `up`)."""
    world = World(tmp_path)
    world.apply(pod("x/far", node="node-9"))
    d = world.sync()
    assert d.followed is not None and d.followed.whole


def test_changes_since_reports_deletions_until_compacted(tmp_path: Path) -> None:
    with Store.open(tmp_path) as s:
        s.put("Pod", "x", "a", {"metadata": {"name": "a"}})
        r1 = s.revision()
        s.put("Pod", "x", "b", {"metadata": {"name": "b"}})
        s.delete("Pod", "x", "a")
        got = s.changes_since(r1)
        assert got is not None
        assert [(o.kind, o.namespace, o.name) for o in got.changed] == [("Pod", "x", "b")]
        assert got.deleted == [("Pod", "x", "a")]
        s.put("Pod", "x", "a", {"metadata": {"name": "a"}})  # created again
        again = s.changes_since(r1)
        assert again is not None and again.deleted == []
        assert {o.name for o in again.changed} == {"a", "b"}
        s.compact(s.revision())
        assert s.changes_since(r1) is None  # its tombstones may be gone: read whole
        assert s.changes_since(s.revision()) is not None


def test_allocations_between_is_the_reference(tmp_path: Path) -> None:
    """The patched IPAM difference is compared with `Allocations.between` above; here the
    reference itself: a first sync allocates every pod not on the host's network."""
    world = World(tmp_path)
    with Store.open(world.sdir) as s:
        held = s.held()
    assert ("x", "a") in held and ("y", "h") not in held
    assert not Allocations.between(held, world.rec.last.placement, world.rec.last.cluster)  # type: ignore[union-attr]
