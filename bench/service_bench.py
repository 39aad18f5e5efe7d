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
   of --rounds short rounds measures every configuration once, in a new random order
   (sizes and kinds interleaved, so that a change of load hits all alike). Client and
   server run pinned to one CPU (--cpu, taskset) under SCHED_FIFO (chrt -f, as
   dns_bench.py --realtime; --no-realtime to compare): the other suites' processes cannot
   take the CPU from them mid-connect. The client times connect() (SYN to SYN-ACK, through
   node-1's DNAT) --connects times after 50 of warm-up. Reported per configuration: the
   median over rounds of each round's p50 with its quartiles and range, the median of the
   rounds' p99, the pooled p50/p99; per size the median over rounds of podnet's p50 over
   the hand-built path's p50 in the same round (paired in time). Nothing is discarded:
   rounds whose p50 is over 3x the configuration's median are listed, with the load.
3. From scratch: node-1's table deleted, then 10,000 Services x 2 endpoints rendered (cold
   cache), merged, written as text and committed with `nft -f`: each part timed.
4. The daemon's path at 10,000 Services x 2 endpoints: a second cluster (`up --no-daemon`,
   10,000 selectorless Services with their EndpointSlices, 2 nodes), a Reconciler as the
   daemon holds it (watch_drift, assume_synced: the baseline), then per round one Service
   (and its slice) written to the store as `apply` writes it, and `Reconciler.sync()`
   timed from its call (the daemon has seen the change) under the daemon's
   `_collector_paused()` (no cyclic GC during a sync, as controller/syncer.py runs it):
   the time until the last node's nft transaction returned ("to the kernel"), and the
   whole sync (DNS records and the store after the kernel). Then one endpoint changed (a
   slice's second address replaced). CPU: the process's (Python) and nft's.
5. The step before rendering: render.service_ports with the daemon's PortCache over
   10,000 Service and EndpointSlice objects, unchanged and with one Service (and its slice)
   added (CPU time; no kernel).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import yaml

# Closed with SO_LINGER 0 (a RST, no TIME_WAIT): short rounds in quick succession would
# otherwise use up the client's ephemeral ports (EADDRNOTAVAIL after ~28,000 connects).
CONNECT = r"""
import socket, struct, sys, time
ip, port, n, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = []
linger = struct.pack("ii", 1, 0)
for i in range(n + warm):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
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


RT = ["chrt", "-f", "10"]  # SCHED_FIFO priority of client and server (as dns_bench.py)


def measure(
    client_ns: str, vip: str, n: int, port: int = 80, cpu: str = "1", realtime: bool = True
) -> list[float]:
    """connect() times in µs, sorted."""
    out = subprocess.run(
        ["taskset", "-c", cpu, *(RT if realtime else []), "ip", "netns", "exec", client_ns,
         sys.executable, "-c", CONNECT, vip, str(port), str(n), "50"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return sorted(int(x) / 1000 for x in out.stdout.split())


def pct(us: list[float], q: float) -> float:
    return us[min(len(us) - 1, int(len(us) * q))]


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


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


def service_docs(n: int, start: int = 0, moved: int = 0) -> list[dict]:
    """Selectorless Services with their EndpointSlices (as `apply -f` takes them): the
    daemon's input, with no pods behind them (nothing here needs packets)."""
    out: list[dict] = []
    for i in range(start, start + n):
        ip = str(IPv4Address(int(IPv4Address("10.100.0.1")) + i))
        eps = [int(IPv4Address("10.250.0.0")) + 2 * i + k for k in (0, 1)]
        eps[1] += moved
        out += [
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": f"s{i}", "namespace": "sbench"},
             "spec": {"clusterIP": ip, "ports": [{"port": 80, "targetPort": 8080}]}},
            {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
             "metadata": {"name": f"s{i}-a", "namespace": "sbench",
                          "labels": {"kubernetes.io/service-name": f"s{i}"}},
             "addressType": "IPv4", "ports": [{"port": 8080}],
             "endpoints": [{"addresses": [str(IPv4Address(e))], "nodeName": "node-2"}
                           for e in eps]},
        ]  # fmt: skip
    return out


def daemon_path(size: int, repeat: int, tmp: Path) -> None:
    """Step 4: the daemon's path from the store change it sees to the kernel."""
    from podnet.controller.reconciler import Reconciler
    from podnet.controller.syncer import _collector_paused
    from podnet.datapath.nft import NetnsRunner
    from podnet.model.load import load as load_manifests
    from podnet.nftables.model import Table
    from podnet.state.changes import apply_objects, no_check
    from podnet.state.store import Store, state_dir

    class Timed(NetnsRunner):
        """The real runner, noting when each node's transaction returned."""

        def __init__(self) -> None:
            self.done: list[float] = []

        def patch(self, netns: str, old: Table, new: Table, text: str) -> None:
            super().patch(netns, old, new, text)
            self.done.append(time.perf_counter())

        def update(self, netns: str, old: Table, new: Table) -> bool:
            ok = super().update(netns, old, new)
            self.done.append(time.perf_counter())
            return ok

        def apply(self, netns: str, table: Table) -> None:
            super().apply(netns, table)
            self.done.append(time.perf_counter())

    name = f"sd-{uuid.uuid4().hex[:6]}"
    manifest = tmp / "services.yaml"
    manifest.write_text(yaml.safe_dump_all(
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sbench"}},
         *service_docs(size)]))  # fmt: skip
    run = [sys.executable, "-m", "podnet"]
    try:
        t0 = time.perf_counter()
        subprocess.run([*run, "up", "-f", str(manifest), "--cluster", name, "--nodes", "2",
                        "--no-daemon"], check=True, capture_output=True)  # fmt: skip
        print(f"\nthe daemon's path: cluster {name}, {size} Services x 2 endpoints, 2 nodes "
              f"(`up` {time.perf_counter() - t0:.1f} s)")  # fmt: skip
        runner = Timed()
        rec = Reconciler(state_dir(name), name, runner, watch_drift=True)
        t0 = time.perf_counter()
        assert rec.assume_synced(), "the baseline was not adopted"
        print(f"  baseline (assume_synced, as the daemon starts) {time.perf_counter() - t0:.1f} s")
        rows: dict[str, list[tuple[float, ...]]] = {}
        took: dict[str, float] = {}
        desired = rec.desired

        def timed_desired(*a: Any, **k: Any) -> Any:
            """The same call, timed: the read of the store and everything before nft."""
            t = time.perf_counter()
            try:
                return desired(*a, **k)
            finally:
                took["desired"] = time.perf_counter() - t

        rec.desired = timed_desired  # type: ignore[method-assign]
        for r in range(2 * repeat):
            what = ("Service added", "endpoint changed")[r % 2]
            docs_ = service_docs(1, size + r) if r % 2 == 0 else service_docs(1, 7 * r, 100_000)
            if r % 2:
                docs_ = docs_[1:]  # the slice only: its second endpoint moved
            path = tmp / f"change-{r}.yaml"
            path.write_text(yaml.safe_dump_all(docs_))
            loaded = load_manifests([str(path)])
            with Store.open(state_dir(name)) as store:
                apply_objects(store, loaded.objects, no_check)
            runner.done.clear()
            with _collector_paused():
                t0, c0, n0 = time.perf_counter(), time.process_time(), children_cpu()
                result = rec.sync()
                t1, c1, n1 = time.perf_counter(), time.process_time(), children_cpu()
            assert result.ok and not result.full, result.summary()
            nodes = result.nft.nodes.values() if result.nft else ()
            by_service = sum(1 for n in nodes if n.by_service)
            kernel = (max(runner.done) - t0) * 1000
            before = took["desired"] * 1000
            step = result.nft.seconds * 1000 if result.nft else 0.0
            rows.setdefault(what, []).append(
                (kernel, before, step, (t1 - t0) * 1000, (c1 - c0) * 1000, (n1 - n0) * 1000)
            )
            print(f"  {what:16s} to the kernel {kernel:6.1f} ms (= store read and desired state "
                  f"{before:.1f} + nft step {step:.1f}: {len(runner.done)} node(s), {by_service} "
                  f"by Service difference); whole sync "
                  f"{(t1 - t0) * 1000:6.1f} ms; CPU Python {(c1 - c0) * 1000:6.1f}, nft "
                  f"{(n1 - n0) * 1000:5.1f} ms; load {load()}")  # fmt: skip
        print(f"summary (load average now {load()}): min / median / max, ms")
        for what, vals in rows.items():
            cols = list(zip(*vals, strict=True))
            labels = ("to the kernel", "desired", "nft step", "whole sync", "CPU Python", "CPU nft")
            print(f"  {what:16s} " + "; ".join(
                f"{label} {min(c):.1f} / {statistics.median(c):.1f} / {max(c):.1f}"
                for label, c in zip(labels, cols, strict=True)))  # fmt: skip
    finally:
        down = subprocess.run([*run, "down", "--cluster", name], capture_output=True, text=True)
        if down.returncode != 0:
            print(f"podnet down --cluster {name} failed: {down.stderr.strip()}", file=sys.stderr)


def latency_summary(samples: dict, rounds_load: list[str]) -> None:
    """Per configuration: the median of the rounds' p50 with quartiles and range; podnet
    over the hand-built path per round (paired); rounds over 3x the median listed."""
    print("\nconnect() through the ClusterIP, µs: median of the rounds' p50 [quartiles; range]; "
          "median of the rounds' p99; pooled p50 / p99")  # fmt: skip
    med: dict = {}
    for key in sorted(samples, key=str):
        rounds = samples[key]
        p50s = [pct(us, 0.5) for us in rounds]
        q = statistics.quantiles(p50s, n=4) if len(p50s) > 1 else [p50s[0]] * 3
        pooled = sorted(x for us in rounds for x in us)
        med[key] = statistics.median(p50s)
        label = key if isinstance(key, str) else f"{key[0]:6d} {key[1]}"
        print(f"  {label:16s} {med[key]:6.1f} [{q[0]:.1f}-{q[2]:.1f}; {min(p50s):.1f}-"
              f"{max(p50s):.1f}]  p99 {statistics.median(pct(us, 0.99) for us in rounds):7.1f}"
              f"  pooled {pct(pooled, 0.5):6.1f} / {pct(pooled, 0.99):7.1f}")  # fmt: skip
        slow = [(i, p) for i, p in enumerate(p50s) if p > 3 * med[key]]
        for i, p in slow:
            print(
                f"      round {i + 1} kept, but disturbed: p50 {p:.1f} µs (load {rounds_load[i]})"
            )
    sizes = sorted({k[0] for k in samples if not isinstance(k, str)})
    for size in sizes:
        pairs = zip(samples[(size, "podnet")], samples[(size, "by hand")], strict=True)
        ratios = [pct(a, 0.5) / pct(b, 0.5) for a, b in pairs]
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        print(f"  {size:6d}: podnet / by hand, per round: median {statistics.median(ratios):.3f}"
              f" [{q[0]:.3f}-{q[2]:.3f}]")  # fmt: skip
    if len(sizes) > 1:
        ps = [med[(n, "podnet")] for n in sizes]
        print(f"  podnet's p50 across sizes: {min(ps):.1f}-{max(ps):.1f} µs, "
              f"max/min {max(ps) / min(ps):.3f}")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,1000,10000")
    ap.add_argument("--connects", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=24)
    ap.add_argument("--cpu", default="1", help="the CPU the client and the server run on")
    ap.add_argument("--no-realtime", action="store_true", help="client and server not SCHED_FIFO")
    ap.add_argument("--repeat", type=int, default=10, help="rounds of each programming figure")
    ap.add_argument("--size", type=int, default=10_000, help="Services in steps 3-5")
    ap.add_argument("--no-scratch", action="store_true", help="skip step 3")
    ap.add_argument("--no-daemon-path", action="store_true", help="skip step 4")
    args = ap.parse_args()
    realtime = not args.no_realtime
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
            ["taskset", "-c", args.cpu, *(RT if realtime else []), "ip", "netns", "exec",
             server_ns, sys.executable, "-c", SERVER],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        runner = NetnsRunner()
        table_name = kernel_names.table_name(name)
        print(f"cluster {name}; client -> ClusterIP 10.100.0.1:80 -> server {server_ip}")
        print(f"client and server pinned to CPU {args.cpu}"
              f"{', SCHED_FIFO (chrt -f 10)' if realtime else ''}; load average {load()}")  # fmt: skip
        configs: dict[tuple[int, str], object] = {}
        for size in [int(s) for s in args.sizes.split(",")] if args.sizes else []:
            ps = ports(size, server_ip)
            configs[(size, "podnet")] = podnet_table(table_name, ps)
            configs[(size, "by hand")] = hand_table(table_name, ps)
        samples: dict[tuple[int, str] | str, list[list[float]]] = {}
        rounds_load: list[str] = []
        order = [*configs, "direct"]
        for r in range(args.rounds if configs else 0):
            random.shuffle(order)
            rounds_load.append(load())
            print(f"round {r + 1}, load average {rounds_load[-1]}: ", end="", flush=True)
            for key in order:
                if key == "direct":
                    us = measure(client_ns, server_ip, args.connects, 8080, args.cpu, realtime)
                else:
                    runner.apply(node_ns, configs[key])  # type: ignore[arg-type]
                    us = measure(client_ns, "10.100.0.1", args.connects, 80, args.cpu, realtime)
                samples.setdefault(key, []).append(us)
                print(".", end="", flush=True)
            print()
        if samples:
            latency_summary(samples, rounds_load)
            print(f"load average after: {load()}")

        size = args.size
        for r in range(0 if args.no_scratch else 3):
            if r == 0:
                print(f"\nprogramming {size} Services x 2 endpoints from scratch (node-1's "
                      "table deleted):")  # fmt: skip
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
    finally:
        if server is not None:
            server.kill()
            server.communicate()
        down = subprocess.run([*run, "down", "--cluster", name], capture_output=True, text=True)
        if down.returncode != 0:
            print(f"podnet down --cluster {name} failed: {down.stderr.strip()}", file=sys.stderr)
    if not args.no_daemon_path:
        daemon_path(size, args.repeat, tmp)
    port_walk(size, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
