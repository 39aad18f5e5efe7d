"""Services in nftables (render/service_nft): connect latency through a ClusterIP as the
number of Services grows, against the same path built by hand; programming 10,000 Services
from scratch; one Service added at that size. Prints figures; asserts nothing.

    sudo .venv/bin/python bench/service_bench.py [--sizes 10,1000,10000] [--connects 2000]

1. A two-pod cluster (`podnet up --no-daemon`: nothing else writes the node's table):
   `client` and `server` on node-1; a listener on server:8080 and 8081.
2. Latency: for each size N, N synthetic Services (2 endpoints each; the measured one's
   endpoints are server:8080 and server:8081, the others' addresses that nothing uses)
   rendered by service_nft and applied to node-1's table; then the hand-built path in the
   same run: one verdict map `ip daddr . meta l4proto . th dport vmap` -> a chain per
   Service with one `dnat` (no numgen, no per-endpoint chain, no masquerade marks). A
   client in `client`'s namespace times connect() (SYN to SYN-ACK, through node-1's DNAT)
   --connects times after a warm-up; p50/p99 per round, rounds alternate.
3. From scratch: node-1's table deleted, then 10,000 Services x 2 endpoints rendered (cold
   cache), merged, written as text and committed with `nft -f`: each part timed.
4. One Service added at 10,000: render (the others' pieces cached), merge, the difference
   (nftables.text.update), `nft -f`: the path of an incremental sync (controller/policy_sync)
   from the Service ports on.
5. One endpoint changed at 10,000 (a Service's second endpoint moves to another address,
   as when a pod is replaced): the same path.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import yaml

CONNECT = r"""
import socket, sys, time
ip, port, n, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = []
for i in range(n + warm):
    s = socket.socket()
    t = time.perf_counter_ns(); s.connect((ip, port)); dt = time.perf_counter_ns() - t
    s.close()
    if i >= warm:
        out.append(dt)
print(" ".join(map(str, out)))
"""
SERVER = r"""
import socket, selectors
sel = selectors.DefaultSelector()
for port in (8080, 8081):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(4096); s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        try:
            c, _ = key.fileobj.accept(); c.close()
        except BlockingIOError:
            pass
"""


def children_cpu() -> float:
    """CPU seconds of the finished children (nft): less noisy than wall time on a shared
    machine, where other suites take the cores."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def docs() -> list[dict]:
    def pod(name: str, port: int) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "sbench"},
            "spec": {
                "nodeName": "node-1",
                "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": port}]}],
            },
        }

    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sbench"}}
    return [ns, pod("client", 9000), pod("server", 8080)]


def ports(n: int, server: str) -> tuple:
    from podnet.render.service_ports import Endpoint, ServicePort

    out = []
    base = int(IPv4Address("10.100.0.0"))
    for i in range(n):
        if i == 0:
            eps = (
                Endpoint(IPv4Address(server), 8080, "node-1", True, True, False),
                Endpoint(IPv4Address(server), 8081, "node-1", True, True, False),
            )
        else:
            a = IPv4Address(int(IPv4Address("10.250.0.0")) + 2 * i)
            eps = tuple(
                Endpoint(IPv4Address(int(a) + k), 80, "node-2", True, True, False) for k in (0, 1)
            )
        out.append(
            ServicePort(
                namespace="bench",
                service=f"svc-{i}",
                port_name="",
                protocol="tcp",
                port=80,
                cluster_ip=IPv4Address(base + i + 1),
                external_ips=(),
                node_port=None,
                affinity=None,
                external_local=False,
                internal_local=False,
                endpoints=eps,
            )
        )
    return tuple(out)


def hand_table(name: str, ps: tuple):
    """The same DNAT path built by hand: one verdict map, one dnat chain per Service (to
    its first endpoint)."""
    from podnet.nftables.expr import Dnat, Field, Goto, Jump, Proto, VMap
    from podnet.nftables.model import Chain, Hook, Map, Rule, Table

    key = (Field.IP_DADDR, Field.L4PROTO, Field.TH_DPORT)
    chains = [Chain(f"h{i}", (Rule((Proto("tcp"),), verdict=Dnat(p.endpoints[0].ip, p.endpoints[0].port)),)) for i, p in enumerate(ps)]  # fmt: skip
    elements = tuple(((p.cluster_ip, "tcp", p.port), Goto(f"h{i}")) for i, p in enumerate(ps))
    return Table(
        "inet",
        name,
        maps=(Map("svc", ("ipv4_addr", "inet_proto", "inet_service"), elements),),
        chains=(
            Chain("pre", (Rule(verdict=Jump("svcs")),), Hook("nat", "prerouting", -100)),
            Chain("svcs", (Rule(verdict=VMap(key, "svc")),)),
            *chains,
        ),
    )


def podnet_table(name: str, ps: tuple):
    from podnet.nftables.model import Table
    from podnet.render.service_nft import merge, render_node

    return merge(Table("inet", name), render_node(ps, "node-1", IPv4Network("10.244.0.0/16")))


def measure(client_ns: str, vip: str, n: int, port: int = 80) -> tuple[float, float]:
    out = subprocess.run(
        ["ip", "netns", "exec", client_ns, sys.executable, "-c", CONNECT, vip, str(port), str(n), "200"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    us = sorted(int(x) / 1000 for x in out.stdout.split())
    return statistics.median(us), us[int(len(us) * 0.99) - 1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,1000,10000")
    ap.add_argument("--connects", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("PODNET_STATE_DIR", tempfile.mkdtemp(prefix="svcbench-"))
    from podnet.datapath.nft import NetnsRunner
    from podnet.nftables import text as nft_text
    from podnet.nftables.model import Table
    from podnet.render import kernel_names, service_nft

    name = f"sb-{uuid.uuid4().hex[:6]}"
    tmp = Path(tempfile.mkdtemp(prefix="svcbench-"))
    manifest = tmp / "bench.yaml"
    manifest.write_text(yaml.safe_dump_all(docs()))
    run = [sys.executable, "-m", "podnet"]
    server = None
    try:
        subprocess.run([*run, "up", "-f", str(manifest), "--cluster", name, "--nodes", "2",
                        "--no-daemon"], check=True, capture_output=True)  # fmt: skip
        node_ns = kernel_names.node_netns(name, "node-1")
        client_ns = kernel_names.pod_netns(name, "sbench", "client")
        server_ns = kernel_names.pod_netns(name, "sbench", "server")
        server_ip = subprocess.run(
            ["ip", "netns", "exec", server_ns, "ip", "-4", "-o", "addr", "show", "eth0"],
            capture_output=True, text=True, check=True,
        ).stdout.split()[3].split("/")[0]  # fmt: skip
        server = subprocess.Popen(
            ["ip", "netns", "exec", server_ns, sys.executable, "-c", SERVER],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        runner = NetnsRunner()
        table_name = kernel_names.table_name(name)
        print(f"cluster {name}; client -> ClusterIP 10.100.0.1:80 -> server {server_ip}")
        direct = measure(client_ns, server_ip, args.connects, 8080)
        print(
            f"direct to the pod (no Service rule):  p50 {direct[0]:6.1f} us  p99 {direct[1]:6.1f} us"
        )
        for size in [int(s) for s in args.sizes.split(",")]:
            ps = ports(size, server_ip)
            tables = {"podnet": podnet_table(table_name, ps), "by hand": hand_table(table_name, ps)}
            for r in range(args.rounds):
                for kind, table in tables.items():
                    runner.apply(node_ns, table)
                    p50, p99 = measure(client_ns, "10.100.0.1", args.connects)
                    print(
                        f"{size:6d} Services, {kind:7s} round {r + 1}: p50 {p50:6.1f} us  p99 {p99:6.1f} us"
                    )

        size = 10_000
        print(f"\nprogramming {size} Services x 2 endpoints from scratch (node-1's table deleted):")
        for r in range(3):
            subprocess.run(["ip", "netns", "exec", node_ns, "nft", "delete", "table", "inet",
                            table_name], capture_output=True)  # fmt: skip
            ps = ports(size, server_ip)
            service_nft._shared_pieces.cache_clear()
            t0, c0 = time.perf_counter(), time.process_time()
            rules = service_nft.render_node(ps, "node-1", IPv4Network("10.244.0.0/16"))
            t1 = time.perf_counter()
            table = service_nft.merge(Table("inet", table_name), rules)
            text = nft_text.replace(table)
            t2, c2, n2 = time.perf_counter(), time.process_time(), children_cpu()
            runner._run(node_ns, ["-f", "-"], text)
            t3, n3 = time.perf_counter(), children_cpu()
            print(f"  round {r + 1}: {t3 - t0:.3f} s = render {t1 - t0:.3f} + merge and text "
                  f"{t2 - t1:.3f} ({len(text) / 1e6:.1f} MB, {table.rule_count} rules) + nft -f {t3 - t2:.3f}"
                  f"; CPU: Python {c2 - c0:.3f} s, nft {n3 - n2:.3f} s")  # fmt: skip

        def incremental(what: str, ps: tuple, old: Table) -> Table:
            t0, c0 = time.perf_counter(), time.process_time()
            new = service_nft.merge(
                Table("inet", table_name),
                service_nft.render_node(ps, "node-1", IPv4Network("10.244.0.0/16")),
            )
            t1 = time.perf_counter()
            text = nft_text.update(old, new)
            assert text is not None
            t2, c2, n2 = time.perf_counter(), time.process_time(), children_cpu()
            runner._run(node_ns, ["-f", "-"], text)
            t3, n3 = time.perf_counter(), children_cpu()
            print(f"  {what}: {(t3 - t0) * 1000:.1f} ms = render+merge {(t1 - t0) * 1000:.1f} "
                  f"+ difference {(t2 - t1) * 1000:.1f} ({len(text)} bytes) + nft -f "
                  f"{(t3 - t2) * 1000:.1f}; CPU: Python {(c2 - c0) * 1000:.1f} ms, nft "
                  f"{(n3 - n2) * 1000:.1f} ms")  # fmt: skip
            return new

        print(f"\none Service added at {size} (through nftables.text.update):")
        old = table
        for r in range(5):
            ps = (*ps, ports(size + 1 + r, server_ip)[-1])
            old = incremental(f"round {r + 1}", ps, old)
        print(f"\none endpoint changed at {size}:")
        for r in range(5):
            i = 100 + 37 * r
            sp = ps[i]
            moved = dataclasses.replace(
                sp.endpoints[1], ip=IPv4Address(int(sp.endpoints[1].ip) + 100_000)
            )
            ps = (
                *ps[:i],
                dataclasses.replace(sp, endpoints=(sp.endpoints[0], moved)),
                *ps[i + 1 :],
            )
            old = incremental(f"round {r + 1}", ps, old)
        listed = subprocess.run(["ip", "netns", "exec", node_ns, "nft", "list", "map", "inet",
                                 table_name, "service-ips"], capture_output=True, text=True)  # fmt: skip
        print(f"  service-ips holds {listed.stdout.count(' : goto ')} elements in the kernel")
    finally:
        if server is not None:
            server.kill()
            server.communicate()
        subprocess.run([*run, "down", "--cluster", name], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
