"""NetworkPolicy enforced by the kernel: real packets through each node's nft ruleset.

One module-scoped cluster per mode (host-gw, vxlan), two nodes:

    node-1: x/a (app=a), x/b (app=b)          node-2: x/c (app=c), x/e (app=b), y/d (app=d)

Policies: a admits app=b on its named port http (80) and on 9000-9005 (endPort), and UDP 53
from namespace y; b admits nothing (ingress-isolated); c may send only to 10.244.0.0/16
except node-1's podCIDR; d may send to namespace x and to the internet network except the
internet namespace's own address. A denied connection is rejected at once (EHOSTUNREACH),
so "denied" is told apart from "refused" (no listener) and from a timeout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from podnet.datapath import netns
from podnet.render import kernel_names
from podnet.testing import podnet, unique_cluster

pytestmark = pytest.mark.datapath

PROBE = r"""
import errno, json, socket, sys, threading
def one(ip, port, proto, timeout):
    try:
        if proto == "TCP":
            s = socket.create_connection((ip, port), timeout=timeout)
            s.sendall(b"x\n"); data = s.recv(200); s.close()
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(timeout)
            s.connect((ip, port)); s.send(b"x\n"); data = s.recv(200); s.close()
        return "ok" if data else "empty"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return {errno.EHOSTUNREACH: "denied", errno.ECONNREFUSED: "refused"}.get(e.errno, str(e))
checks = json.loads(sys.argv[1]); out = [None] * len(checks)
def run(i, c): out[i] = one(*c)
ts = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(checks)]
[t.start() for t in ts]; [t.join() for t in ts]
print(json.dumps(out))
"""


def probe(netns_name: str, checks: list[tuple[str, int, str]], timeout: float = 1.0) -> list[str]:
    """From inside `netns_name`, every (ip, port, proto) at once: ok/denied/refused/timeout."""
    arg = json.dumps([[ip, port, proto, timeout] for ip, port, proto in checks])
    out = subprocess.run(
        ["ip", "netns", "exec", netns_name, sys.executable, "-c", PROBE, arg],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(out.stdout)


def pod(ns: str, name: str, node: str, labels: dict[str, str], ports: list[dict]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x", "ports": ports}]},
    }


def policy(ns: str, name: str, spec: dict) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


PORTS = [
    {"name": "http", "containerPort": 80},
    {"containerPort": 81},
    {"containerPort": 9003},
    {"containerPort": 9006},
    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
]


def manifests(internet_ip: str) -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "y"}},
        *(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}}
            for n in ("node-1", "node-2")
        ),
        pod("x", "a", "node-1", {"app": "a"}, PORTS),
        pod("x", "b", "node-1", {"app": "b"}, PORTS),
        pod("x", "c", "node-2", {"app": "c"}, PORTS),
        pod("x", "e", "node-2", {"app": "b"}, PORTS),
        pod("y", "d", "node-2", {"app": "d"}, PORTS),
        policy(
            "x",
            "a-ingress",
            {
                "podSelector": {"matchLabels": {"app": "a"}},
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"app": "b"}}}],
                        "ports": [{"port": "http"}, {"port": 9000, "endPort": 9005}],
                    },
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "y"}
                                }
                            }
                        ],
                        "ports": [{"port": 53, "protocol": "UDP"}],
                    },
                ],
            },
        ),
        policy("x", "b-isolated", {"podSelector": {"matchLabels": {"app": "b"}}}),
        policy(
            "x",
            "c-egress",
            {
                "podSelector": {"matchLabels": {"app": "c"}},
                "policyTypes": ["Egress"],
                "egress": [
                    {"to": [{"ipBlock": {"cidr": "10.244.0.0/16", "except": ["10.244.0.0/24"]}}]}
                ],
            },
        ),
        policy(
            "y",
            "d-egress",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "x"}
                                }
                            }
                        ]
                    },
                    {
                        "to": [
                            {
                                "ipBlock": {
                                    "cidr": "203.0.113.0/24",
                                    "except": [f"{internet_ip}/32"],
                                }
                            }
                        ]
                    },
                ],
            },
        ),
    ]


class Live:
    def __init__(self, name: str, env: dict[str, str], root: Path) -> None:
        self.name, self.env, self.root = name, env, root
        self.runtime = json.loads((root / name / "runtime.json").read_text())
        self.ip = {f"{p['namespace']}/{p['name']}": p["ip"] for p in self.runtime["pods"]}

    def ns(self, key: str) -> str:
        if key.startswith("node/"):
            return kernel_names.node_netns(self.name, key[5:])
        namespace, pod_name = key.split("/")
        return kernel_names.pod_netns(self.name, namespace, pod_name)

    def check(self, cases: list[tuple[str, str, int, str, str]]) -> None:
        """cases: (src, dst, port, proto, expected); dst is "ns/pod" or an address."""
        by_src: dict[str, list[int]] = {}
        for i, c in enumerate(cases):
            by_src.setdefault(c[0], []).append(i)
        got: dict[int, str] = {}
        for src, idx in by_src.items():
            targets = [
                (self.ip.get(cases[i][1], cases[i][1]), cases[i][2], cases[i][3]) for i in idx
            ]
            for i, result in zip(idx, probe(self.ns(src), targets), strict=True):
                got[i] = result
        wrong = [
            f"{s} -> {d}:{p}/{pr}: expected {e}, got {got[i]}"
            for i, (s, d, p, pr, e) in enumerate(cases)
            if got[i] != e
        ]
        assert not wrong, "\n".join(wrong)


def bring_up(tmp: Path, mode: str, prefix: str):
    root = tmp / "state"
    env = {"PODNET_STATE_DIR": str(root)}
    name = unique_cluster(prefix)
    internet = "203.0.113.2"  # checked against runtime.json below
    path = tmp / "cluster.yaml"
    path.write_text(yaml.safe_dump_all(manifests(internet)))
    try:
        out = podnet("up", "-f", str(path), "--cluster", name, "--mode", mode, env=env)
        assert out.returncode == 0, out.stderr
        live = Live(name, env, root)
        assert live.runtime["internet"]["ip"] == internet
        yield live
    finally:
        podnet("down", "--cluster", name, env=env)
        assert netns.listing(kernel_names.netns_prefix(name)) == []


@pytest.fixture(scope="module", params=["host-gw", "vxlan"])
def live(request, tmp_path_factory):
    yield from bring_up(tmp_path_factory.mktemp(request.param), request.param, "nft")


def test_ingress_named_port_and_end_port_on_one_node(live):
    live.check(
        [
            ("x/b", "x/a", 80, "TCP", "ok"),  # named port http
            ("x/b", "x/a", 81, "TCP", "denied"),
            ("x/b", "x/a", 9003, "TCP", "ok"),  # 9000-9005
            ("x/b", "x/a", 9006, "TCP", "denied"),
            ("x/b", "x/a", 53, "UDP", "denied"),  # UDP only from namespace y
        ]
    )


def test_ingress_across_nodes_tcp_and_udp(live):
    live.check(
        [
            ("x/e", "x/a", 80, "TCP", "ok"),
            ("x/e", "x/a", 9006, "TCP", "denied"),
            ("y/d", "x/a", 53, "UDP", "ok"),
            ("y/d", "x/a", 80, "TCP", "denied"),
        ]
    )


def test_stateful_replies_pass_but_the_other_way_is_judged_on_its_own(live):
    # b admits nothing, yet b's connections to a get their replies.
    live.check(
        [
            ("x/b", "x/a", 80, "TCP", "ok"),
            ("x/a", "x/b", 80, "TCP", "denied"),
            ("x/e", "x/b", 80, "TCP", "denied"),  # across nodes too
            ("y/d", "x/b", 53, "UDP", "denied"),
        ]
    )


def test_egress_ipblock_with_except_over_pod_addresses(live):
    live.check(
        [
            ("x/c", "y/d", 81, "TCP", "ok"),  # node-2's podCIDR: allowed, same node
            ("x/c", "y/d", 53, "UDP", "ok"),
            ("x/c", "x/a", 53, "UDP", "denied"),  # node-1's podCIDR is excepted
            ("x/c", "x/b", 80, "TCP", "denied"),
        ]
    )


def test_egress_ipblock_except_the_internet_address(live):
    internet = live.runtime["internet"]["ip"]
    fabric = "203.0.113.1"
    results = probe(live.ns("y/d"), [(internet, 80, "TCP"), (fabric, 80, "TCP")], timeout=0.5)
    assert results[0] == "denied"
    assert results[1] != "denied"  # allowed by the ipBlock: whatever answers, not a reject


def test_a_node_reaches_its_own_isolated_pods_and_other_nodes_are_judged(live):
    # "traffic to and from the node where a Pod is running is always allowed"; another
    # node's address is an outside peer like any other (the engine says so too).
    live.check(
        [("node/node-1", "x/b", 81, "TCP", "ok"), ("node/node-2", "x/b", 80, "TCP", "denied")]
    )


def test_counters_count_connections_per_policy(live):
    from podnet.datapath.nft import read_counters
    from podnet.policy.engine import Engine
    from podnet.render.policy_counters import policy_counts
    from podnet.state.snapshot import read_cluster
    from podnet.state.store import Store

    def counts() -> dict[str, tuple[int, int]]:
        with Store.open(live.root / live.name) as store:
            stored = read_cluster(store)
        node_ns = {n: kernel_names.node_netns(live.name, n) for n in ("node-1", "node-2")}
        return policy_counts(Engine(stored.cluster, stored.placement()), read_counters(node_ns))

    before = counts()
    live.check([("x/b", "x/a", 80, "TCP", "ok")] * 3 + [("x/b", "x/a", 81, "TCP", "denied")])
    after = counts()
    assert after["x/a-ingress"][0] - before["x/a-ingress"][0] == 3
    # One rejected SYN per attempt: the client gives up at the first ICMP error.
    assert after["x/a-ingress"][1] - before["x/a-ingress"][1] == 1
    out = podnet("get", "networkpolicies", "-n", "x", "--cluster", live.name, env=live.env)
    assert out.returncode == 0, out.stderr
    row = next(line.split() for line in out.stdout.splitlines() if line.startswith("a-ingress"))
    assert row[2:4] == [str(after["x/a-ingress"][0]), str(after["x/a-ingress"][1])]


def test_the_ruleset_lives_only_in_node_namespaces(live):
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True)
    assert "podnet" not in out.stdout  # read-only listing of the host namespace
    rules = subprocess.run(
        ["ip", "netns", "exec", live.ns("node/node-1"), "nft", "list", "tables"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"table inet podnet_{live.name.replace('-', '_')}" in rules.stdout
