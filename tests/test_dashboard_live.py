"""`podnet dashboard` of a running cluster, in Debian's chromium: the map shows every pod the
cluster runs; a policy applied with `podnet apply` turns exactly the edges it denies red
within 2 s, without a reload; the policy counters follow real packets (`podnet probe`);
the matrix explains a clicked cell as `podnet explain` does."""

from __future__ import annotations

import json
import time

import pytest

from podnet.testing import (
    browser,
    dashboard,
    live_cluster,
    namespace,
    pod,
    policy,
    screenshot,
    service,
)

pytestmark = [pytest.mark.datapath, pytest.mark.browser]

WEB = [{"name": "http", "containerPort": 80}]
DOCS = [
    namespace("x", ns="x"),
    namespace("y", ns="y"),
    pod("x/a", {"app": "a"}, WEB),
    pod("x/b", {"app": "b"}, WEB),
    pod("y/c", {"app": "c"}, WEB),
    service("x/web", selector={"app": "a"}, ports=[{"port": 80, "targetPort": 80}]),
]
# x/a admits its own namespace only: y/c -> x/a is denied, nothing else changes
ISOLATE_A = policy(
    "x/a-from-x",
    {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [{"podSelector": {}}]}]},
)
EDGES = """() => window.podnet.cy.edges('.policy').map(e => [
  e.data('source').slice(4), e.data('target').slice(4), e.data('port'), e.data('verdict'),
  e.style('line-color')])"""
RED = "rgb(220,38,38)"
GREEN = "rgb(22,163,74)"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    with live_cluster(tmp_path_factory.mktemp("dash"), DOCS, "dash") as live:
        yield live


def test_map_policy_edges_and_counters_live(live) -> None:
    pods = set(live.pod_ips())
    with dashboard(live.name, live.env) as url, browser(allow=(url,)) as b:
        page = b.page
        page.goto(url)
        page.wait_for_selector("body[data-graph-revision]")
        shown = set(
            page.evaluate("() => window.podnet.cy.nodes('[kind=\"pod\"]').map(n => n.data('key'))")
        )
        assert shown == pods == {"x/a", "x/b", "y/c"}
        page.wait_for_function("() => document.getElementById('sync').classList.contains('ok')")
        before = page.evaluate(EDGES)
        assert before and all(v == "allowed" and color == GREEN for *_, v, color in before)
        assert len(before) == 6  # every ordered pair of 3 pods on 80/TCP
        page.evaluate("() => { window.notReloaded = true; }")

        started = time.monotonic()
        live.apply([ISOLATE_A])  # returns once the cluster enforces it
        applied = time.monotonic()
        page.wait_for_function("() => window.podnet.cy.edges('.denied').length > 0", timeout=2000)
        seen = time.monotonic() - applied
        after = page.evaluate(EDGES)
        assert page.evaluate("() => window.notReloaded === true")  # no reload
        red = {(s, d) for s, d, _, v, color in after if v == "denied" and color == RED}
        green = {(s, d) for s, d, _, v, color in after if v == "allowed" and color == GREEN}
        assert red == {("y/c", "x/a")}
        assert len(green) == 5
        print(
            f"edge red {seen * 1000:.0f} ms after `podnet apply` returned "
            f"({(applied - started) * 1000:.0f} ms for apply itself)"
        )

        # real packets: the probe's blocked attempt y/c -> x/a shows as a drop of the policy
        probe = live.cli("probe", "-o", "json")
        assert probe.returncode == 0, probe.stdout + probe.stderr
        blocked = [r for r in json.loads(probe.stdout)["results"] if not r["allowed"]]
        assert {(r["from"], r["to"]) for r in blocked} == {("y/c", "x/a")}
        row = page.locator('table.counters tr[data-policy="x/a-from-x"] td.num')
        page.wait_for_function(
            """() => { const r = document.querySelectorAll('table.counters tr[data-policy="x/a-from-x"] td.num');
                       return r.length === 2 && +r[1].textContent > 0 && +r[0].textContent > 0; }""",
            timeout=10000,
        )
        accepted, dropped = (int(t) for t in row.all_text_contents())
        get = live.cli("get", "networkpolicies", "-n", "x")
        assert get.returncode == 0, get.stderr
        line = next(ln.split() for ln in get.stdout.splitlines() if ln.startswith("a-from-x"))
        assert (int(line[2]), int(line[3])) >= (accepted, dropped) > (0, 0)

        page.locator("#cy").click(position={"x": 5, "y": 5})
        node = page.evaluate(
            "() => { const n = window.podnet.cy.getElementById('pod:x/a'); n.select(); n.emit('tap'); return n.id(); }"
        )
        assert node == "pod:x/a"
        assert "x/a" in (page.locator("#details").text_content() or "")
        assert "not available in this build" in (page.locator("#flows-note").text_content() or "")
        screenshot(page, "dashboard-map.png")


def test_matrix_explains_a_cell_as_explain_does(live) -> None:
    live.apply([ISOLATE_A])
    with dashboard(live.name, live.env) as url, browser(allow=(url,)) as b:
        page = b.page
        page.goto(url)
        page.locator("header nav button[data-tab=matrix]").click()
        page.wait_for_selector("body[data-matrix-revision]")
        page.locator("table.pn-grid td.d").first.click()
        page.wait_for_function(
            "() => document.querySelector('.pn-explain').textContent.includes('->')"
        )
        text = page.locator(".pn-explain").text_content() or ""
        screenshot(page, "dashboard-matrix.png")
    first = text.splitlines()[0]
    assert first == "y/c -> x/a on 80/TCP: DENIED"
    assert "isolated by: x/a-from-x" in text
