"""The browser document of `analyze` (report.matrix_doc) and the HTML page around it
(report.html_page): every cell agrees with the analysis pair by pair, grouped or not; every
explanation is `Engine.explain`'s; the page is one file that loads nothing."""

from __future__ import annotations

import json
import re

import pytest

from podnet.policy.analysis import analyze
from podnet.report import matrix_doc
from podnet.report.html_page import to_html
from podnet.report.matrix_doc import document
from podnet.testing import engine, namespace, pod, policy

WEB = [{"name": "http", "containerPort": 80}]


def small():
    return engine(
        namespace("x", team="x"),
        namespace("y", team="y"),
        pod("x/a", {"app": "a"}, WEB),
        pod("x/b", {"app": "b"}, WEB),
        pod("y/c", {"app": "c"}, [*WEB, {"containerPort": 53, "protocol": "UDP"}]),
        policy(
            "x/only-b",
            {
                "podSelector": {"matchLabels": {"app": "a"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}],
            },
        ),
    )


def grouped(n: int = 30):
    """More than GROUP_OVER pods: identical replicas share a row and a column."""
    docs = [namespace("x"), namespace("y")]
    docs += [pod(f"x/web-{i}", {"app": "web"}, WEB) for i in range(n)]
    docs += [pod(f"y/db-{i}", {"app": "db"}, WEB) for i in range(3)]
    docs.append(
        policy(
            "y/db",
            {
                "podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 80}]}],
            },
        )
    )
    docs.append(policy("x/deny", {"podSelector": {"matchLabels": {"app": "web"}}}))
    return engine(*docs)


def verdicts_of(doc: dict) -> dict[tuple[str, str, str], set[bool]]:
    """(row label, col label, port) -> the verdicts its code stands for."""
    meaning = {"a": {True}, "d": {False}, "m": {True, False}}
    out = {}
    for pp in doc["ports"]:
        for r, line in enumerate(pp["cells"]):
            for c, code in enumerate(line):
                if code != ".":
                    key = (
                        doc["rows"][r]["label"],
                        doc["cols"][c]["label"],
                        f"{pp['port']}/{pp['protocol']}",
                    )
                    out[key] = meaning[code]
    return out


@pytest.mark.parametrize("make", [small, grouped], ids=["pods", "groups"])
def test_every_pair_agrees_with_its_cell(make):
    e = make()
    a = analyze(e, e.pods, e.pods, [], [], None)
    doc = document(a)
    label_of = {}
    for side in ("rows", "cols"):
        for g in doc[side]:
            for m in g["members"]:
                label_of[(side, doc["pods"][m]["key"])] = g["label"]
    cells = verdicts_of(doc)
    seen = {}
    for r in a.results():
        key = (
            label_of[("rows", r.source)],
            label_of[("cols", r.destination)],
            f"{r.port}/{r.protocol}",
        )
        assert r.allowed in cells[key], (key, r)
        seen.setdefault(key, set()).add(r.allowed)
    assert seen == cells  # no cell without a pair, and a mixed cell holds both verdicts


def test_grouping_is_analyzes():
    e = grouped()
    doc = document(analyze(e, e.pods, e.pods, [], [], None))
    labels = sorted(g["label"] for g in doc["rows"])
    assert labels == ["x/web* (30)", "y/db* (3)"]


def test_explanations_are_the_engines():
    e = small()
    a = analyze(e, e.pods, e.pods, [], [], None)
    doc = document(a)
    assert doc["explained"] == doc["cells"] > 0
    strings = doc["strings"]
    for k, pp in enumerate(doc["ports"]):
        for where, answers in pp["explain"].items():
            r, c = map(int, where.split(","))
            code = pp["cells"][r][c]
            for src, dst, allowed, _reason, _eg, ing in answers:
                s, d = doc["pods"][src]["key"], doc["pods"][dst]["key"]
                v = e.explain(e.by_key[s], e.by_key[d], a.ports[k])
                assert bool(allowed) == v.allowed == (code == "a")
                if v.ingress is not None and v.ingress.isolated:
                    direction = doc["directions"][ing]
                    assert [strings[n] for n in direction[4]] == v.ingress.policies


def test_denied_cells_are_explained_first(monkeypatch):
    monkeypatch.setattr(matrix_doc, "EXPLAIN_LIMIT", 1)
    e = small()
    doc = document(analyze(e, e.pods, e.pods, [], [], None))
    assert doc["explained"] == 1 < doc["cells"]
    (where,) = [w for pp in doc["ports"] for w in pp["explain"]]
    pp = next(pp for pp in doc["ports"] if pp["explain"])
    r, c = map(int, where.split(","))
    assert pp["cells"][r][c] == "d"


def test_page_is_self_contained_and_escapes_its_data():
    e = small()
    title = "review </script><script>alert(1)</script>"
    page = to_html(analyze(e, e.pods, e.pods, [], [], None), title=title)
    assert "</script><script>alert" not in page
    assert "<title>review &lt;/script>&lt;script>" in page
    # nothing to fetch: no src=/href= attributes, and a policy that forbids fetching
    assert not re.search(r"\b(src|href)\s*=", page)
    assert "default-src 'none'" in page
    data = re.search(r'<script id="podnet-data" type="application/json">(.*?)</script>', page, re.S)
    assert data and json.loads(data.group(1))["title"] == title
