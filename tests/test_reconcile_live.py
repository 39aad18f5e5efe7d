"""Changes to a running cluster: `podnet apply | delete | label` are enforced when the command
returns (durations printed; the figures live in bench/policy_bench.py), established
connections survive unrelated syncs, bad input changes nothing, a failed sync makes the next
one full, and the periodic full sync repairs a table deleted behind the daemon's back.

One module-scoped host-gw cluster (the one of test_nft_live); every test puts back what it
changed, so the tests do not depend on their order. Its daemon resyncs every RESYNC seconds.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_nft_live import bring_up, pod, policy, probe

from podnet.cli.main import main
from podnet.controller.reconciler import Reconciler
from podnet.controller.syncer import RESYNC_ENV
from podnet.datapath import netns
from podnet.render.kernel_names import table_name
from podnet.state.store import Store
from podnet.testing import FakeRunner, in_netns

pytestmark = pytest.mark.datapath
RESYNC = "2"  # seconds between the daemon's full syncs (30 by default)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reconcile")
    env = {"PODNET_STATE_DIR": str(tmp / "state"), RESYNC_ENV: RESYNC}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the CLI in-process and the daemon `up` starts
    try:
        yield from bring_up(tmp, "host-gw", "rec")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run(live, *args: str) -> tuple[int, float]:
    """The command's exit status and how long it took (printed: no bound on it here)."""
    started = time.monotonic()
    status = main([*args, "--cluster", live.name])
    took = time.monotonic() - started
    print(f"podnet {' '.join(args)}: {took:.3f}s")
    return status, took


def write(tmp: Path, *docs: dict) -> str:
    path = tmp / f"m{time.monotonic_ns()}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def expect(live, src: str, dst: str, port: int, proto: str, want: str) -> None:
    ip = live.ip.get(dst, dst)
    assert probe(live.ns(src), [(ip, port, proto)]) == [want], f"{src} -> {dst}:{port}/{proto}"


def test_label_a_pod_is_enforced_when_the_command_returns(live):
    expect(live, "x/b", "x/a", 80, "TCP", "ok")
    status, _ = run(live, "label", "pods", "b", "app=z", "--overwrite", "-n", "x")
    assert status == 0
    expect(live, "x/b", "x/a", 80, "TCP", "denied")  # no longer app=b
    expect(live, "x/a", "x/b", 80, "TCP", "ok")  # and no longer isolated
    status, _ = run(live, "label", "pods", "b", "app=b", "--overwrite", "-n", "x")
    assert status == 0
    expect(live, "x/b", "x/a", 80, "TCP", "ok")
    expect(live, "x/a", "x/b", 80, "TCP", "denied")


def test_label_a_namespace_and_apply_then_delete_a_policy(live, tmp_path):
    allow = policy(
        "x",
        "team-blue-81",
        {
            "podSelector": {"matchLabels": {"app": "a"}},
            "ingress": [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}],
                    "ports": [{"port": 81}],
                }
            ],
        },
    )
    expect(live, "y/d", "x/a", 81, "TCP", "denied")
    status, _ = run(live, "apply", "-f", write(tmp_path, allow))
    assert status == 0
    expect(live, "y/d", "x/a", 81, "TCP", "denied")  # y has no team label yet
    status, _ = run(live, "label", "namespaces", "y", "team=blue")
    assert status == 0
    expect(live, "y/d", "x/a", 81, "TCP", "ok")
    status, _ = run(live, "label", "ns", "y", "team-")
    assert status == 0
    expect(live, "y/d", "x/a", 81, "TCP", "denied")
    assert run(live, "label", "ns", "y", "team=blue")[0] == 0
    status, _ = run(live, "delete", "networkpolicy", "team-blue-81", "-n", "x")
    assert status == 0
    expect(live, "y/d", "x/a", 81, "TCP", "denied")
    assert run(live, "label", "ns", "y", "team-")[0] == 0


def test_apply_and_delete_a_pod(live, tmp_path):
    new = pod("x", "f", "node-1", {"app": "b"}, [{"name": "http", "containerPort": 80}])
    status, _ = run(live, "apply", "-f", write(tmp_path, new))
    assert status == 0
    with Store.open(live.root / live.name) as store:
        node, ip = store.held()[("x", "f")]
    assert node == "node-1"
    pod_ns = live.ns("x/f")
    assert pod_ns in netns.listing()
    expect(live, "x/f", "x/a", 80, "TCP", "ok")  # app=b: admitted by a-ingress
    expect(live, "x/a", ip, 80, "TCP", "denied")  # isolated by b-isolated from the start
    status, _ = run(live, "delete", "pod", "f", "-n", "x")
    assert status == 0
    assert pod_ns not in netns.listing()
    with Store.open(live.root / live.name) as store:
        assert ("x", "f") not in store.held()


ECHO_SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9004)); s.listen(1); print("ready", flush=True)
c, _ = s.accept()
while (data := c.recv(100)):
    c.sendall(data)
"""
ECHO_CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], 9004), timeout=5); print("connected", flush=True)
for line in sys.stdin:
    s.sendall(line.encode()); print(s.recv(100).decode().strip(), flush=True)
"""


@contextlib.contextmanager
def echo_connection(live, server_key: str, client_key: str):
    """One TCP connection held open from client_key to an echo server in server_key (port
    9004); yields ping(text), which sends a line over it and returns the echo."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", live.ns(server_key), sys.executable, "-c", ECHO_SERVER],
        stdout=subprocess.PIPE,
        text=True,
    )
    client = None
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        argv = ["ip", "netns", "exec", live.ns(client_key), sys.executable, "-c", ECHO_CLIENT]
        client = subprocess.Popen(
            [*argv, live.ip[server_key]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        stdin, stdout = client.stdin, client.stdout
        assert stdin is not None and stdout is not None
        assert stdout.readline().strip() == "connected"

        def ping(text: str) -> str:
            stdin.write(text + "\n")
            stdin.flush()
            return stdout.readline().strip()

        yield ping
    finally:
        for proc in (client, server):
            if proc is not None:
                proc.kill()
                proc.communicate()  # reaps it and closes its pipes


def test_established_connections_survive_unrelated_changes(live, tmp_path):
    with echo_connection(live, "x/a", "x/b") as ping:
        unrelated = policy("y", "unrelated", {"podSelector": {"matchLabels": {"app": "d"}}})
        changes = [
            ("apply", "-f", write(tmp_path, unrelated)),
            ("label", "pods", "d", "tier=one", "-n", "y"),
            ("label", "pods", "c", "tier=two", "-n", "x"),
            ("delete", "networkpolicy", "unrelated", "-n", "y"),
            ("label", "pods", "d", "tier-", "-n", "y"),
            ("label", "pods", "c", "tier-", "-n", "x"),
        ]
        for i, change in enumerate(changes):
            assert run(live, *change)[0] == 0
            assert ping(f"ping {i}") == f"ping {i}"


@pytest.mark.parametrize(
    "args, message",
    [
        (("label", "pods", "a", "app=q", "-n", "x"), "already has a value"),
        (("label", "pods", "a", "a/b/c=v", "-n", "x"), "metadata.labels"),
        (("label", "ns", "x", "kubernetes.io/metadata.name=q", "--overwrite"), "API server"),
        (("label", "services", "s", "k=v"), "pods and namespaces"),
        (("delete", "pod", "nope", "-n", "x"), 'Pod "nope" not found'),
        (("delete", "node", "node-1"), "nodes cannot be deleted"),
        (("delete", "gizmo", "g"), "unknown kind"),
    ],
    ids=["overwrite", "bad-key", "ns-name-label", "kind", "not-found", "node", "unknown-kind"],
)
def test_bad_commands_change_nothing(live, capsys, args, message):
    with Store.open(live.root / live.name) as store:
        before = store.revision()
    assert run(live, *args)[0] == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    with Store.open(live.root / live.name) as store:
        assert store.revision() == before


def test_bad_apply_names_file_object_and_field(live, tmp_path, capsys):
    bad = policy(
        "x", "broken", {"podSelector": {}, "ingress": [{"ports": [{"port": 80, "endPort": 10}]}]}
    )
    ok = pod("x", "g", "node-1", {"app": "g"}, [])
    path = write(tmp_path, ok, bad)
    with Store.open(live.root / live.name) as store:
        before = store.revision()
    assert run(live, "apply", "-f", path)[0] == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and path in err[0] and "NetworkPolicy x/broken" in err[0], err
    assert "endPort" in err[0]
    with Store.open(live.root / live.name) as store:
        assert store.revision() == before  # the good pod of the same file is not applied
    assert live.ns("x/g") not in netns.listing()


def test_a_failed_sync_makes_the_next_one_full(live):
    runner = FakeRunner(fail={live.ns("node/node-1")})
    rec = Reconciler(live.root / live.name, live.name, runner)
    rec.assume_synced()
    first = rec.sync()
    assert first.ok and not first.full
    runner.fail.clear()
    # Force a changed ruleset on node-1 only in the fake: the real kernel is not touched.
    rec.rulesets = {}
    runner.fail.add(live.ns("node/node-1"))
    failed = rec.sync()
    assert not failed.ok and "node-1" in (failed.error or "")
    runner.fail.clear()
    again = rec.sync()
    assert again.ok and again.full
    assert set(runner.applied) == {live.ns("node/node-1"), live.ns("node/node-2")}


def test_the_periodic_full_sync_restores_a_deleted_table(live):
    node_ns = live.ns("node/node-1")
    table = ("nft", "list", "table", "inet", table_name(live.name))
    assert in_netns(node_ns, *table).returncode == 0
    expect(live, "x/b", "x/a", 81, "TCP", "denied")
    # Behind the daemon's back: only our own table, inside our own node namespace.
    out = in_netns(node_ns, "nft", "delete", "table", "inet", table_name(live.name))
    assert out.returncode == 0, out.stderr
    assert in_netns(node_ns, *table).returncode != 0
    started = time.monotonic()
    while in_netns(node_ns, *table).returncode != 0:
        assert time.monotonic() - started < 60, "the table never came back"
        time.sleep(0.1)
    print(f"table restored after {time.monotonic() - started:.2f}s (resync period {RESYNC}s)")
    expect(live, "x/b", "x/a", 81, "TCP", "denied")  # enforced again
    expect(live, "x/b", "x/a", 80, "TCP", "ok")
