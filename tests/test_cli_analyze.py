"""`podnet analyze` and `podnet explain` end to end on the shop example, every output format."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from podnet.cli.main import main

SHOP = str(Path(__file__).parent.parent / "examples" / "shop")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    out, _ = capsys.readouterr()
    return out


def pod_named(pods: list[str], prefix: str) -> str:
    return next(p for p in pods if p.startswith(prefix))


@pytest.fixture
def shop_json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    return json.loads(run(capsys, "analyze", "-f", SHOP, "-o", "json"))


def verdicts(doc: dict[str, object]) -> dict[tuple[str, str, int, str], bool]:
    return {(r["from"], r["to"], r["port"], r["protocol"]): r["allowed"] for r in doc["results"]}  # type: ignore[index,union-attr]


def test_json_contract_and_verdicts(shop_json: dict[str, object]) -> None:
    pods: list[str] = shop_json["pods"]  # type: ignore[assignment]
    assert pods == sorted(pods) and len(pods) == 8
    v = verdicts(shop_json)
    fe, api = pod_named(pods, "shop/frontend-"), pod_named(pods, "shop/api-")
    prom, dns, gw = (
        pod_named(pods, "monitoring/"),
        pod_named(pods, "kube-system/"),
        pod_named(pods, "payments/"),
    )
    assert v[(fe, api, 8080, "TCP")] is True  # api ingress from frontend on http
    assert v[(api, fe, 8080, "TCP")] is False  # api egress only to db and the gateway
    assert v[(prom, api, 9090, "TCP")] is True  # namespaceSelector team=platform on metrics
    assert v[(prom, api, 8080, "TCP")] is False
    assert v[(api, "shop/db-0", 5432, "TCP")] is True
    assert v[(fe, "shop/db-0", 5432, "TCP")] is False  # frontend egress only to api
    assert v[(api, gw, 8443, "TCP")] is True
    assert v[(fe, dns, 53, "UDP")] is True
    assert (fe, fe, 8080, "TCP") not in v, "self pairs are not listed"
    assert (fe, "shop/db-0", 8080, "TCP") not in v, "only the destination's declared ports"
    first = shop_json["results"][0]  # type: ignore[index]
    assert list(first) == ["from", "to", "port", "protocol", "allowed"]


def test_ports_and_selection(capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(
        run(
            capsys,
            "analyze",
            "-f",
            SHOP,
            "--ports",
            "8080/TCP,53/UDP",
            "--from",
            "shop/*",
            "--to",
            "kube-system/*",
            "-o",
            "json",
        )
    )
    results = doc["results"]
    assert {r["from"].split("/")[0] for r in results} == {"shop"}
    assert {r["to"].split("/")[0] for r in results} == {"kube-system"}
    assert {(r["port"], r["protocol"]) for r in results} == {(8080, "TCP"), (53, "UDP")}
    assert all(r["allowed"] == (r["port"] == 53) for r in results)


def test_outside_peers(capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(
        run(
            capsys,
            "analyze",
            "-f",
            SHOP,
            "--from",
            "203.0.113.7",
            "--to",
            "shop/*",
            "--ports",
            "8080",
            "-o",
            "json",
        )
    )
    v = {r["to"].split("-")[0]: r["allowed"] for r in doc["results"]}
    assert v == {"shop/frontend": True, "shop/api": False, "shop/db": False}
    assert all(r["from"] == "203.0.113.7" for r in doc["results"])
    doc = json.loads(
        run(
            capsys,
            "analyze",
            "-f",
            SHOP,
            "--from",
            "shop/*",
            "--to",
            "198.51.100.0/24",
            "--ports",
            "443",
            "-o",
            "json",
        )
    )
    assert not any(r["allowed"] for r in doc["results"]), "shop is default-deny for egress"


def test_csv_matches_json(capsys: pytest.CaptureFixture[str], shop_json: dict[str, object]) -> None:
    rows = list(csv.DictReader(io.StringIO(run(capsys, "analyze", "-f", SHOP, "-o", "csv"))))
    assert {
        (r["from"], r["to"], int(r["port"]), r["protocol"]): r["allowed"] == "true" for r in rows
    } == verdicts(shop_json)


def test_table_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    table = run(capsys, "analyze", "-f", SHOP, "--ports", "8080")
    assert "port 8080/TCP: 14 of 56 pod pairs allowed" in table
    assert "\x1b[" not in table, "no colour codes when not on a terminal"
    assert "✓ allowed" in table
    md = run(capsys, "analyze", "-f", SHOP, "--ports", "8080", "-o", "md")
    assert "### Port 8080/TCP: 14 of 56 pod pairs allowed" in md
    assert md.count("\n| ") >= 9


def test_table_groups_identical_pods(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = ["apiVersion: v1\nkind: Namespace\nmetadata: {name: big}\n"]
    for i in range(60):
        app = "web" if i < 40 else "db"
        docs.append(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {app}-{i}, namespace: big, labels: {{app: {app}}}}}\n"
            "spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}\n"
        )
    (tmp_path / "big.yaml").write_text("---\n".join(docs))
    table = run(capsys, "analyze", "-f", str(tmp_path / "big.yaml"))
    assert "big/web* (40)" in table and "big/db* (20)" in table
    assert len(table.splitlines()) < 20


def test_dot(capsys: pytest.CaptureFixture[str]) -> None:
    dot = run(capsys, "analyze", "-f", SHOP, "-o", "dot")
    assert dot.startswith("digraph podnet {")
    assert 'label="namespace shop"' in dot
    assert '-> "shop/db-0" [label="5432/TCP"]' in dot


def test_summary(capsys: pytest.CaptureFixture[str]) -> None:
    text = run(capsys, "analyze", "-f", SHOP, "-o", "summary")
    assert "pods: 8  namespaces: 4  policies: 6" in text
    assert "isolated for ingress: 6 of 8 destinations; for egress: 5 of 8 sources" in text
    assert "8080/TCP" in text and "total" in text


def test_explain_allowed(capsys: pytest.CaptureFixture[str]) -> None:
    text = run(
        capsys,
        "explain",
        "-f",
        SHOP,
        "--from",
        "monitoring/*",
        "--to",
        "shop/db-0",
        "--port",
        "5432/TCP",
    )
    assert ": DENIED" in text.splitlines()[0]
    assert "ingress at the destination shop/db-0: DENIED" in text
    assert "isolated by: shop/db, shop/default-deny" in text
    assert (
        "shop/db ingress[0]: podSelector without namespaceSelector selects pods of namespace shop only"
        in text
    )


def test_explain_nearest_miss_names_namespace_labels(capsys: pytest.CaptureFixture[str]) -> None:
    text = run(
        capsys,
        "explain",
        "-f",
        SHOP,
        "--from",
        "shop/frontend-*",
        "--to",
        "payments/*",
        "--port",
        "8443/TCP",
    )
    assert "egress at the source" in text and "DENIED" in text
    text = run(
        capsys,
        "explain",
        "-f",
        SHOP,
        "--from",
        "kube-system/*",
        "--to",
        "payments/*",
        "--port",
        "8443/TCP",
    )
    assert (
        "payments/gateway ingress[0]: namespaceSelector {team: shop} does not match namespace kube-system "
        "{kubernetes.io/metadata.name: kube-system} (no team=shop)"
    ) in text


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(
        run(
            capsys,
            "explain",
            "-f",
            SHOP,
            "--from",
            "shop/frontend-*",
            "--to",
            "shop/api-*",
            "--port",
            "8080/TCP",
            "-o",
            "json",
        )
    )
    first = doc[0]
    assert first["allowed"] is True
    assert first["ingress"]["admitted_by"][0].startswith(
        "shop/api ingress[0]: namespace shop (the policy's own) and podSelector {app: frontend}"
    )
    assert first["egress"]["admitted_by"][0].startswith("shop/frontend-public egress[0]")
