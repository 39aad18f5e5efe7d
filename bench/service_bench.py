"""Services in nftables (render/service_nft): connect latency through a ClusterIP as the
number of Services grows, against the same path built by hand; programming 10,000 Services
from scratch; one Service added at that size. Prints figures; asserts nothing.

    sudo .venv/bin/python bench/service_bench.py [--sizes 10,1000,10000] [--connects 2000]

1. A two-pod cluster (`podnet up --no-daemon`: nothing else writes the node's table):
   `client` and `server` on node-1; a listener on server:8080 and 8081.
2. Latency: for each size N, N synthetic Services (2 endpoints each; the measured one's
   endpoints are server:8080 and server:8081, the others' addresses that nothing uses)
   rendered by service_nft and applied to node-1's table; and the hand-built path: one
   verdict map `ip daddr . meta l4proto . th dport vmap` -> a chain per Service with one
   `dnat` (no numgen, no masquerade marks). Every (size, kind) is one configuration; each
   of --rounds rounds measures every configuration once, in a new random order (sizes and
   kinds interleaved, so that a change of load hits all alike). A client in `client`'s
   namespace, pinned to one CPU (--cpu, taskset) with the server on the same one, times
   connect() (SYN to SYN-ACK, through node-1's DNAT) --connects times after 200 of
   warm-up. Reported per configuration: the median over rounds of each round's p50 and
   p99, and p50/p99 of all samples pooled; the load average beside each round.
3. From scratch: node-1's table deleted, then 10,000 Services x 2 endpoints rendered (cold
   cache), merged, written as text and committed with `nft -f`: each part timed.
4. One Service added at 10,000: render (the others' pieces cached), merge, the difference
   (nftables.text.update), `nft -f`: the path of an incremental sync (controller/policy_sync)
   from the Service ports on. Then the same batch written in the shape `update` wrote
   before (a `table { }` block and `add element`: nft 1.0.6 dumps every chain first)
   applied by `nft -f` in the same run, for the comparison.
5. One endpoint changed at 10,000 (a Service's second endpoint moves to another address,
   as when a pod is replaced): the same path.
6. The step before: render.service_ports with the daemon's PortCache over 10,000 Service
   and EndpointSlice objects, unchanged and with one Service (and its slice) added, as
   the reconciler calls it at each sync (CPU time; no kernel).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import re
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


def measure(client_ns: str, vip: str, n: int, port: int = 80, cpu: str = "1") -> list[float]:
    """connect() times in µs, sorted."""
    out = subprocess.run(
        ["taskset", "-c", cpu, "ip", "netns", "exec", client_ns, sys.executable, "-c", CONNECT,
         vip, str(port), str(n), "200"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return sorted(int(x) / 1000 for x in out.stdout.split())


def pct(us: list[float], q: float) -> float:
    return us[min(len(us) - 1, int(len(us) * q))]


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def old_shape(diff: str) -> str:
    """The same batch as `update` wrote it before: new chains in a `table { }` block and
    elements by `add element` (for which nft 1.0.6 dumps every chain of the namespace)."""
    chains, rest = [], []
    for line in diff.splitlines():
        m = re.fullmatch(r"add chain (\S+ \S+) (\S+) \{(.*) \}", line)
        e = re.fullmatch(r"add map (\S+ \S+) (\S+) \{ type [^;]*; elements = \{ (.*) \} \}", line)
        if m and f"flush chain {m.group(1)} {m.group(2)}" in rest:  # a changed chain
            rules = [r.strip() for r in m.group(3).split(";") if r.strip()]
            rest += [f"add rule {m.group(1)} {m.group(2)} {r}" for r in rules]
        elif m:
            rules = [r.strip() for r in m.group(3).split(";") if r.strip()]
            chains.append(
                (
                    m.group(1),
                    f"\tchain {m.group(2)} {{\n" + "".join(f"\t\t{r}\n" for r in rules) + "\t}",
                )
            )
        elif e:
            rest.append(f"add element {e.group(1)} {e.group(2)} {{ {e.group(3)} }}")
        else:
            rest.append(line)
    head = [f"table {chains[0][0]} {{", *(c for _, c in chains), "}"] if chains else []
    return "\n".join(head + rest) + "\n"


def api_objects(n: int, start: int = 0) -> tuple[list, list]:
    from podnet.model.service import EndpointSlice, Service

    svcs, slices = [], []
    for i in range(start, start + n):
        svcs.append(Service.model_validate(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}", "namespace": "bench"},
             "spec": {"clusterIP": str(IPv4Address(int(IPv4Address("10.100.0.1")) + i)),
                      "ports": [{"port": 80, "targetPort": 8080}]}}))  # fmt: skip
        slices.append(EndpointSlice.model_validate(
            {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
             "metadata": {"name": f"s{i}-a", "namespace": "bench",
                          "labels": {"kubernetes.io/service-name": f"s{i}"}},
             "addressType": "IPv4", "ports": [{"port": 8080}],
             "endpoints": [{"addresses": [str(IPv4Address(int(IPv4Address("10.250.0.0")) + 2 * i + k))],
                            "nodeName": "node-2"} for k in (0, 1)]}))  # fmt: skip
    return svcs, slices


def port_walk(n: int, repeat: int) -> None:
    from podnet.render.service_ports import PortCache, service_ports

    svcs, slices = api_objects(n)
    cache = PortCache()
    c0 = time.process_time()
    service_ports(svcs, slices, cache)
    print(
        f"\nservice_ports over {n} Services: first call {(time.process_time() - c0) * 1000:.0f} ms CPU"
    )
    same, added, walk = [], [], []
    for r in range(repeat):
        c0 = time.process_time()
        service_ports(svcs, slices, cache)
        same.append((time.process_time() - c0) * 1000)
        cache._last = None  # as before: every Service looked up in the cache, one by one
        c0 = time.process_time()
        service_ports(svcs, slices, cache)
        walk.append((time.process_time() - c0) * 1000)
        more = api_objects(1, n + r)
        svcs.append(more[0][0])
        slices.append(more[1][0])
        c0 = time.process_time()
        service_ports(svcs, slices, cache)
        added.append((time.process_time() - c0) * 1000)
    rows = (
        ("unchanged", same),
        ("one Service added", added),
        ("the whole walk (as main did at every sync; now after a large change)", walk),
    )
    for what, xs in rows:
        print(
            f"  {what}: CPU min {min(xs):.1f} / median {statistics.median(xs):.1f} / max {max(xs):.1f} ms"
        )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,1000,10000")
    ap.add_argument("--connects", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--cpu", default="1", help="the CPU the client and the server run on")
    ap.add_argument("--repeat", type=int, default=10, help="rounds of each programming figure")
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
            ["taskset", "-c", args.cpu, "ip", "netns", "exec", server_ns, sys.executable, "-c", SERVER],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        runner = NetnsRunner()
        table_name = kernel_names.table_name(name)
        print(f"cluster {name}; client -> ClusterIP 10.100.0.1:80 -> server {server_ip}")
        print(f"client and server pinned to CPU {args.cpu}; load average {load()}")
        configs: dict[tuple[int, str], object] = {}
        for size in [int(s) for s in args.sizes.split(",")] if args.sizes else []:
            ps = ports(size, server_ip)
            configs[(size, "podnet")] = podnet_table(table_name, ps)
            configs[(size, "by hand")] = hand_table(table_name, ps)
        samples: dict[tuple[int, str] | str, list[list[float]]] = {}
        order = [*configs, "direct"]
        for r in range(args.rounds if configs else 0):
            random.shuffle(order)
            print(f"round {r + 1}, load average {load()}: ", end="", flush=True)
            for key in order:
                if key == "direct":
                    us = measure(client_ns, server_ip, args.connects, 8080, args.cpu)
                else:
                    runner.apply(node_ns, configs[key])  # type: ignore[arg-type]
                    us = measure(client_ns, "10.100.0.1", args.connects, cpu=args.cpu)
                samples.setdefault(key, []).append(us)
                print(".", end="", flush=True)
            print()
        if samples:
            print(f"\nconnect() through the ClusterIP, µs ({args.rounds} rounds x {args.connects}): "
                  "median of the rounds' p50 / p99; pooled p50 / p99")  # fmt: skip
            for key in sorted(samples, key=str):
                rounds = samples[key]
                pooled = sorted(x for us in rounds for x in us)
                p50s = statistics.median(pct(us, 0.5) for us in rounds)
                p99s = statistics.median(pct(us, 0.99) for us in rounds)
                label = key if isinstance(key, str) else f"{key[0]:6d} {key[1]}"
                print(f"  {label:16s} {p50s:6.1f} / {p99s:6.1f}   pooled {pct(pooled, 0.5):6.1f} "
                      f"/ {pct(pooled, 0.99):6.1f}   rounds' p50: "
                      + " ".join(f"{pct(us, 0.5):.1f}" for us in rounds))  # fmt: skip
            print(f"load average after: {load()}")

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

        summary: dict[str, list[tuple[float, float, float]]] = {}

        def incremental(what: str, ps: tuple, old: Table, shape: str = "now") -> Table:
            t0, c0 = time.perf_counter(), time.process_time()
            new = service_nft.merge(
                Table("inet", table_name),
                service_nft.render_node(ps, "node-1", IPv4Network("10.244.0.0/16")),
            )
            t1 = time.perf_counter()
            text = nft_text.update(old, new)
            assert text is not None
            if shape == "before":
                text = old_shape(text)
            t2, c2, n2 = time.perf_counter(), time.process_time(), children_cpu()
            runner._run(node_ns, ["-f", "-"], text)
            t3, n3 = time.perf_counter(), children_cpu()
            print(f"  {what} ({shape:6s} shape): {(t3 - t0) * 1000:6.1f} ms = render+merge "
                  f"{(t1 - t0) * 1000:5.1f} + difference {(t2 - t1) * 1000:5.1f} ({len(text)} bytes)"
                  f" + nft -f {(t3 - t2) * 1000:5.1f}; CPU: Python {(c2 - c0) * 1000:5.1f} ms, "
                  f"nft {(n3 - n2) * 1000:5.1f} ms")  # fmt: skip
            summary.setdefault(f"{what.split(',')[0]}, {shape} shape", []).append(
                ((t3 - t0) * 1000, (c2 - c0) * 1000, (n3 - n2) * 1000)
            )
            return new

        print(f"\none Service added at {size} (through nftables.text.update), load {load()}:")
        old = table
        extra = iter(ports(size + 2 * args.repeat + 1, server_ip)[size:])
        for r in range(args.repeat):
            for shape in ("now", "before"):
                ps = (*ps, next(extra))
                old = incremental(f"Service added, round {r + 1}", ps, old, shape)
        print(f"\none endpoint changed at {size}, load {load()}:")
        for r in range(2 * args.repeat):
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
            shape = ("now", "before")[r % 2]
            old = incremental(f"endpoint changed, round {r // 2 + 1}", ps, old, shape)
        print(f"\nsummary (load average now {load()}): min / median / max, ms")
        for what, rows in summary.items():
            cols = list(zip(*rows, strict=True))
            print(f"  {what:32s}" + "; ".join(
                f"{label} {min(c):5.1f} / {statistics.median(c):5.1f} / {max(c):5.1f}"
                for label, c in zip(("wall", "CPU Python", "CPU nft"), cols, strict=True)))  # fmt: skip
        listed = subprocess.run(["ip", "netns", "exec", node_ns, "nft", "list", "map", "inet",
                                 table_name, "service-ips"], capture_output=True, text=True)  # fmt: skip
        print(f"  service-ips holds {listed.stdout.count(' : goto ')} elements in the kernel")
        port_walk(size, args.repeat)
    finally:
        if server is not None:
            server.kill()
            server.communicate()
        down = subprocess.run([*run, "down", "--cluster", name], capture_output=True, text=True)
        if down.returncode != 0:
            print(f"podnet down --cluster {name} failed: {down.stderr.strip()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
