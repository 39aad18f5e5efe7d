"""`podnet analyze -o html` in a real browser with no network: every cell of every port shows
the verdict `analyze -o json` gives for that pair, and a clicked cell shows what `podnet
explain` prints for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from podnet.testing import browser, podnet, screenshot

pytestmark = pytest.mark.browser

SHOP = str(Path(__file__).resolve().parent.parent / "examples" / "shop")
READ_CELLS = """() => {
  const out = [];
  for (const td of document.querySelectorAll("table.pn-grid td")) {
    const row = td.parentNode.querySelector("th.pn-row").dataset.label;
    const col = document.querySelectorAll("table.pn-grid thead th")[+td.dataset.c + 1].dataset.label;
    out.push([row, col, td.className.replace(" sel", "")]);
  }
  return out;
}"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = podnet("analyze", "-f", SHOP, "-o", "html", check=True)
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(out.stdout)
    return path


def test_report_shows_analyzes_verdicts_cell_by_cell(report: Path) -> None:
    expected = {
        (r["from"], r["to"], f"{r['port']}/{r['protocol']}"): r["allowed"]
        for r in json.loads(podnet("analyze", "-f", SHOP, "-o", "json", check=True).stdout)[
            "results"
        ]
    }
    shown: dict[tuple[str, str, str], bool] = {}
    with browser() as b:
        b.page.goto(report.as_uri())
        b.page.wait_for_selector("body[data-ready]")
        tabs = b.page.locator(".pn-tabs button")
        for n in range(tabs.count()):
            tabs.nth(n).click()
            port = tabs.nth(n).text_content()
            assert b.page.locator("table.pn-grid").get_attribute("data-port") == port
            for row, col, code in b.page.evaluate(READ_CELLS):
                if code != "n":
                    assert code in ("a", "d"), (row, col, code)  # 8 pods: no groups
                    shown[(row, col, str(port))] = code == "a"
        assert b.refused == []  # the page asked for nothing
    assert shown == expected


def test_a_clicked_cell_shows_explains_answer(report: Path) -> None:
    with browser() as b:
        b.page.goto(report.as_uri())
        b.page.wait_for_selector("body[data-ready]")
        b.page.locator(".pn-tabs button", has_text="5432/TCP").click()
        cell = b.page.locator("table.pn-grid td.d").first
        cell.click()
        text = b.page.locator(".pn-explain").text_content() or ""
        screenshot(b.page, "report.png")
    first = text.splitlines()[0]  # "SRC -> DST on 5432/TCP: DENIED"
    src, _, rest = first.partition(" -> ")
    dst = rest.split(" on ")[0]
    explained = podnet("explain", "-f", SHOP, "--from", src, "--to", dst, "--port", "5432/TCP")
    assert explained.returncode == 0, explained.stderr
    assert text.strip() == explained.stdout.strip()
    assert "DENIED" in first
