"""`podnet dashboard` of a running cluster, in Debian's chromium: the map shows every pod the
cluster runs; a policy applied with `podnet apply` turns exactly the edges it denies red
within 2 s, without a reload; the policy counters follow real packets (`podnet probe`);
the matrix explains a clicked cell as `podnet explain` does; a blocked probe appears in the
live flows with the policy that blocked it; quarantine from the page isolates the pod
(checked with `podnet probe`), and its undo from the page restores it."""

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


def _flow_rows(page) -> list[dict[str, str]]:
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('#flows-table tr[data-verdict]')).map(r => ({
             src: r.dataset.src, dst: r.dataset.dst, port: r.dataset.port,
             verdict: r.dataset.verdict, time: +r.dataset.time, text: r.textContent}))"""
    )


def test_a_blocked_probe_appears_in_live_flows_with_its_policy(live) -> None:
    live.apply([ISOLATE_A])
    with dashboard(live.name, live.env) as url, browser(allow=(url,)) as b:
        page = b.page
        page.goto(url)
        page.wait_for_selector("body[data-graph-revision]")
        page.select_option("#flows-verdict", "blocked")
        page.fill("#flows-pod", "x/a")
        started, t0 = time.monotonic(), time.time()
        out = live.cli("probe", "--from", "y/c", "--to", "x/a", "--ports", "80/TCP", "-o", "json")
        assert out.returncode == 0, out.stdout + out.stderr
        assert [r["allowed"] for r in json.loads(out.stdout)["results"]] == [False]
        page.wait_for_function(
            """(t0) => Array.from(document.querySelectorAll('#flows-table tr[data-verdict]'))
                 .some(r => +r.dataset.time >= t0 && r.dataset.src === 'y/c')""",
            arg=t0,
            timeout=15000,
        )
        seen = time.monotonic() - started
        rows = _flow_rows(page)
        assert rows and all(r["verdict"] == "blocked" for r in rows)  # the filter holds
        new = [r for r in rows if r["time"] >= t0]
        assert {(r["src"], r["dst"], r["port"]) for r in new} == {("y/c", "x/a", "80")}
        assert all("ingress: x/a-from-x" in r["text"] for r in new)
        # the same record `podnet flows` prints
        flows = live.cli(
            "flows", "--from", "y/c", "--to", "x/a", "--verdict", "blocked", "-o", "json"
        )
        assert flows.returncode == 0, flows.stderr
        assert any(
            "x/a-from-x" in (json.loads(ln)["ingress"] or {}).get("policies", [])
            for ln in flows.stdout.splitlines()
            if ln.strip()
        )
        # paused, the table stands still; filters by verdict and namespace
        page.locator("#flows-pause").click()
        page.select_option("#flows-verdict", "allowed")
        assert all(r["verdict"] == "allowed" for r in _flow_rows(page))
        page.locator("#flows-pause").click()
        page.select_option("#flows-verdict", "")
        page.fill("#flows-pod", "")
        page.select_option("#flows-ns", "y")
        assert all("y/" in r["src"] + r["dst"] for r in _flow_rows(page))
        page.select_option("#flows-ns", "")
        page.select_option("#flows-verdict", "blocked")
        screenshot(page, "dashboard-flows.png")
        print(f"blocked probe in the flows panel {seen * 1000:.0f} ms after the probe started")


def _probe(live) -> list[dict]:
    out = live.cli("probe", "-o", "json")
    assert out.returncode == 0, out.stdout + out.stderr  # the packets agree with the engine
    return list(json.loads(out.stdout)["results"])


def _act(page, undo: bool) -> str:
    page.evaluate(
        "() => { const n = window.podnet.cy.getElementById('pod:x/b'); n.select(); n.emit('tap'); }"
    )
    button = page.locator("#quarantine")
    assert button.text_content().startswith("Undo quarantine" if undo else "Quarantine")
    page.evaluate("() => document.body.removeAttribute('data-action-exit')")
    button.click()
    page.wait_for_selector("dialog#confirm[open]")
    assert "x/b" in (page.locator("#confirm-text").text_content() or "")
    page.locator("#confirm-ok").click()
    page.wait_for_selector("body[data-action-exit]", timeout=90000)
    assert page.get_attribute("body", "data-action-exit") == "0", page.locator(
        "#action-output"
    ).text_content()
    return page.locator("#action-output").text_content() or ""


def test_quarantine_from_the_page_isolates_the_pod_and_undo_restores(live) -> None:
    live.apply([ISOLATE_A])
    before = _probe(live)
    touching = [r for r in before if "x/b" in (r["from"], r["to"]) and r["from"] != r["to"]]
    assert touching and all(r["allowed"] for r in touching)
    with dashboard(live.name, live.env) as url, browser(allow=(url,)) as b:
        page = b.page
        page.goto(url)
        page.wait_for_selector("body[data-graph-revision]")
        page.wait_for_function("() => window.podnet.features.quarantine.available")
        # a cancelled dialog does nothing
        page.evaluate(
            "() => { const n = window.podnet.cy.getElementById('pod:x/b'); n.select(); n.emit('tap'); }"
        )
        page.locator("#quarantine").click()
        page.locator("dialog#confirm button[value=cancel]").click()
        assert page.locator("#action-output").text_content() == ""

        proof = _act(page, undo=False)
        assert "x/b is quarantined: every attempt blocked" in proof
        screenshot(page, "dashboard-quarantine.png")
        isolated = [
            r for r in _probe(live) if "x/b" in (r["from"], r["to"]) and r["from"] != r["to"]
        ]
        assert {(r["from"], r["to"]) for r in isolated} >= {(r["from"], r["to"]) for r in touching}
        assert isolated and not any(r["allowed"] for r in isolated)

        undone = _act(page, undo=True)
        assert "every one as the policies say" in undone
    after = _probe(live)
    assert [(r["from"], r["to"], r["allowed"]) for r in after] == [
        (r["from"], r["to"], r["allowed"]) for r in before
    ]
