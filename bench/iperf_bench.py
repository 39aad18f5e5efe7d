"""iperf3 single-stream TCP pod-to-pod, on one node and across nodes, in host-gw and vxlan:
podnet's datapath against the same topology built by hand with plain `ip` commands in the
same run. Prints throughput and the ratio podnet / hand (goal >= 0.95 for host-gw).

Datapath only (no daemon). Needs root and iperf3. Everything lives in namespaces named
`podnet.<cluster>.*`; both clusters are removed by prefix even when interrupted.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from podnet.datapath.teardown import teardown
from podnet.render import kernel_names

SECONDS = int(os.environ.get("IPERF_SECONDS", "5"))
ROUNDS = int(os.environ.get("IPERF_ROUNDS", "3"))  # interleaved; the medians are compared
PODS = {"a": ("node-1", "10.244.0.2"), "b": ("node-1", "10.244.0.3"), "c": ("node-2", "10.244.1.2")}
NODES = {"node-1": ("172.18.0.2", "10.244.0.0/24"), "node-2": ("172.18.0.3", "10.244.1.0/24")}
VTEP_MAC = {"node-1": "0e:00:00:00:00:01", "node-2": "0e:00:00:00:00:02"}


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def podnet_cluster(tmp: Path, mode: str) -> tuple[str, dict[str, str]]:
    name = f"ipf-{uuid.uuid4().hex[:6]}"
    docs = [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}, "spec": {"podCIDR": c}}
        for n, (_, c) in NODES.items()
    ]
    docs += [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": p, "namespace": "bench"},
            "spec": {"nodeName": node, "containers": [{"name": "c"}]},
            "status": {"podIP": ip},
        }
        for p, (node, ip) in PODS.items()
    ]
    (tmp / "in.yaml").write_text(yaml.safe_dump_all(docs))
    env = {**os.environ, "PODNET_STATE_DIR": str(tmp / "state")}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "podnet",
            "up",
            "-f",
            str(tmp / "in.yaml"),
            "--cluster",
            name,
            "--mode",
            mode,
            "--no-daemon",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    return name, {p: kernel_names.pod_netns(name, "bench", p) for p in PODS}


def hand_cluster(mode: str) -> tuple[str, dict[str, str]]:
    """The same topology with `ip` commands: a bridge for a fabric, veths, /32 routes,
    a link-local gateway, host-gw routes or a VXLAN device with static FDB entries."""
    name = f"hand-{uuid.uuid4().hex[:6]}"
    pre = kernel_names.netns_prefix(name)
    fab, node_ns = f"{pre}fabric", {n: f"{pre}node.{n}" for n in NODES}
    pod_ns = {p: f"{pre}pod.bench.{p}" for p in PODS}
    mtu = "1450" if mode == "vxlan" else "1500"
    for ns in [fab, *node_ns.values(), *pod_ns.values()]:
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    for ns in [fab, *node_ns.values()]:
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    sh("ip", "-n", fab, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", fab, "link", "set", "br0", "up")
    for i, (n, (ip, _)) in enumerate(NODES.items()):
        port = f"n{i}"
        sh(
            "ip",
            "-n",
            fab,
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            node_ns[n],
        )
        sh("ip", "-n", fab, "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", node_ns[n], "addr", "add", f"{ip}/16", "dev", "eth0")
        sh("ip", "-n", node_ns[n], "link", "set", "eth0", "up")
    for p, (n, ip) in PODS.items():
        veth = f"v{p}"
        sh(
            "ip",
            "-n",
            node_ns[n],
            "link",
            "add",
            veth,
            "mtu",
            mtu,
            "address",
            "ee:ee:ee:ee:ee:ee",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "mtu",
            mtu,
            "netns",
            pod_ns[p],
        )
        sh("ip", "-n", node_ns[n], "link", "set", veth, "up")
        sh("ip", "-n", node_ns[n], "route", "add", f"{ip}/32", "dev", veth, "src", NODES[n][0])
        sh("ip", "-n", pod_ns[p], "link", "set", "eth0", "up")
        sh("ip", "-n", pod_ns[p], "addr", "add", f"{ip}/32", "dev", "eth0")
        sh(
            "ip",
            "-n",
            pod_ns[p],
            "neigh",
            "add",
            "169.254.1.1",
            "lladdr",
            "ee:ee:ee:ee:ee:ee",
            "dev",
            "eth0",
            "nud",
            "permanent",
        )
        sh(
            "ip",
            "-n",
            pod_ns[p],
            "route",
            "add",
            "default",
            "via",
            "169.254.1.1",
            "dev",
            "eth0",
            "onlink",
        )
    for n, (ip, _) in NODES.items():
        for other, (oip, ocidr) in NODES.items():
            if other == n:
                continue
            if mode == "host-gw":
                sh("ip", "-n", node_ns[n], "route", "add", ocidr, "via", oip, "dev", "eth0")
                continue
            ns = node_ns[n]
            if "flannel.1" not in sh("ip", "-n", ns, "link"):
                sh(
                    "ip",
                    "-n",
                    ns,
                    "link",
                    "add",
                    "flannel.1",
                    "address",
                    VTEP_MAC[n],
                    "mtu",
                    mtu,
                    "type",
                    "vxlan",
                    "id",
                    "1",
                    "local",
                    ip,
                    "dev",
                    "eth0",
                    "dstport",
                    "8472",
                    "nolearning",
                )
                sh("ip", "-n", ns, "link", "set", "flannel.1", "up")
            gw = ocidr.split("/")[0]
            sh(
                "ip",
                "-n",
                ns,
                "neigh",
                "add",
                gw,
                "lladdr",
                VTEP_MAC[other],
                "dev",
                "flannel.1",
                "nud",
                "permanent",
            )
            sh(
                "bridge",
                "-n",
                ns,
                "fdb",
                "append",
                VTEP_MAC[other],
                "dev",
                "flannel.1",
                "dst",
                oip,
                "self",
                "permanent",
            )
            sh(
                "ip",
                "-n",
                ns,
                "route",
                "add",
                ocidr,
                "via",
                gw,
                "dev",
                "flannel.1",
                "onlink",
                "src",
                ip,
            )
    return name, pod_ns


def iperf(client_ns: str, server_ns: str, server_ip: str) -> float:
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if subprocess.run(
                ["ip", "netns", "exec", server_ns, "ss", "-ltnH", "sport = :5201"],
                capture_output=True,
                text=True,
            ).stdout.strip():
                break
            time.sleep(0.05)
        out = sh(
            "ip", "netns", "exec", client_ns, "iperf3", "-c", server_ip, "-t", str(SECONDS), "-J"
        )
        return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e9
    finally:
        server.kill()
        server.wait()


def main() -> int:
    if os.geteuid() != 0:
        print("bench/iperf_bench.py needs root", file=sys.stderr)
        return 2
    print(
        f"iperf3 single stream TCP, {SECONDS}s each, median of {ROUNDS} interleaved rounds, Gbit/s"
    )
    for mode in ("host-gw", "vxlan"):
        with tempfile.TemporaryDirectory() as tmp:
            clusters: list[str] = []
            try:
                pn, pn_ns = podnet_cluster(Path(tmp), mode)
                clusters.append(pn)
                hd, hd_ns = hand_cluster(mode)
                clusters.append(hd)
                for label, dst in (("same node", "b"), ("across nodes", "c")):
                    ip = PODS[dst][1]
                    runs = [
                        (iperf(pn_ns["a"], pn_ns[dst], ip), iperf(hd_ns["a"], hd_ns[dst], ip))
                        for _ in range(ROUNDS)
                    ]
                    ours = statistics.median(r[0] for r in runs)
                    hand = statistics.median(r[1] for r in runs)
                    print(
                        f"{mode:8} {label:13} podnet {ours:7.2f}  hand {hand:7.2f}  ratio {ours / hand:5.3f}"
                        f"  (rounds: {', '.join(f'{a:.1f}/{b:.1f}' for a, b in runs)})"
                    )
            finally:
                for c in clusters:
                    teardown(c)
                subprocess.run(
                    [sys.executable, "-m", "podnet", "down", "--cluster", clusters[0]]
                    if clusters
                    else ["true"],
                    env={**os.environ, "PODNET_STATE_DIR": str(Path(tmp) / "state")},
                    capture_output=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
