"""A daemon that comes back: `kill -9` under traffic, and every command that finds the daemon
(or its watchdog) dead starts it again and says so; the kernel state is untouched, and
`get pods` shows what really serves. Needs root; real clusters (`podnet up`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from podnet.cli.main import main
from podnet.daemon import procs, supervisor
from podnet.datapath import netns
from podnet.render import kernel_names
from podnet.testing import ConnectLoop, pod, podnet, unique_cluster

pytestmark = pytest.mark.datapath

PORT = 8080


@pytest.fixture
def live(tmp_path: Path):
    name = unique_cluster("wd")
    env = {"PODNET_STATE_DIR": str(tmp_path / "state")}
    docs = [pod("x/a", ports=[{"containerPort": PORT}]), pod("x/b", ports=[{"containerPort": 81}])]
    path = tmp_path / "in.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    try:
        out = podnet("up", "-f", str(path), "--cluster", name, "--nodes", "2", env=env)
        assert out.returncode == 0, out.stderr
        yield name, env, tmp_path / "state" / name
    finally:
        podnet("down", "--cluster", name, env=env)
        assert netns.listing(kernel_names.netns_prefix(name)) == []


def _kernel(name: str) -> dict[str, str]:
    """Everything the cluster holds in the kernel, as text: it must not change."""
    out = {}
    for ns in netns.listing(kernel_names.netns_prefix(name)):
        for argv in (
            ["ip", "-4", "-o", "addr"],
            ["ip", "route"],
            ["ip", "-o", "link"],
            ["ip", "neigh", "show", "nud", "permanent"],
            ["nft", "-s", "list", "ruleset"],  # stateless: counters count the traffic
        ):
            r = subprocess.run(
                ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=True
            )
            out[f"{ns} {' '.join(argv)}"] = r.stdout
    return out


def _pod_ip(sdir: Path, key: str) -> tuple[str, str]:
    doc = json.loads((sdir / "runtime.json").read_text())
    p = next(p for p in doc["pods"] if f"{p['namespace']}/{p['name']}" == key)
    node = next(n for n in doc["nodes"] if n["name"] == p["node"])
    return p["ip"], node["netns"]


def test_kill_9_under_traffic_serves_again_with_the_kernel_untouched(live, capsys):
    name, env, sdir = live
    ip, node_ns = _pod_ip(sdir, "x/a")
    before = _kernel(name)
    traffic = ConnectLoop(node_ns, ip, PORT, expect=b"x/a ")
    traffic.start()
    try:
        time.sleep(0.3)
        pid = supervisor.running_pid(sdir)
        assert pid is not None
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30  # a functional wait, not a time bound
        while time.monotonic() < deadline:
            new = supervisor.running_pid(sdir)
            if new not in (None, pid) and traffic.answers and traffic.answers[-1][1]:
                break
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        traffic.done.set()
        traffic.join()
    back = traffic.back_after(t0)
    assert back is not None, "never answered again"
    print(f"serving again {back:.2f}s after kill -9")  # figures: docs/daemon.md
    assert traffic.answers[-1][1], "the pod does not answer after the restart"
    assert supervisor.restarts(sdir)["count"] == 1
    assert "killed by SIGKILL" in supervisor.restarts(sdir)["reason"]
    assert _kernel(name) == before
    supervisor.wait_ready(sdir, 30)
    os.environ["PODNET_STATE_DIR"] = env["PODNET_STATE_DIR"]
    try:
        assert main(["get", "pods", "-n", "x", "--cluster", name]) == 0
    finally:
        del os.environ["PODNET_STATE_DIR"]
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["a"][1:4] == ["1/1", "Running", "1"]  # RESTARTS 1 (Ns ago)


def test_a_command_that_finds_the_daemon_dead_starts_it_and_says_so(live):
    name, env, sdir = live
    supervisor.stop(sdir)  # the watchdog and the daemon: nothing would restart it
    assert supervisor.running_pid(sdir) is None
    out = podnet("label", "pod", "a", "-n", "x", "tier=web", "--cluster", name, env=env)
    assert out.returncode == 0, out.stderr
    assert f"the daemon of cluster {name} was not running: started it again" in out.stderr
    assert supervisor.running_pid(sdir) is not None
    assert supervisor.watchdog_pid(sdir) is not None
    probe = podnet("probe", "--cluster", name, "-o", "json", env=env)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert "was not running" not in probe.stderr


def test_a_dead_watchdog_is_replaced_and_then_restarts_the_daemon(live):
    name, env, sdir = live
    dog = supervisor.watchdog_pid(sdir)
    assert dog is not None
    os.kill(dog, signal.SIGKILL)
    procs.wait_dead([dog], 10)
    out = podnet("get", "pods", "-A", "--cluster", name, env=env)
    assert out.returncode == 0
    assert "watchdog" in out.stderr and "started it again" in out.stderr
    new_dog, daemon = supervisor.watchdog_pid(sdir), supervisor.running_pid(sdir)
    assert new_dog not in (None, dog) and daemon is not None
    os.kill(daemon, signal.SIGKILL)  # the adopted daemon dies: the new watchdog restarts it
    deadline = time.monotonic() + 30
    while supervisor.running_pid(sdir) in (None, daemon) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert supervisor.running_pid(sdir) not in (None, daemon)
    supervisor.wait_ready(sdir, 30)


def test_get_pods_shows_a_stand_in_that_does_not_serve(live, capsys, monkeypatch):
    name, env, sdir = live
    supervisor.stop(sdir)
    monkeypatch.setenv("PODNET_STATE_DIR", env["PODNET_STATE_DIR"])
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # cannot restart it: only look
    assert main(["get", "pods", "-n", "x", "--cluster", name]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["a"][1:3] == ["0/1", "Error"]
