"""The dashboard's API over a stored cluster (no root, no kernel): the map holds every pod,
Service and node of the store and the analyzer's verdict per pair, namespace edges count
pairs exactly, a matrix cell is explained as `explain` explains it, a stale cell is refused,
a Host other than the loopback is refused, and a change in the store reaches the event
stream. The quarantine POST's gate: tests/test_dashboard_actions.py; the flows adapter:
tests/test_dashboard_flows.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from podnet.dashboard import map_graph
from podnet.dashboard.app import create_app
from podnet.model.cluster import load_cluster
from podnet.policy.analysis import analyze
from podnet.state.changes import store_cluster
from podnet.state.network import NetworkConfig
from podnet.state.placement import place
from podnet.state.store import Store
from podnet.testing import (
    engine,
    example_docs,
    namespace,
    pod,
    policy,
    service,
    unique_cluster,
)

SHOP = str(Path(__file__).resolve().parent.parent / "examples" / "shop")
HOST = {"host": "127.0.0.1"}


# A unique name: the dashboard reads counters from the kernel namespaces of the cluster
# of that name, and another cluster called "shop" may run on this host.
NAME = unique_cluster("dash")


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    cluster = load_cluster([SHOP], node_count=2)
    net = NetworkConfig()
    sdir = tmp_path / NAME
    with Store.open(sdir) as store:
        store_cluster(store, cluster, place(cluster, net, strict=True), NAME, "host-gw", net)
    return sdir


@pytest.fixture
def client(shop: Path):
    with TestClient(create_app(NAME, shop), base_url="http://127.0.0.1") as c:
        yield c


def test_map_holds_every_pod_service_and_node(client: TestClient, shop: Path) -> None:
    doc = client.get("/api/graph").json()
    ids = {e["data"]["id"] for e in doc["elements"]}
    with Store.open(shop) as store:
        pods = {f"pod:{o.namespace}/{o.name}" for o in store.list("Pod")}
        services = {f"svc:{o.namespace}/{o.name}" for o in store.list("Service")}
        nodes = {f"node:{n}" for n in store.nodes()}
    assert pods and services and nodes
    assert pods | services | nodes <= ids
    assert doc["edgeLevel"] == "pod"


def test_map_edges_are_analyzes_verdicts(client: TestClient) -> None:
    doc = client.get("/api/graph").json()
    edges = {
        (e["data"]["source"][4:], e["data"]["target"][4:], e["data"]["port"]): e["data"]["verdict"]
        for e in doc["elements"]
        if "policy" in e.get("classes", "")
    }
    e = engine(*example_docs("shop"), nodes=2)
    a = analyze(e, e.pods, e.pods, [], [], None)
    # the same manifests analysed apart from the store: the verdicts agree pair by pair
    expected = {
        (r.source, r.destination, f"{r.port}/{r.protocol}"): "allowed" if r.allowed else "denied"
        for r in a.results()
    }
    assert edges == expected
    assert "denied" in edges.values() and "allowed" in edges.values()


def test_namespace_edges_count_pairs_exactly() -> None:
    docs = [namespace("x"), namespace("y")]
    docs += [pod(f"x/a-{i}", {"app": "a"}, [{"containerPort": 80}]) for i in range(25)]
    docs += [
        pod(f"y/b-{i}", {"app": "b", "n": str(i % 2)}, [{"containerPort": 80}]) for i in range(20)
    ]
    docs.append(
        policy(
            "y/half",
            {
                "podSelector": {"matchLabels": {"n": "0"}},
                "ingress": [{"from": [{"podSelector": {}}]}],
            },
        )
    )
    e = engine(*docs)
    a = analyze(e, e.pods, e.pods, [], [], None)
    assert len(e.pods) > map_graph.EDGE_PODS
    doc = map_graph.graph(e.cluster, a, {}, None)
    got = {
        (el["data"]["source"], el["data"]["target"]): (
            el["data"]["allowed"],
            el["data"]["asked"],
            el["data"]["verdict"],
        )
        for el in doc["elements"]
        if el["group"] == "edges"
    }
    counts: dict[tuple[str, str], list[int]] = {}
    for r in a.results():
        key = (f"ns:{r.source.split('/')[0]}", f"ns:{r.destination.split('/')[0]}")
        c = counts.setdefault(key, [0, 0])
        c[0] += r.allowed
        c[1] += 1
    verdict = {True: "allowed", False: "denied"}
    assert got == {
        k: (ok, n, verdict[ok == n] if ok in (0, n) else "mixed") for k, (ok, n) in counts.items()
    }
    assert got[("ns:x", "ns:y")][2] == "mixed"  # y/b-odd admit no one from x
    assert got[("ns:y", "ns:y")][:2] == (20 * 19, 20 * 19)  # pods of y reach each other


def test_a_cell_is_explained_as_explain_does(client: TestClient) -> None:
    doc = client.get("/api/matrix").json()
    k = next(k for k, pp in enumerate(doc["ports"]) if any("d" in line for line in pp["cells"]))
    r, c = next(
        (r, line.index("d")) for r, line in enumerate(doc["ports"][k]["cells"]) if "d" in line
    )
    (v,) = client.get(f"/api/explain?rev={doc['revision']}&k={k}&r={r}&c={c}").json()
    assert v["allowed"] is False
    assert v["source"] in doc["rows"][r]["label"] and v["destination"] in doc["cols"][c]["label"]
    stale = client.get(f"/api/explain?rev={doc['revision'] - 1}&k={k}&r={r}&c={c}")
    assert stale.status_code == 409
    assert client.get(f"/api/explain?rev={doc['revision']}&k=99&r=0&c=0").status_code == 404


def test_only_the_loopback_may_ask(shop: Path) -> None:
    with TestClient(create_app(NAME, shop), base_url="http://attacker.example") as c:
        assert c.get("/api/status").status_code == 400


def test_status_names_the_panels_and_why_one_is_off(client: TestClient) -> None:
    doc = client.get("/api/status").json()
    assert doc["daemon"]["running"] is False
    assert doc["features"]["flows"]["available"] is True
    # this app was created without the quarantine action (cli.dashboard gives it)
    assert doc["features"]["quarantine"]["available"] is False
    assert doc["features"]["quarantine"]["note"]


def test_counters_say_why_they_are_missing(client: TestClient) -> None:
    doc = client.get("/api/counters").json()
    assert doc["counts"] is None and doc["why"]


def test_the_page_and_its_assets_are_served(client: TestClient) -> None:
    page = client.get("/").text
    for url in ("/static/cytoscape.min.js", "/assets/matrix.js", "/static/dashboard.js"):
        assert url in page
        assert client.get(url).status_code == 200
    assert "Permission is hereby granted" in client.get("/static/cytoscape.LICENSE").text


def test_the_ingress_controller_pod_and_ingresses() -> None:
    from podnet.state.ingress_identity import NAMESPACE, pod_name

    controller = f"{NAMESPACE}/{pod_name()}"
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "shop", "namespace": "x"},
        "spec": {
            "rules": [
                {
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    }
                }
            ]
        },
    }
    e = engine(
        namespace("x"),
        namespace(NAMESPACE),
        pod("x/a", {"app": "a"}, [{"containerPort": 80}]),
        pod(controller, {"app": "nginx"}, [{"containerPort": 80}]),
        service("x/web", selector={"app": "a"}, ports=[{"port": 80, "targetPort": 80}]),
        ingress,
    )
    doc = map_graph.graph(e.cluster, analyze(e, e.pods, e.pods, [], [], None), {}, None)
    by_id = {el["data"]["id"]: el for el in doc["elements"]}
    assert by_id[f"pod:{controller}"]["data"]["ingressController"] is True
    assert by_id["pod:x/a"]["data"]["ingressController"] is False
    assert by_id["ing:x/shop"]["data"]["kind"] == "ingress"
    assert "ib|ing:x/shop|web" in by_id and f"ic|{controller}|ing:x/shop" in by_id
