"""A node without isolated pods carries no forward hook (no connection tracking, full
throughput); the first policy that isolates one of its pods installs it, and a connection
that policy still allows goes on undisturbed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from test_nft_live import Live, pod, policy
from test_reconcile_live import echo_connection

from podnet.datapath import netns
from podnet.render import kernel_names
from podnet.testing import podnet, unique_cluster

pytestmark = pytest.mark.datapath

NODES = [
    {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}} for n in ("node-1", "node-2")
]
NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}


def hooked(live: Live, node: str) -> bool:
    out = subprocess.run(
        ["ip", "netns", "exec", kernel_names.node_netns(live.name, node), "nft", "list", "ruleset"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return "hook forward" in out


@pytest.fixture
def live(tmp_path: Path):
    env = {"PODNET_STATE_DIR": str(tmp_path / "state")}
    name = unique_cluster("hook")
    docs = [
        *NODES,
        NS,
        pod("x", "a", "node-1", {"app": "a"}, [{"containerPort": 8080}]),
        pod("x", "b", "node-2", {"app": "b"}, [{"containerPort": 9005}]),
    ]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    try:
        out = podnet("up", "-f", str(path), "--cluster", name, env=env)
        assert out.returncode == 0, out.stderr
        yield Live(name, env, tmp_path / "state")
    finally:
        podnet("down", "--cluster", name, env=env)
        assert netns.listing(kernel_names.netns_prefix(name)) == []


def test_first_isolation_installs_the_hook_and_keeps_an_allowed_connection(
    live: Live, tmp_path: Path
) -> None:
    assert not hooked(live, "node-1") and not hooked(live, "node-2")
    with echo_connection(live, "x/a", "x/b") as ping:
        # a admits b on 9004; b may send only to a on 9004 and admits nothing: both ends
        # become isolated, in both directions, while the connection is open.
        docs = [
            policy(
                "x",
                "a-in",
                {
                    "podSelector": {"matchLabels": {"app": "a"}},
                    "ingress": [
                        {
                            "from": [{"podSelector": {"matchLabels": {"app": "b"}}}],
                            "ports": [{"port": 9004}],
                        }
                    ],
                },
            ),
            policy(
                "x",
                "b-out",
                {
                    "podSelector": {"matchLabels": {"app": "b"}},
                    "policyTypes": ["Ingress", "Egress"],
                    "egress": [
                        {
                            "to": [{"podSelector": {"matchLabels": {"app": "a"}}}],
                            "ports": [{"port": 9004}],
                        }
                    ],
                },
            ),
        ]
        path = tmp_path / "p.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        out = podnet("apply", "-f", str(path), "--cluster", live.name, env=live.env)
        assert out.returncode == 0, out.stderr
        assert hooked(live, "node-1") and hooked(live, "node-2")
        for i in range(3):
            assert ping(f"ping {i}") == f"ping {i}"
        live.check([("x/a", "x/b", 9005, "TCP", "denied"), ("x/b", "x/a", 8080, "TCP", "denied")])
