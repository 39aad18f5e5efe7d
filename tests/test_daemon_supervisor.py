"""Starting, reloading and stopping the daemon of a real cluster (`podnet up`), including
after SIGKILL and with a stale or missing pid file; changes made as a user makes them
(`podnet apply`), and SIGHUP re-reading runtime.json. Needs root.

Every test that changes or kills something gets a cluster of its own; the daemon's periodic
full sync is pushed out of the way (an hour), so that a runtime.json or a namespace a test
changed by hand stays as the test left it while it looks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from podnet.controller.syncer import RESYNC_ENV
from podnet.daemon import procs, supervisor
from podnet.testing import Live, connect, live_cluster, namespace, pod, read_all

pytestmark = pytest.mark.datapath

QUIET = {RESYNC_ENV: "3600"}
WEB = pod("shop/web", containers={"app": [{"containerPort": 8080}]})
DOCS = [namespace("shop"), WEB, pod("shop/client")]

Up = Callable[..., Live]


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[Live]:
    """For the tests that only look."""
    with live_cluster(tmp_path_factory.mktemp("sup"), DOCS, "psup", nodes=1, env=QUIET) as c:
        yield c


@pytest.fixture
def up(tmp_path) -> Iterator[Up]:
    """up(docs=DOCS): a cluster of this test's own, down when the test ends."""
    with ExitStack() as stack:

        def bring_up(docs: list[dict[str, Any]] = DOCS) -> Live:
            return stack.enter_context(live_cluster(tmp_path, docs, "psup", nodes=1, env=QUIET))

        yield bring_up


@pytest.fixture
def live(up: Up) -> Live:
    return up()


def client(live: Live) -> str:
    return live.pod("shop/client")["netns"]


def web(live: Live) -> str:
    return live.pod_ips()["shop/web"]


def answer(live: Live, ip: str, port: int) -> bytes:
    with connect(client(live), ip, port) as s:
        return read_all(s)


def test_start_is_quick_and_writes_pid_log_status(shared):
    pid = supervisor.running_pid(shared.sdir)
    assert pid is not None
    assert int((shared.sdir / "daemon.pid").read_text()) == pid
    assert json.loads((shared.sdir / "daemon.json").read_text())["pid"] == pid
    assert "serving 2 pod(s)" in (shared.sdir / "daemon.log").read_text()
    # under its watchdog, in the watchdog's own session, stdin from /dev/null
    dog = supervisor.watchdog_pid(shared.sdir)
    assert dog is not None and int((shared.sdir / "watchdog.pid").read_text()) == dog
    assert os.getsid(dog) == dog and os.getsid(pid) == dog
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"


def test_start_twice_keeps_one_daemon(shared):
    pid = supervisor.running_pid(shared.sdir)
    supervisor.start(shared.sdir, shared.name)
    assert procs.find(shared.sdir.resolve()) == [pid]


def test_apply_opens_new_ports_and_pods_and_closes_removed_ones(live):
    changed = pod("shop/web", containers={"app": [{"containerPort": 8081}]})
    out = live.apply([changed, pod("shop/new", containers={"api": [{"containerPort": 80}]})])
    assert "pod/web configured" in out and "pod/new created" in out
    supervisor.wait_ready(live.sdir, 30)  # a functional wait, not a time bound
    assert answer(live, web(live), 8081) == b"shop/web app\n"
    assert answer(live, live.pod_ips()["shop/new"], 80) == b"shop/new api\n"
    with pytest.raises(ConnectionRefusedError):
        connect(client(live), web(live), 8080)
    assert json.loads((live.sdir / "ready.json").read_text()) == {
        "shop/web": True,
        "shop/client": True,
        "shop/new": True,
    }


def test_apply_renames_in_place(live):
    live.apply([pod("shop/web", containers={"renamed": [{"containerPort": 8080}]})])
    supervisor.wait_ready(live.sdir, 30)  # a functional wait, not a time bound
    assert answer(live, web(live), 8080) == b"shop/web renamed\n"
    assert "1 renamed" in (live.sdir / "daemon.log").read_text()


def test_sighup_rereads_runtime_json(live):
    doc = live.runtime()
    web_entry = next(p for p in doc["pods"] if p["name"] == "web")
    web_entry["containers"][0]["name"] = "by-hand"
    (live.sdir / "runtime.json").write_text(json.dumps(doc, indent=1))
    supervisor.reload(live.sdir)
    supervisor.wait_ready(live.sdir, 30)  # a functional wait, not a time bound
    assert answer(live, web(live), 8080) == b"shop/web by-hand\n"


def test_a_pod_namespace_deleted_behind_the_clusters_back_comes_back(up):
    live = up([*DOCS, pod("shop/ghost", containers={"a": [{"containerPort": 80}]})])
    # The ghost's namespace goes behind the cluster's back; the daemon, told to reload,
    # finds it gone: the pod turns unready, which makes the controller sync, and that
    # sync (the namespace is missing from the kernel) builds it again.
    subprocess.run(["ip", "netns", "del", live.pod("shop/ghost")["netns"]], check=True)
    supervisor.reload(live.sdir)
    assert any("does not exist" in w for w in supervisor.warnings(live.sdir))
    seen = []
    supervisor.wait_ready(live.sdir, 10.0, lambda ready, total: seen.append((ready, total)))
    assert seen[-1] == (3, 3)
    assert answer(live, live.pod_ips()["shop/ghost"], 80) == b"shop/ghost a\n"


def test_stop_after_sigkill(live):
    pid = supervisor.running_pid(live.sdir)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    supervisor.stop(live.sdir)
    assert not procs.alive(pid)
    assert not (live.sdir / "daemon.pid").exists()
    assert supervisor.running_pid(live.sdir) is None
    with pytest.raises(ConnectionRefusedError):  # its sockets died with it
        connect(client(live), web(live), 8080)
    supervisor.stop(live.sdir)  # idempotent


def test_stop_without_pid_file_finds_the_daemon_by_its_command_line(live):
    pid = supervisor.running_pid(live.sdir)
    assert pid is not None
    (live.sdir / "daemon.pid").unlink()
    supervisor.stop(live.sdir)
    assert not procs.alive(pid)


def test_stale_pid_file_never_kills_a_stranger(live):
    supervisor.stop(live.sdir)
    (live.sdir / "daemon.pid").write_text(f"{os.getpid()}\n")  # this very test process
    supervisor.stop(live.sdir)
    assert procs.alive(os.getpid())
    assert not (live.sdir / "daemon.pid").exists()


def test_restart_after_sigkill_serves_again(live):
    pid = supervisor.running_pid(live.sdir)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while procs.alive(pid):
        time.sleep(0.01)
    supervisor.start(live.sdir, live.name)  # the stale pid file and lock are no obstacle
    supervisor.wait_ready(live.sdir, 30)  # a functional wait, not a time bound
    assert answer(live, web(live), 8080) == b"shop/web app\n"


def test_sigterm_exit_removes_pid_and_status_files(live):
    pid = supervisor.running_pid(live.sdir)
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    while procs.alive(pid):
        time.sleep(0.01)
    assert not (live.sdir / "daemon.pid").exists()
    assert not (live.sdir / "daemon.json").exists()
    assert "stopping" in (live.sdir / "daemon.log").read_text()


def test_a_pod_whose_namespace_was_recreated_is_served_again(live):
    """A pod's namespace deleted behind the cluster's back: the next sync (here after a
    label change) re-creates it under the same name, with the same address, so runtime.json
    does not change at all; the old socket lives in the dead namespace, so the daemon must
    notice the new namespace (not the name) and open the port again."""
    before = (live.sdir / "runtime.json").read_bytes()
    subprocess.run(["ip", "netns", "del", live.pod("shop/web")["netns"]], check=True)
    out = live.cli("label", "pod", "client", "touched=yes", "-n", "shop")
    assert out.returncode == 0, out.stderr
    supervisor.wait_ready(live.sdir, 30)  # a functional wait, not a time bound
    assert (live.sdir / "runtime.json").read_bytes() == before
    assert answer(live, web(live), 8080) == b"shop/web app\n"


def test_a_malformed_runtime_json_is_refused_and_the_old_one_kept(live):
    src, dst = client(live), web(live)  # read while runtime.json is still whole
    (live.sdir / "runtime.json").write_text("{not json")
    with pytest.raises(supervisor.DaemonError, match=r"could not reload: .*malformed"):
        supervisor.reload(live.sdir)
    with connect(src, dst, 8080) as s:
        assert read_all(s) == b"shop/web app\n"
