"""`podnet exec` target resolution and the resolv.conf it mounts: pure."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from podnet.enter.resolv import OUTSIDE_RESOLV, pod_resolv, resolv_file
from podnet.enter.targets import TargetError, resolve
from podnet.render.runtime import parse
from podnet.testing import pod_entry, runtime_doc

RUNTIME = parse(
    runtime_doc(
        "c",
        [{"name": "node-1", "ip": "172.18.0.2", "netns": "c-node-1"}],
        [
            pod_entry("shop", "web", "node-1", "10.244.0.5", "c-web", {"app": [], "side": []}),
            pod_entry(
                "kube-system", "agent", "node-1", "172.18.0.2", "c-node-1", {"a": []}, None, True
            ),
        ],
    )
)


def test_pod_resolv_is_what_kubelet_writes():
    assert pod_resolv("shop", "10.96.0.10", "cluster.local") == (
        "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\n"
        "options ndots:5\n"
    )


@pytest.mark.parametrize(
    ("spec", "container", "netns", "hostname", "resolv_name"),
    [
        ("shop/web", None, "c-web", "web", "pod-shop"),
        ("shop/web", "side", "c-web", "web", "pod-shop"),
        ("node/node-1", None, "c-node-1", "node-1", "outside"),
        ("internet", None, "c-internet", "internet", "outside"),
        ("kube-system/agent", None, "c-node-1", "node-1", "outside"),
    ],
    ids=["pod", "pod-container", "node", "internet", "host-network-pod"],
)
def test_resolve(spec, container, netns, hostname, resolv_name):
    t = resolve(RUNTIME, spec, container)
    assert (t.netns, t.hostname, t.resolv_name) == (netns, hostname, resolv_name)


@pytest.mark.parametrize(
    ("spec", "container", "message"),
    [
        ("shop/nope", None, "no pod shop/nope in cluster c"),
        ("shop/web", "nope", "pod shop/web has no container nope (containers: app, side)"),
        ("node/node-9", None, "no node node-9 in cluster c (nodes: node-1)"),
        ("node/node-1", "app", "-c applies to pods"),
        ("internet", "app", "-c applies to pods"),
        ("web", None, "a target is NS/POD, node/NAME or internet"),
        ("a/b/c", None, "a target is NS/POD, node/NAME or internet"),
    ],
)
def test_resolve_errors_are_one_clear_line(spec, container, message):
    with pytest.raises(TargetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(RUNTIME, spec, container)


def test_resolv_file_lives_in_the_state_dir_and_is_rewritten_only_on_change():
    with tempfile.TemporaryDirectory() as d:
        check_resolv_file(Path(d))


def check_resolv_file(tmp_path: Path) -> None:
    path = resolv_file(tmp_path, "outside", OUTSIDE_RESOLV)
    assert path == tmp_path / "exec" / "outside.resolv.conf"
    mtime = path.stat().st_mtime_ns
    assert resolv_file(tmp_path, "outside", OUTSIDE_RESOLV).stat().st_mtime_ns == mtime
    assert resolv_file(tmp_path, "outside", "x\n").read_text() == "x\n"
