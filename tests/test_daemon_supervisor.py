"""Starting, reloading and stopping the daemon, including after SIGKILL and with a stale or
missing pid file. Needs root."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from podnet.daemon import procs, supervisor
from podnet.testing import Topology, connect, ip, live_cluster, pod_entry, read_all

pytestmark = pytest.mark.datapath

WEB, CLIENT = "10.244.0.5", "10.244.0.6"


def build(t: Topology) -> None:
    t.add_node("n1", "172.18.0.2")
    t.add_pod("n1", "shop", "web", WEB, {"app": [(8080, "TCP")]})
    t.add_pod("n1", "shop", "client", CLIENT)


@pytest.fixture
def live():
    with live_cluster(build) as cluster:
        yield cluster


def client(live):
    return live.topology.netns("shop-client")


def test_start_is_quick_and_writes_pid_log_status(live):
    pid = supervisor.running_pid(live.root)
    assert pid is not None
    assert int((live.root / "daemon.pid").read_text()) == pid
    assert json.loads((live.root / "daemon.json").read_text())["pid"] == pid
    assert "serving 2 pod(s)" in (live.root / "daemon.log").read_text()
    # its own session, stdin from /dev/null
    assert os.getsid(pid) == pid
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"


def test_start_twice_keeps_one_daemon(live):
    pid = supervisor.running_pid(live.root)
    supervisor.start(live.root, live.cluster)
    assert procs.find(live.root.resolve()) == [pid]


def test_sighup_reload_opens_new_ports_and_pods_and_closes_removed_ones(live):
    t = live.topology
    t.pods[0]["containers"][0]["ports"] = [{"name": None, "port": 8081, "protocol": "TCP"}]
    t.add_pod("n1", "shop", "new", "10.244.0.7", {"api": [(80, "TCP")]})
    t.write_runtime(live.root, live.cluster)
    supervisor.reload(live.root)
    supervisor.wait_ready(live.root, 5)
    with connect(client(live), WEB, 8081) as s:
        assert read_all(s) == b"shop/web app\n"
    with connect(client(live), "10.244.0.7", 80) as s:
        assert read_all(s) == b"shop/new api\n"
    with pytest.raises(ConnectionRefusedError):
        connect(client(live), WEB, 8080)
    assert json.loads((live.root / "ready.json").read_text()) == {
        "shop/web": True,
        "shop/client": True,
        "shop/new": True,
    }


def test_reload_renames_in_place(live):
    live.topology.pods[0]["containers"][0]["name"] = "renamed"
    live.topology.write_runtime(live.root, live.cluster)
    supervisor.reload(live.root)
    supervisor.wait_ready(live.root, 5)
    with connect(client(live), WEB, 8080) as s:
        assert read_all(s) == b"shop/web renamed\n"


def test_wait_ready_names_the_pods_that_do_not_answer(live):
    live.topology.pods.append(
        pod_entry(
            "shop", "ghost", "n1", "10.244.0.9", live.topology.netns("gone"), {"a": [(80, "TCP")]}
        )
    )
    live.topology.write_runtime(live.root, live.cluster)
    supervisor.reload(live.root)
    seen = []
    with pytest.raises(TimeoutError, match=r"1 of 3 pod\(s\) do not answer .*: shop/ghost;"):
        supervisor.wait_ready(live.root, 1.0, lambda ready, total: seen.append((ready, total)))
    assert seen[-1] == (2, 3)
    assert any("does not exist" in w for w in supervisor.warnings(live.root))


def test_stop_after_sigkill(live):
    pid = supervisor.running_pid(live.root)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    supervisor.stop(live.root)
    assert not procs.alive(pid)
    assert not (live.root / "daemon.pid").exists()
    assert supervisor.running_pid(live.root) is None
    with pytest.raises(ConnectionRefusedError):  # its sockets died with it
        connect(client(live), WEB, 8080)
    supervisor.stop(live.root)  # idempotent


def test_stop_without_pid_file_finds_the_daemon_by_its_command_line(live):
    pid = supervisor.running_pid(live.root)
    assert pid is not None
    (live.root / "daemon.pid").unlink()
    supervisor.stop(live.root)
    assert not procs.alive(pid)


def test_stale_pid_file_never_kills_a_stranger(live):
    supervisor.stop(live.root)
    (live.root / "daemon.pid").write_text(f"{os.getpid()}\n")  # this very test process
    supervisor.stop(live.root)
    assert procs.alive(os.getpid())
    assert not (live.root / "daemon.pid").exists()


def test_restart_after_sigkill_serves_again(live):
    pid = supervisor.running_pid(live.root)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while procs.alive(pid):
        time.sleep(0.01)
    supervisor.start(live.root, live.cluster)  # the stale pid file and lock are no obstacle
    supervisor.wait_ready(live.root, 5)
    with connect(client(live), WEB, 8080) as s:
        assert read_all(s) == b"shop/web app\n"


def test_sigterm_exit_removes_pid_and_status_files(live):
    pid = supervisor.running_pid(live.root)
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    while procs.alive(pid):
        time.sleep(0.01)
    assert not (live.root / "daemon.pid").exists()
    assert not (live.root / "daemon.json").exists()
    assert "stopping" in (live.root / "daemon.log").read_text()


def test_reload_serves_a_pod_whose_namespace_was_recreated(live):
    """`apply` may delete and re-create a pod under the same name: the old socket lives in
    the dead namespace, so the daemon must notice the new namespace (not the name) and
    open the port again, even though runtime.json did not change at all."""
    t = live.topology
    ip("netns", "del", t.netns("shop-web"))
    t.namespaces.remove(t.netns("shop-web"))
    old = t.pods.pop(0)
    t.add_pod("n1", "shop", "web", WEB, {"app": [(8080, "TCP")]})
    t.pods.insert(0, t.pods.pop())  # the same order: the same runtime.json, byte for byte
    assert t.pods[0] == old
    supervisor.reload(live.root)
    supervisor.wait_ready(live.root, 5)
    with connect(client(live), WEB, 8080) as s:
        assert read_all(s) == b"shop/web app\n"


def test_a_malformed_runtime_json_is_refused_and_the_old_one_kept(live):
    (live.root / "runtime.json").write_text("{not json")
    with pytest.raises(supervisor.DaemonError, match=r"could not reload: .*malformed"):
        supervisor.reload(live.root)
    with connect(client(live), WEB, 8080) as s:
        assert read_all(s) == b"shop/web app\n"
