"""Differential test through Services, with real packets: one live cluster (2 nodes, 6
pods whose named port `http` is 8080 on some and 8081 on others, five of them with a
readiness probe on port 7000), and hypothesis drawing random ClusterIP Services (several
ports, named and numbered targetPorts, selectors that pick several pods, one pod or none),
random readiness (`podnet serve --stop/--start 7000/TCP`: the probe fails, the pod leaves
its Services' ready endpoints) and random policies (the strategies of
test_probe_differential). Each case is applied with `podnet apply -f`, the readiness
changes are made and awaited in the stored EndpointSlices, then `probe --via service`
runs once: every probe must agree with the engine, judged on the endpoint that answered.

Bounded to a few examples (PODNET_SVC_DIFF_EXAMPLES, default 4): each case waits for
readiness probes, about 2 s.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_probe_differential import INERT, policy_spec

from podnet.testing import Live, live_cluster, namespace, pod

pytestmark = pytest.mark.datapath

EXAMPLES = int(os.environ.get("PODNET_SVC_DIFF_EXAMPLES", "4"))
SPACES = ("x", "y")
HEALTH = 7000
READY_WAIT = 20.0
POLICY_SLOTS = 2
SERVICE_SLOTS = ("x/s0", "x/s1", "y/s0")


def _pod(key: str, labels: dict[str, str], http: int, node: str, probed: bool) -> dict[str, Any]:
    ports = [
        {"name": "http", "containerPort": http},
        {"name": "dns", "containerPort": 5353, "protocol": "UDP"},
        {"name": "health", "containerPort": HEALTH},
    ]
    doc = pod(key, labels, ports=ports, node=node)
    if probed:
        doc["spec"]["containers"][0]["readinessProbe"] = {
            "tcpSocket": {"port": "health"},
            "periodSeconds": 1,
            "failureThreshold": 1,
        }
    return doc


PODS = {
    "x/a": ({"pod": "a", "app": "web", "tier": "front"}, 8080, "node-1", True),
    "x/b": ({"pod": "b", "app": "web", "tier": "back"}, 8081, "node-2", True),
    "x/c": ({"pod": "c", "app": "db", "tier": "back"}, 8080, "node-1", True),
    "y/a": ({"pod": "a", "app": "web"}, 8081, "node-1", True),
    "y/b": ({"pod": "b", "app": "db", "tier": "front"}, 8080, "node-2", True),
    "y/c": ({"pod": "c", "app": "client"}, 8080, "node-2", False),
}
PROBED = sorted(k for k, v in PODS.items() if v[3])

SELECTORS = [{"app": "web"}, {"app": "db"}, {"pod": "a"}, {"tier": "back"}, {"app": "none"}]
SERVICE_PORTS = [
    {"name": "h", "port": 80, "targetPort": "http"},  # 8080 or 8081, per pod
    {"name": "n", "port": 81, "targetPort": 8080},  # refused where the pod serves 8081
    {"name": "d", "port": 53, "protocol": "UDP", "targetPort": "dns"},
    {"name": "r", "port": 82, "targetPort": HEALTH},
]


def service_doc(key: str, selector: dict[str, str], ports: list[dict[str, Any]]) -> dict[str, Any]:
    ns, name = key.split("/")
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": selector, "ports": ports},
    }


@st.composite
def cases(draw: st.DrawFn, ips: list[str], cidrs: list[str]) -> dict[str, Any]:
    services = {
        key: (
            draw(st.sampled_from(SELECTORS)),
            draw(st.lists(st.sampled_from(SERVICE_PORTS), min_size=1, max_size=3, unique_by=str)),
        )
        for key in SERVICE_SLOTS
    }
    stopped = draw(st.lists(st.sampled_from(PROBED), max_size=3, unique=True))
    specs = draw(st.lists(st.tuples(st.sampled_from(SPACES), policy_spec(ips, cidrs)), max_size=3))
    return {"services": services, "stopped": sorted(stopped), "policies": specs}


def objects(case: dict[str, Any]) -> list[dict[str, Any]]:
    docs = [service_doc(k, sel, ports) for k, (sel, ports) in case["services"].items()]
    slots: dict[str, list[dict[str, Any]]] = {ns: [] for ns in SPACES}
    for ns, spec in case["policies"]:
        slots[ns].append(spec)
    for ns in SPACES:
        specs = slots[ns][:POLICY_SLOTS] + [INERT] * (POLICY_SLOTS - len(slots[ns][:POLICY_SLOTS]))
        docs += [
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": f"p{i}", "namespace": ns},
                "spec": spec,
            }
            for i, spec in enumerate(specs)
        ]
    return docs


class Cluster:
    """The live cluster and which pods currently do not serve their health port."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.stopped: set[str] = set()

    def apply(self, case: dict[str, Any]) -> None:
        f = self.live.tmp / "svc-case.yaml"
        f.write_text(yaml.safe_dump_all(objects(case)))
        out = self.live.cli("apply", "-f", str(f))
        assert out.returncode == 0, out.stderr
        want = set(case["stopped"])
        for key in sorted(want ^ self.stopped):
            verb = "--stop" if key in want else "--start"
            out = self.live.cli("serve", key, verb, f"{HEALTH}/TCP")
            assert out.returncode == 0, out.stderr
        self.stopped = want
        self.await_readiness()

    def await_readiness(self) -> None:
        """Until the stored slices say every probed pod is ready exactly when it serves,
        and the datapath enforces the store's latest revision."""
        from podnet.state.snapshot import snapshot
        from podnet.state.store import Store

        deadline = time.monotonic() + READY_WAIT
        while True:
            with Store.open(self.live.sdir) as store:
                slices = snapshot(store).endpoint_slices
                synced = int(store.get_meta("synced_revision") or 0)
                latest = store.revision()
            wrong = [
                (ref, e.ready)
                for s in slices
                for e in s.endpoints
                if (ref := f"{e.target_ref.namespace}/{e.target_ref.name}" if e.target_ref else "")
                in PROBED
                and e.ready == (ref in self.stopped)
            ]
            if not wrong and synced >= latest:
                return
            assert time.monotonic() < deadline, f"readiness not reached: {wrong}, {synced}<{latest}"
            time.sleep(0.2)


def observe(live: Live) -> Any:
    from podnet.cli.probe import collect
    from podnet.render import runtime as rt

    return collect(live.sdir, rt.load(live.sdir), timeout=0.5, via="service")


def describe(report: Any, case: dict[str, Any]) -> str:
    lines = [
        f"{r.probe.source} -> {r.probe.destination} {r.probe.port}/{r.probe.protocol}: "
        f"{r.seen.outcome} {r.seen.reply}{r.seen.detail}; endpoints "
        + ", ".join(
            f"{c.endpoint}:{c.target} {'allowed' if c.expected else 'blocked'}"
            for c in r.probe.choices
        )
        for r in [*report.mismatches, *report.unanswered][:30]
    ]
    return (
        f"{len(report.mismatches)} mismatches, {len(report.unanswered)} without an answer, "
        f"of {len(report.results)}:\n"
        + "\n".join(lines)
        + f"\n--- stopped: {case['stopped']}\n"
        + yaml.safe_dump_all(objects(case), sort_keys=False)
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    docs = [namespace(ns, ns=ns) for ns in SPACES]
    docs += [_pod(k, *v) for k, v in PODS.items()]
    with live_cluster(tmp_path_factory.mktemp("svcdiff"), docs, "psdiff") as lc:
        yield lc


def test_observed_equals_expected_through_random_services(live: Live) -> None:
    ips = sorted(live.pod_ips().values())
    cidrs = ["10.244.0.0/16", "0.0.0.0/0", "172.18.0.0/16", *(f"{ip}/32" for ip in ips)]
    cluster = Cluster(live)
    stats = {"cases": 0, "probes": 0, "passed": 0, "refused": 0, "endpoints": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=cases(ips, cidrs))
    def check(case: dict[str, Any]) -> None:
        cluster.apply(case)
        report = observe(live)
        stats["cases"] += 1
        stats["probes"] += len(report.results)
        stats["passed"] += sum(r.allowed for r in report.results)
        stats["refused"] += sum(r.verdict == "refused" for r in report.results)
        stats["endpoints"] += sum(len(r.probe.choices) for r in report.results)
        assert report.results, "no Service probed"
        assert report.ok, describe(report, case)

    started = time.monotonic()
    check()
    print(f"\n{stats} in {time.monotonic() - started:.1f}s")
