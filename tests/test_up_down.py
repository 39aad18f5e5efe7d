"""`podnet up` / `podnet down` as a user runs them: refusals that leave nothing behind
(issue §7), replace, idempotent down, down after a crash of `up` or of the daemon, and the
host's own namespace identical before up and after down (§8)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from podnet.cli import live as live_cli
from podnet.cli.main import main
from podnet.datapath import netns
from podnet.render import kernel_names
from podnet.testing import pod, podnet, root_snapshot, unique_cluster


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("PODNET_STATE_DIR", str(tmp_path / "state"))
    return {"PODNET_STATE_DIR": str(tmp_path / "state")}


@pytest.fixture
def name(env):
    """A unique cluster name whose leftovers are removed whatever the test did."""
    n = unique_cluster("ud")
    yield n
    podnet("down", "--cluster", n, env=env)
    assert netns.listing(kernel_names.netns_prefix(n)) == []


def manifest(tmp_path: Path, *docs) -> str:
    path = tmp_path / "in.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def assert_nothing_left(name: str, env: dict[str, str]) -> None:
    assert netns.listing(kernel_names.netns_prefix(name)) == []
    assert not (Path(env["PODNET_STATE_DIR"]) / name).exists()


def test_up_and_down_need_root(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(live_cli.os, "geteuid", lambda: 1000)
    assert main(["up", "-f", manifest(tmp_path, pod("a/b")), "--cluster", "x"]) == 2
    assert main(["down", "--cluster", "x"]) == 2
    assert "needs root" in capsys.readouterr().err


NODE_30 = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {"name": "small"},
    "spec": {"podCIDR": "10.244.9.0/30"},
}
BAD = {
    "pinned-outside-cidr": (
        [pod("shop/x", ip="192.168.1.5")],
        [],
        "Pod shop/x",
        "outside the cluster CIDR",
    ),
    "two-pods-one-ip": (
        [pod("shop/x", ip="10.244.0.9"), pod("shop/y", ip="10.244.0.9")],
        [],
        "Pod shop/y",
        "already the address of pod shop/x",
    ),
    "podcidr-exhausted": (
        [NODE_30, pod("shop/x", node="small"), pod("shop/y", node="small")],
        [],
        "Pod shop/y",
        "exhausted",
    ),
    "too-many-nodes": ([pod("shop/x")], ["--nodes", "257"], "257 nodes", "do not fit"),
    "no-node-matches": (
        [
            {
                **pod("shop/x"),
                "spec": {"containers": [{"name": "c"}], "nodeSelector": {"disk": "ssd"}},
            }
        ],
        [],
        "Pod shop/x",
        "no node matches",
    ),
    "cluster-name-too-long": (
        [pod("shop/x")],
        ["--cluster", "c" * 40],
        "cluster name",
        "at most 32",
    ),
}


@pytest.mark.datapath
@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_is_refused_naming_the_object_and_leaves_nothing(case, tmp_path, env, name):
    docs, extra, who, what = BAD[case]
    args = ["up", "-f", manifest(tmp_path, *docs), "--cluster", name, "--no-daemon", *extra]
    out = podnet(*args, env=env)
    assert out.returncode == 2, out.stderr
    assert who in out.stderr and what in out.stderr, out.stderr
    assert_nothing_left(name, env)
    assert netns.listing(kernel_names.netns_prefix("c" * 40)) == []


@pytest.mark.datapath
def test_a_failure_while_building_rolls_back(monkeypatch, tmp_path, env, name, capsys):
    from podnet.datapath import wiring

    real, calls = wiring.apply_netns, []

    def failing(worker, ns):
        calls.append(ns.name)
        if len(calls) == 4:
            raise OSError(28, "injected failure")
        return real(worker, ns)

    monkeypatch.setattr(wiring, "apply_netns", failing)
    docs = [pod(f"shop/p{i}") for i in range(4)]
    rc = main(["up", "-f", manifest(tmp_path, *docs), "--cluster", name, "--no-daemon"])
    assert rc == 1 and "rolled back" in capsys.readouterr().err
    assert_nothing_left(name, env)


@pytest.mark.datapath
def test_up_refuses_an_existing_cluster_unless_replace(tmp_path, env, name):
    path = manifest(tmp_path, pod("shop/a"))
    assert podnet("up", "-f", path, "--cluster", name, "--no-daemon", env=env).returncode == 0
    again = podnet("up", "-f", path, "--cluster", name, "--no-daemon", env=env)
    assert again.returncode == 2 and "already exists" in again.stderr
    replaced = podnet(
        "up", "-f", path, "--cluster", name, "--no-daemon", "--replace", "--mode", "vxlan", env=env
    )
    assert replaced.returncode == 0, replaced.stderr
    assert "mode vxlan" in replaced.stdout


@pytest.mark.datapath
def test_down_is_idempotent(env, name):
    first = podnet("down", "--cluster", name, env=env)
    second = podnet("down", "--cluster", name, env=env)
    assert first.returncode == second.returncode == 0
    assert "nothing to remove" in second.stdout


@pytest.mark.datapath
def test_down_after_up_died_half_way(tmp_path, env, name):
    before = root_snapshot()
    docs = [pod(f"shop/p{i:03}") for i in range(400)]
    args = [
        "-m",
        "podnet",
        "up",
        "-f",
        manifest(tmp_path, *docs),
        "--cluster",
        name,
        "--nodes",
        "4",
        "--no-daemon",
    ]
    proc = subprocess.Popen(
        [sys.executable, *args], env={**os.environ, **env}, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while (
            len(netns.listing(kernel_names.netns_prefix(name))) < 40 and time.monotonic() < deadline
        ):
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert netns.listing(kernel_names.netns_prefix(name)), "up finished before it could be killed"
    out = podnet("down", "--cluster", name, env=env)
    assert out.returncode == 0, out.stderr
    assert_nothing_left(name, env)
    assert root_snapshot() == before


@pytest.mark.datapath
def test_up_with_daemon_then_down_after_the_daemon_was_killed(tmp_path, env, name):
    before = root_snapshot()
    docs = [
        pod("shop/a", node="node-1", ports=[{"containerPort": 8080}]),
        pod(
            "shop/c",
            node="node-2",
            ports=[{"containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}],
        ),
    ]
    nodes = [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{i}"}} for i in (1, 2)
    ]
    up = podnet(
        "up", "-f", manifest(tmp_path, *nodes, *docs), "--cluster", name, "--mode", "vxlan", env=env
    )
    assert up.returncode == 0, up.stderr
    assert "2 nodes, 2 pods" in up.stdout and f"podnet down --cluster {name}" in up.stdout
    state = Path(env["PODNET_STATE_DIR"]) / name
    runtime = json.loads((state / "runtime.json").read_text())
    assert {p["name"] for p in runtime["pods"]} == {"a", "c"}
    wide = podnet("get", "pods", "-n", "shop", "--cluster", name, env=env).stdout
    assert [r.split()[1] for r in wide.splitlines()[1:]] == ["1/1", "1/1"]
    pid = int((state / "daemon.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    down = podnet("down", "--cluster", name, env=env)
    assert down.returncode == 0, down.stderr
    assert (
        not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    )
    assert_nothing_left(name, env)
    assert root_snapshot() == before
