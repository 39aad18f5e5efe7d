"""Which pods the workload stand-in keeps running across a reload (workload.standin
.still_running): a port `podnet serve` stops or starts leaves the pod running, as the
kubelet's container runs on while its application stops listening; any other change of a
pod's sockets or checks makes the stand-in verify it again. No root, no sockets."""

from __future__ import annotations

from podnet.workload.listeners import Changes
from podnet.workload.sockets import NO_PORT, Check, Endpoint, Identity, SocketPlan
from podnet.workload.standin import still_running

NS = "podnet.t.pod.x.a"
WHO = Identity("x", "a", "c", "node-1", "10.244.0.2")


def ep(port: int) -> Endpoint:
    return Endpoint(NS, "0.0.0.0", port, "TCP")


def check(port: int) -> Check:
    return Check("podnet.t.node.node-1", WHO.pod_ip, port, "TCP", WHO.line)


def plan(*ports: int) -> SocketPlan:
    checks = tuple(check(p) for p in ports) or (
        Check("podnet.t.node.node-1", WHO.pod_ip, NO_PORT, "TCP", None),
    )
    return SocketPlan({ep(p): WHO for p in ports}, {"x/a": checks}, (), ())


BEFORE = plan(8080, 7000)
RUNNING = {"x/a": True}


def test_a_port_stopped_or_started_by_podnet_serve_keeps_the_pod_running() -> None:
    stop = Changes(closed={ep(7000)})
    assert still_running(plan(8080), stop, {"x/a": {"7000/TCP"}}, BEFORE.checks, RUNNING) == RUNNING
    start = Changes(opened={ep(7000)})
    after = plan(8080)
    assert still_running(BEFORE, start, {"x/a": {"7000/TCP"}}, after.checks, RUNNING) == RUNNING
    # Every port stopped: the pod's one check is the stand-in's "any answer" of no port.
    every = Changes(closed={ep(8080), ep(7000)})
    toggled = {"x/a": {"8080/TCP", "7000/TCP"}}
    assert still_running(plan(), every, toggled, BEFORE.checks, RUNNING) == RUNNING


def test_other_changes_of_a_pods_sockets_are_verified_again() -> None:
    # The same socket change without `podnet serve`: the runtime changed the pod.
    assert still_running(plan(8080), Changes(), {}, BEFORE.checks, RUNNING) == {"x/a": False}
    # A socket re-opened (its namespace re-created) although the ports are the same.
    again = Changes(opened={ep(8080)})
    assert still_running(BEFORE, again, {}, BEFORE.checks, RUNNING) == {"x/a": False}
    # Toggling another port does not excuse a change of this one.
    assert still_running(
        plan(8080), Changes(closed={ep(7000)}), {"x/a": {"9000/TCP"}}, BEFORE.checks, RUNNING
    ) == {"x/a": False}
    # A new pod, or one not verified yet, is verified whatever was toggled.
    toggled = {"x/a": {"7000/TCP"}}
    assert still_running(plan(8080), Changes(), toggled, {}, {}) == {"x/a": False}
    assert still_running(BEFORE, Changes(), {}, BEFORE.checks, {"x/a": False}) == {"x/a": False}


def test_unchanged_pods_stay_running() -> None:
    assert still_running(BEFORE, Changes(), {}, BEFORE.checks, RUNNING) == RUNNING
