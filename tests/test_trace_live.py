"""`podnet trace` on live clusters: a table of scenarios, each traced with one real packet
and checked against `podnet explain` over the same manifests; the trace chains are gone
afterwards, also when the trace fails half-way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from podnet.testing import Live, live_cluster, podnet

pytestmark = pytest.mark.datapath

MANIFESTS = Path(__file__).parent / "data" / "trace_shop.yaml"
INTERNET = "203.0.113.2"
NODE1 = "172.18.0.2"


def _docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(MANIFESTS.read_text()) if d]


@pytest.fixture(scope="module")
def hostgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_cluster(tmp_path_factory.mktemp("trace"), _docs(), "tr") as live:
        yield live


@pytest.fixture(scope="module")
def vxlan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_cluster(
        tmp_path_factory.mktemp("tracevx"), _docs(), "trv", up_args=("--mode", "vxlan")
    ) as live:
        yield live


def _trace(live: Live, *args: str) -> dict[str, Any]:
    out = live.cli("trace", *args, "-o", "json")
    assert out.returncode in (0, 1), out.stdout + out.stderr
    return dict(json.loads(out.stdout))


def _explain(src: str, dst: str, port: str) -> tuple[int, Any, str]:
    out = podnet(
        "explain", "-f", str(MANIFESTS), "--from", src, "--to", dst, "--port", port, "-o", "json"
    )
    return out.returncode, json.loads(out.stdout) if out.returncode == 0 else None, out.stderr


def _no_trace_chains(live: Live) -> None:
    from podnet.testing import in_netns

    for ns in live.node_netns().values():
        listing = in_netns(ns, "nft", "list", "ruleset").stdout
        assert "trace-" not in listing, listing


# id: (trace --from, --to, --port, explain --from, --to, --port, verdict, a step that must show)
SCENARIOS = {
    "allowed-by-ingress-rule-cross-node-host-gw": (
        "shop/api", "shop/db", "5432/TCP", "shop/api", "shop/db", "5432/TCP", "passed",
        ["ingress of shop/db allowed by shop/db-from-backend ingress[0]", "(host-gw)"],
    ),
    "blocked-by-ingress": (
        "shop/web", "shop/db", "5432/TCP", "shop/web", "shop/db", "5432/TCP", "blocked",
        ["REJECTED by ingress of shop/db: no policy rule admits it"],
    ),
    "blocked-by-egress": (
        "shop/batch", "shop/web", "8080/TCP", "shop/batch", "shop/web", "8080/TCP", "blocked",
        ["REJECTED by egress of shop/batch: no policy rule admits it"],
    ),
    "via-service": (
        "shop/api", "svc/shop/db", "5432/TCP", "shop/api", "svc/shop/db", "5432/TCP", "passed",
        ["Service shop/db/tcp/pg", "DNAT to endpoint shop/db", "allowed by shop/db-from-backend ingress[0]"],
    ),
    "unready-service": (
        "shop/api", "svc/shop/slow", "80/TCP", "shop/api", "svc/shop/slow", "80/TCP", "refused",
        ["the Service has no ready endpoint"],
    ),
    "internet-through-nodeport": (
        "internet", f"http://{NODE1}:30080/", None, f"{INTERNET}/32", "svc/shop/front", "80/TCP",
        "passed",
        ["NodePort 30080 of node node-1", "DNAT to endpoint shop/web", "masqueraded"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(SCENARIOS), ids=list(SCENARIOS))
def test_trace_agrees_with_explain(hostgw: Live, case: str) -> None:
    src, dst, port, esrc, edst, eport, verdict, steps = SCENARIOS[case]
    got = _trace(hostgw, "--from", src, "--to", dst, *(["--port", port] if port else []))
    shown = "\n".join(s["what"] for s in got["steps"])
    assert got["verdict"] == verdict, shown
    for step in steps:
        assert step in shown or step in got["to"], f"{step!r} not in:\n{shown}"
    status, said, err = _explain(esrc, edst, eport)
    if verdict == "refused":
        assert status == 2 and "no ready endpoint" in err, err
        assert got["explain"] == "no ready endpoint" and got["agrees"]
    else:
        verdicts = said if isinstance(said, list) else [said]
        mine = [v for v in verdicts if v["destination"] == (got["endpoint"] or edst)]
        assert mine, verdicts
        assert all(v["allowed"] == (verdict == "passed") for v in mine), mine
        assert got["explain"] == ("allowed" if verdict == "passed" else "blocked")
        assert got["agrees"] is True
    _no_trace_chains(hostgw)


def test_text_output_names_the_path(hostgw: Live) -> None:
    out = hostgw.cli("trace", "--from", "shop/web", "--to", "svc/shop/db", "--port", "5432/TCP")
    assert out.returncode == 0, out.stdout + out.stderr  # blocked, as explain says
    assert "source pod shop/web" in out.stdout
    assert "DNAT to endpoint shop/db" in out.stdout
    assert "REJECTED by ingress of shop/db" in out.stdout
    assert "the trace agrees" in out.stdout


def test_cross_node_on_vxlan(vxlan: Live) -> None:
    got = _trace(vxlan, "--from", "shop/api", "--to", "shop/db", "--port", "5432/TCP")
    shown = "\n".join(s["what"] for s in got["steps"])
    assert got["verdict"] == "passed" and got["agrees"], shown
    assert "routed to node node-2 through the VXLAN overlay (flannel.1" in shown, shown
    assert "enters node node-2 on flannel.1" in shown, shown
    _no_trace_chains(vxlan)


def test_trace_chains_removed_when_the_trace_fails(
    hostgw: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    from podnet.cli.probe import live_engine
    from podnet.render import runtime as rt
    from podnet.tracing import packet_trace
    from podnet.tracing.target import source_of, target_of

    runtime = rt.load(hostgw.sdir)
    engine = live_engine(hostgw.sdir, runtime)
    from podnet.policy.ports import PortProto

    target = target_of(
        "shop/db", PortProto(5432, "TCP"), "pod", engine, runtime,
        source_of("shop/api", engine, runtime),
    )  # fmt: skip
    added: list[str] = []
    real_add = packet_trace.nftrace.add_chain

    def add(*args: Any) -> None:
        real_add(*args)
        added.append(args[1])

    def fail(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("the packet could not be sent")

    monkeypatch.setattr(packet_trace.nftrace, "add_chain", add)
    monkeypatch.setattr(packet_trace, "send_one", fail)
    with pytest.raises(RuntimeError, match="could not be sent"):
        packet_trace.trace(target, engine, runtime)
    assert len(added) == 2  # both nodes had one while it ran
    _no_trace_chains(hostgw)


def test_bad_input_is_one_line_exit_2(hostgw: Live) -> None:
    out = hostgw.cli("trace", "--from", "shop/nope", "--to", "shop/db", "--port", "5432/TCP")
    assert out.returncode == 2
    assert "--from" in out.stderr and "shop/nope" in out.stderr
    out = hostgw.cli("trace", "--from", "shop/api", "--to", "svc/shop/db", "--port", "1/TCP")
    assert out.returncode == 2 and "has no port 1/TCP" in out.stderr
