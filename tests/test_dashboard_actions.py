"""The dashboard's one POST route, /api/quarantine: refused unless it comes from the
loopback, from the page's own origin, as JSON, with the CSRF token the page was served
with; accepted, it runs the action the composition root gave and answers with what the
action printed and its exit status (the action itself, `podnet quarantine`, is driven
for real in tests/test_dashboard_live.py)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from podnet.dashboard.app import create_app
from podnet.state.store import Store
from podnet.testing import unique_cluster

NAME = unique_cluster("dact")
ORIGIN = "http://127.0.0.1"


@pytest.fixture
def calls() -> list[tuple[str, str, bool]]:
    return []


@pytest.fixture
def client(tmp_path: Path, calls: list[tuple[str, str, bool]]):
    with Store.open(tmp_path / NAME):
        pass

    def action(cluster: str, pod: str, undo: bool) -> tuple[int, str]:
        calls.append((cluster, pod, undo))
        return (2, f"error: Pod {pod!r} not found\n") if pod == "x/none" else (0, "proof\n")

    app = create_app(NAME, tmp_path / NAME, action)
    with TestClient(app, base_url=ORIGIN, client=("127.0.0.1", 40000)) as c:
        yield c


def token(c: TestClient) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/").text)
    assert found and found.group(1) != "__PODNET_CSRF_TOKEN__"
    return found.group(1)


def post(c: TestClient, body: object, **headers: str):
    return c.post("/api/quarantine", json=body, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"origin": "http://evil.example"}, id="foreign-origin"),
        pytest.param({"origin": "http://127.0.0.1:9999"}, id="other-loopback-port"),
        pytest.param({}, id="no-origin"),
        pytest.param({"origin": ORIGIN, "x-csrf-token": "guess"}, id="wrong-token"),
        pytest.param({"origin": ORIGIN, "no-token": "1"}, id="no-token"),
        pytest.param({"origin": ORIGIN, "sec-fetch-site": "cross-site"}, id="cross-site"),
    ],
)
def test_refused_requests_run_nothing(client, calls, headers: dict[str, str]) -> None:
    t = token(client)
    if "x-csrf-token" not in headers and "no-token" not in headers:
        headers = {**headers, "x-csrf-token": t}
    headers.pop("no-token", None)
    r = post(client, {"pod": "x/a"}, **headers)
    assert r.status_code == 403, r.text
    assert calls == []


def test_a_form_post_is_refused(client, calls) -> None:
    r = client.post(
        "/api/quarantine",
        content="pod=x/a",
        headers={
            "origin": ORIGIN,
            "x-csrf-token": token(client),
            "content-type": "application/x-www-form-urlencoded",
        },
    )
    assert r.status_code == 403 and "JSON" in r.json()["error"]
    assert calls == []


def test_not_from_the_loopback(tmp_path: Path, calls) -> None:
    with Store.open(tmp_path / NAME):
        pass
    app = create_app(NAME, tmp_path / NAME, lambda *a: (0, ""))
    with TestClient(app, base_url=ORIGIN, client=("10.0.0.9", 40000)) as c:
        r = post(c, {"pod": "x/a"}, origin=ORIGIN, **{"x-csrf-token": token(c)})
    assert r.status_code == 403 and "loopback" in r.json()["error"]


def test_the_token_changes_with_each_server(tmp_path: Path) -> None:
    with Store.open(tmp_path / NAME):
        pass
    tokens = set()
    for _ in range(2):
        with TestClient(create_app(NAME, tmp_path / NAME), base_url=ORIGIN) as c:
            tokens.add(token(c))
    assert len(tokens) == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="the action is offered to root only")
def test_an_accepted_request_runs_the_action_and_answers_its_output(client, calls) -> None:
    t = token(client)
    r = post(client, {"pod": "x/a", "undo": True}, origin=ORIGIN, **{"x-csrf-token": t})
    assert r.status_code == 200, r.text
    assert r.json()["exit"] == 0 and r.json()["output"] == "proof\n"
    bad = post(client, {"pod": "x/none"}, origin=ORIGIN, **{"x-csrf-token": t})
    assert bad.status_code == 400 and bad.json()["exit"] == 2
    assert "not found" in bad.json()["output"]
    assert calls == [(NAME, "x/a", True), (NAME, "x/none", False)]
    for body in ({"undo": True}, {"pod": 3}, {"pod": "x/a", "undo": "yes"}, [1]):
        assert post(client, body, origin=ORIGIN, **{"x-csrf-token": t}).status_code == 400
    assert len(calls) == 2
