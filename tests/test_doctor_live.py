"""`podnet doctor` on a live cluster: each kind of drift made by hand, as an admin (or an
accident) would make it; doctor must name it and exit 1, and `--fix` must heal it: doctor
clean afterwards and every probe as the engine expects.

The daemon's own periodic repair is pushed out (PODNET_RESYNC_SECONDS=3600), so that what
heals the cluster here is doctor, not the resync racing it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from podnet.render import kernel_names
from podnet.testing import Live, live_cluster

pytestmark = pytest.mark.datapath

MANIFESTS = Path(__file__).parent / "data" / "trace_shop.yaml"
INGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "front", "namespace": "shop"},
    "spec": {
        "rules": [
            {
                "host": "shop.test",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "front", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    docs = [d for d in yaml.safe_load_all(MANIFESTS.read_text()) if d]
    docs.append(INGRESS)  # the ingress controller's nginx joins the servers checked
    env = {"PODNET_RESYNC_SECONDS": "3600"}
    tmp = tmp_path_factory.mktemp("doctor")
    with live_cluster(tmp, docs, "dr", env=env, up_args=("--cluster-dns", "on")) as c:
        _dns_serving(c)
        yield c


def _dns_serving(live: Live, timeout: float = 60.0) -> None:
    """`up` returns before the daemon's DNS server has loaded (seconds on a loaded host)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads((live.sdir / "dns-server.json").read_text()).get("serving"):
                return
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError("the DNS server did not serve")


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


def _pid(path: Path) -> int:
    return int(path.read_text().split()[0])


def delete_route(live: Live) -> str:
    rt = live.runtime()
    cidr = next(n["podCIDR"] for n in rt["nodes"] if n["name"] == "node-2")
    _ip("-n", live.node_netns()["node-1"], "route", "del", cidr)
    return f"missing route {cidr} (the way to node node-2's pods)"


def flush_table(live: Live) -> str:
    ns = live.node_netns()["node-2"]
    table = kernel_names.table_name(live.name)
    subprocess.run(["ip", "netns", "exec", ns, "nft", "flush", "table", "inet", table], check=True)
    return f"table {table} was flushed"


def delete_pod_namespace(live: Live) -> str:
    name = live.pod("shop/web")["netns"]
    _ip("netns", "delete", name)
    return f"its network namespace {name} is missing"


def delete_link(live: Live) -> str:
    veth = kernel_names.pod_veth("shop", "db")
    _ip("-n", live.node_netns()["node-2"], "link", "del", veth)
    return f"missing link {veth} (veth)"


def hang_dns_server(live: Live) -> str:
    """SIGSTOP: the server's process is there and answers nothing, which is what a killed
    server looks like to a pod (a SIGKILLed one the daemon restarts within milliseconds)."""
    pid = _pid(live.sdir / "dns-server.pid")
    os.kill(pid, signal.SIGSTOP)
    return "does not answer at 10.96.0.10:53/UDP"


def hang_nginx(live: Live) -> str:
    """Every nginx process stopped (a stopped master alone leaves its workers serving)."""
    master = _pid(live.sdir / "ingress" / "nginx.pid")
    workers = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True
    ).stdout.split()
    for pid in [master, *map(int, workers)]:
        os.kill(pid, signal.SIGSTOP)
    return "does not answer HTTP at"


def kill_daemon(live: Live) -> str:
    os.kill(_pid(live.sdir / "watchdog.pid"), signal.SIGKILL)  # else it restarts the daemon
    daemon = _pid(live.sdir / "daemon.pid")
    os.kill(daemon, signal.SIGKILL)
    for _ in range(100):
        if not Path(f"/proc/{daemon}").exists() or "Z" in _state(daemon):
            break
        time.sleep(0.05)
    return "is not running: no sync, no pod serves"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except FileNotFoundError:
        return "gone"


BREAKS: dict[str, Callable[[Live], str]] = {
    "route deleted": delete_route,
    "table flushed": flush_table,
    "pod namespace deleted": delete_pod_namespace,
    "link deleted": delete_link,
    "DNS server hung": hang_dns_server,
    "ingress nginx hung": hang_nginx,
    "daemon killed": kill_daemon,
}


def _doctor(live: Live, *args: str) -> tuple[int, dict[str, object]]:
    out = live.cli("doctor", *args, "-o", "json")
    assert out.returncode in (0, 1), out.stdout + out.stderr
    return out.returncode, json.loads(out.stdout)


def test_a_healthy_cluster_is_clean(live: Live) -> None:
    status, doc = _doctor(live)
    assert (status, doc["found"]) == (0, []), doc


@pytest.mark.parametrize("what", list(BREAKS), ids=list(BREAKS))
def test_doctor_names_the_drift_and_fix_heals_it(live: Live, what: str) -> None:
    expected = BREAKS[what](live)
    status, doc = _doctor(live)
    problems = [f"{f['subject']}: {f['problem']}" for f in doc["found"]]  # type: ignore[attr-defined]
    assert status == 1, doc
    assert any(expected in p for p in problems), (expected, problems)
    assert all(f["fix"] for f in doc["found"]), doc  # type: ignore[attr-defined]
    status, doc = _doctor(live, "--fix")
    assert status == 0 and doc["clean"] and doc["after"] == [], doc
    status, doc = _doctor(live)
    assert status == 0, doc
    probe = live.cli("probe")
    assert probe.returncode == 0, probe.stdout + probe.stderr


def test_text_names_each_drift_with_its_command(live: Live) -> None:
    expected = delete_route(live)
    out = live.cli("doctor")
    assert out.returncode == 1
    assert f"node node-1  {expected}" in out.stdout.replace("   ", "  "), out.stdout
    assert f"podnet doctor --fix --cluster {live.name}" in out.stdout
    assert live.cli("doctor", "--fix").returncode == 0
