"""Helpers for tests of the live network: run the CLI, serve and connect inside namespaces,
and snapshot the host's own namespace to prove that nothing there changed.

Traffic goes only to addresses inside namespaces the test's cluster created; servers and
clients are tiny Python programs run with `ip netns exec`, and every server is killed (by its
own pid) when its context ends.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Accepts connections and answers each with the peer's address: what the server saw.
SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
print("ready", flush=True)
while True:
    c, a = s.accept(); c.sendall(a[0].encode() + b"\\n"); c.close()
"""
# Connects and prints "<address the server saw> <address this side used>".
CLIENT = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
print(s.recv(100).decode().strip(), s.getsockname()[0])
"""


def _rendered_sysctls() -> set[str]:
    """Every sysctl key a rendered plan sets, in either mode: podnet writes them inside its
    namespaces only, and the safety checks prove the host's values never change."""
    from podnet.render.topology import render
    from podnet.state.network import MODES
    from podnet.state.placement import place
    from podnet.testing._builders import cluster, namespace, pod

    c = cluster(namespace("x"), pod("x/a"), nodes=2)
    keys: set[str] = set()
    for mode in MODES:
        plan = render(c, place(c, strict=True), "sysctls", mode)
        keys |= {key for ns in plan.namespaces for key, _ in ns.sysctls}
    # Per-link keys name links that exist in podnet's namespaces only; the host has none.
    return {k for k in keys if Path("/proc/sys/" + k.replace(".", "/")).exists()}


@functools.cache
def root_sysctls() -> tuple[str, ...]:
    """The host sysctls the safety checks compare: every key a plan sets, and forwarding."""
    always = {
        "net.ipv4.conf.all.forwarding",
        "net.ipv4.conf.all.proxy_arp",
        "net.ipv4.conf.all.rp_filter",
    }
    return tuple(sorted(_rendered_sysctls() | always))


def unique_cluster(prefix: str = "pt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def podnet(
    *args: str, env: dict[str, str] | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the podnet CLI in a child process (the contract users and outside tests see)."""
    out = subprocess.run(
        [sys.executable, "-m", "podnet", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )
    if check and out.returncode != 0:
        raise AssertionError(f"podnet {' '.join(args)} -> {out.returncode}\n{out.stderr}")
    return out


def in_netns(netns: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=timeout
    )


@contextmanager
def serving(netns: str, port: int, bind: str = "0.0.0.0") -> Iterator[None]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", SERVER, bind, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise AssertionError(
                f"server in {netns} did not start: {proc.stderr.read() if proc.stderr else ''}"
            )
        yield
    finally:
        proc.kill()
        proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f:
                f.close()


def connect_seen(netns: str, ip: str, port: int) -> tuple[str, str]:
    """(the address the server saw, the address the client used) for one TCP connection."""
    out = in_netns(netns, sys.executable, "-c", CLIENT, ip, str(port))
    if out.returncode != 0:
        raise AssertionError(f"{netns} -> {ip}:{port} failed: {out.stderr.strip()}")
    seen, used = out.stdout.split()
    return seen, used


def _normalise(text: str) -> str:
    # Lifetimes of dynamic addresses count down; they are not a change we made.
    text = re.sub(r"(valid_lft|preferred_lft) \S+", r"\1 X", text)
    return re.sub(r"expires \S+", "expires X", text)


def root_snapshot() -> dict[str, str]:
    """What the host's own network namespace looks like (compared before up / after down)."""
    out: dict[str, str] = {}
    for argv in (
        ["ip", "-d", "link", "show"],
        ["ip", "addr", "show"],
        ["ip", "route", "show", "table", "all"],
        ["ip", "rule", "show"],
        ["ip", "neigh", "show", "nud", "permanent"],
        ["nft", "list", "ruleset"],
    ):
        res = subprocess.run(argv, capture_output=True, text=True, check=False)
        out[" ".join(argv)] = _normalise(res.stdout)
    for key in root_sysctls():
        out[key] = Path("/proc/sys/" + key.replace(".", "/")).read_text().strip()
    return out
