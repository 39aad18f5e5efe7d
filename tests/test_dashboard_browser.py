"""The dashboard's page in Debian's chromium over a stored cluster (no namespaces needed: the
page reads the store as it does for a live cluster): every stored pod on the map, the
namespace, label-selector and port filters hide exactly what they should, the action and
flows panels are offered, and the page asks nothing of any host but the dashboard's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from podnet.model.cluster import load_cluster
from podnet.state.changes import store_cluster
from podnet.state.network import NetworkConfig
from podnet.state.placement import place
from podnet.state.store import Store
from podnet.testing import browser, dashboard, unique_cluster

pytestmark = pytest.mark.browser

SHOP = str(Path(__file__).resolve().parent.parent / "examples" / "shop")
VISIBLE_PODS = "() => window.podnet.cy.nodes('[kind=\"pod\"]').filter(n => !n.hasClass('hidden')).map(n => n.data('key')).sort()"
VISIBLE_EDGES = """() => window.podnet.cy.edges('.policy').filter(e => !e.hasClass('hidden'))
  .map(e => [e.data('source').slice(4), e.data('target').slice(4), e.data('port')])"""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory):
    name = unique_cluster("dashb")
    root = tmp_path_factory.mktemp("state")
    cluster = load_cluster([SHOP], node_count=2)
    net = NetworkConfig()
    with Store.open(root / name) as store:
        store_cluster(store, cluster, place(cluster, net, strict=True), name, "host-gw", net)
        pods = sorted(f"{o.namespace}/{o.name}" for o in store.list("Pod"))
    with dashboard(name, {"PODNET_STATE_DIR": str(root)}) as url, browser(allow=(url,)) as b:
        b.page.goto(url)
        b.page.wait_for_selector("body[data-graph-revision]")
        yield b, pods
        assert b.refused == []


def _set(page, element: str, value: str, event: str) -> None:
    page.evaluate(
        "([id, v, ev]) => { const e = document.getElementById(id); e.value = v; e.dispatchEvent(new Event(ev)); }",
        [element, value, event],
    )


def test_every_stored_pod_is_on_the_map(page) -> None:
    b, pods = page
    assert b.page.evaluate(VISIBLE_PODS) == pods


@pytest.mark.parametrize(
    ("ns", "labels", "port", "kept"),
    [
        ("shop", "", "", lambda p, labels: p.startswith("shop/")),
        ("", "app=api", "", lambda p, labels: labels.get("app") == "api"),
        ("", "app in (api,db)", "", lambda p, labels: labels.get("app") in ("api", "db")),
        ("", "app!=api,!nothing", "", lambda p, labels: labels.get("app") != "api"),
        ("", "", "5432/TCP", lambda p, labels: True),
    ],
    ids=["namespace", "equality", "set", "inequality", "port"],
)
def test_filters(page, ns: str, labels: str, port: str, kept) -> None:
    b, pods = page
    _set(b.page, "f-ns", ns, "change")
    _set(b.page, "f-labels", labels, "input")
    _set(b.page, "f-port", port, "change")
    pod_labels = dict(
        b.page.evaluate(
            "() => window.podnet.cy.nodes('[kind=\"pod\"]').map(n => [n.data('key'), n.data('labels')])"
        )
    )
    expected = sorted(p for p in pods if kept(p, pod_labels[p]))
    assert b.page.evaluate(VISIBLE_PODS) == expected
    edges = b.page.evaluate(VISIBLE_EDGES)
    assert edges and all(s in expected and d in expected for s, d, _ in edges)
    if port:
        assert {p for *_, p in edges} == {port}
    assert b.page.locator("#f-note").text_content() == ""
    _set(b.page, "f-ns", "", "change")
    _set(b.page, "f-labels", "", "input")
    _set(b.page, "f-port", "", "change")


def test_a_malformed_selector_is_named(page) -> None:
    b, _ = page
    _set(b.page, "f-labels", "app in api", "input")
    assert b.page.locator("#f-note").text_content() == "not a label selector"
    _set(b.page, "f-labels", "", "input")


def test_the_action_and_flows_panels_are_offered(page) -> None:
    """`podnet dashboard` hands the app the quarantine action: root gets the button (the
    action itself: tests/test_dashboard_live.py), anyone else a disabled one saying why;
    the flows panel follows the (here empty) flow log."""
    b, _ = page
    b.page.evaluate(
        "() => { const n = window.podnet.cy.getElementById('pod:shop/db-0'); n.emit('tap'); }"
    )
    button = b.page.locator("#quarantine")
    assert (button.text_content() or "").startswith("Quarantine shop/db-0")
    if os.geteuid() == 0:
        assert button.is_enabled()
    else:
        assert button.is_disabled()
        assert "needs root" in (b.page.locator("#actions").text_content() or "")
    assert b.page.locator("#flows-pause").is_enabled()
    assert b.page.locator("#flows-table tr").count() == 0


def test_groups_enclose_their_members(page) -> None:
    """Namespaces and the nodes' row are drawn as boxes sized from the members' positions
    (not Cytoscape compounds): every pod, Service and node lies inside its group's box."""
    b, _ = page
    outside = b.page.evaluate(
        """() => {
      const cy = window.podnet.cy, bad = [];
      cy.nodes().filter(n => n.data('box')).forEach(n => {
        const box = cy.getElementById(n.data('box')), p = n.position(), c = box.position();
        const w = box.data('w'), h = box.data('h');
        if (!(Math.abs(p.x - c.x) < w / 2 && Math.abs(p.y - c.y) < h / 2)) bad.push(n.id());
      });
      return [bad, cy.nodes().filter(n => n.data('box')).length, cy.nodes().filter(n => n.isParent()).length];
    }"""
    )
    bad, members, compounds = outside
    assert bad == [] and members > 0 and compounds == 0


def test_the_map_is_read_once_per_revision(page) -> None:
    """The page reads /api/graph once when it opens (early.js), not again for the status
    event that names the same revision."""
    b, _ = page
    reads: list[str] = []
    b.page.on("request", lambda r: reads.append(r.url) if r.url.endswith("/api/graph") else None)
    b.page.reload()
    b.page.wait_for_selector("body[data-graph-revision]")
    b.page.wait_for_function("() => window.podnet.storeRevision !== null")
    b.page.wait_for_timeout(1000)  # status events come every 0.25 s when something changes
    assert len(reads) == 1
    assert b.page.evaluate("() => window.podnet.graphRevision === window.podnet.storeRevision")


def test_names_are_drawn_where_they_can_be_read(page) -> None:
    """Pods', Services' and nodes' names are styled only at a zoom where 10 px text is at
    least 7 px on screen (Cytoscape's smallest drawn); the groups' names always."""
    b, _ = page
    names = """(z) => { const cy = window.podnet.cy; cy.zoom(z);
      const members = cy.nodes().filter(n => n.data('box'));
      return [members.filter(n => n.style('label') !== '').length, members.length,
              cy.getElementById('ns:shop').style('label')]; }"""
    shown, members, group = b.page.evaluate(names, 0.3)
    assert (shown, group) == (0, "shop") and members > 0
    shown, members, group = b.page.evaluate(names, 1.0)
    assert (shown, group) == (members, "shop")
