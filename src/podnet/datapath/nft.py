"""NetworkPolicy rulesets into the kernel: one `nft -f` transaction per node per sync.

The renderer (podnet.render.policy_nft) is pure: engine -> text. This module is the only
code that hands that text to the kernel. A small protocol stands in front of the backend:

    NftRunner.apply(netns, text)       run `nft -f -` with `text` inside the node's namespace
    NftRunner.list_counters(netns)     {counter name: (packets, bytes)} of podnet's tables

`IpNetnsRunner` is the real one (`ip netns exec NAME nft ...`: a child process that lives in
the node's namespace; our own threads never move). `FakeRunner` keeps the texts in memory
for tests without root.

Counters survive a sync: the renderer's text deletes and re-creates the table (one atomic
transaction, so no packet ever sees a half-built ruleset), which would reset every named
counter; so the counters are read first and written back with their values
(`counter NAME { packets N bytes M }`). Packets counted between the read and the commit (a
few milliseconds) are lost; a count never goes backwards. Conntrack entries belong to the
namespace, not to the table: connections established before a sync stay established.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from podnet.datapath import netns as dp_netns

Counters = dict[str, tuple[int, int]]
NFT_TIMEOUT = 30.0
TABLE_PREFIX = "podnet_"

_EMPTY_COUNTER = re.compile(r"^(\s*)counter (\S+) \{ \}$", re.M)


class NftError(RuntimeError):
    """`nft` refused a ruleset or a listing; the message carries nft's own words."""


class NftRunner(Protocol):
    def apply(self, netns: str, text: str) -> None: ...

    def list_counters(self, netns: str) -> Counters: ...


class IpNetnsRunner:
    """The real runner: `ip netns exec NAME nft ...`. The name is checked to be a named
    namespace that exists, so a mistake can never run nft in the host's namespace."""

    def _argv(self, netns: str, *nft: str) -> list[str]:
        p = dp_netns.path(netns)  # ValueError on "", "..", names with "/"
        if not os.path.exists(p):
            raise NftError(f"network namespace {netns} does not exist")
        return ["ip", "netns", "exec", netns, "nft", *nft]

    def apply(self, netns: str, text: str) -> None:
        out = subprocess.run(
            self._argv(netns, "-f", "-"),
            input=text,
            capture_output=True,
            text=True,
            timeout=NFT_TIMEOUT,
        )
        if out.returncode != 0:
            raise NftError(f"nft -f in {netns} failed: {out.stderr.strip()[:2000]}")

    def list_counters(self, netns: str) -> Counters:
        out = subprocess.run(
            self._argv(netns, "-j", "list", "counters"),
            capture_output=True,
            text=True,
            timeout=NFT_TIMEOUT,
        )
        if out.returncode != 0:
            raise NftError(f"nft list counters in {netns} failed: {out.stderr.strip()}")
        return parse_counters(out.stdout)


def parse_counters(json_text: str) -> Counters:
    """`nft -j list counters` -> {name: (packets, bytes)} for podnet's tables only."""
    doc = json.loads(json_text or "{}")
    counters: Counters = {}
    for item in doc.get("nftables", []):
        c = item.get("counter")
        if c and str(c.get("table", "")).startswith(TABLE_PREFIX):
            counters[c["name"]] = (int(c.get("packets", 0)), int(c.get("bytes", 0)))
    return counters


@dataclass
class FakeRunner:
    """In memory: the last text applied per namespace, every apply in order, and counters
    a test sets by hand (`counters[netns][name] = (packets, bytes)`)."""

    applied: dict[str, str] = field(default_factory=dict)
    history: list[tuple[str, str]] = field(default_factory=list)
    counters: dict[str, Counters] = field(default_factory=dict)
    fail: set[str] = field(default_factory=set)  # namespaces whose apply fails
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def apply(self, netns: str, text: str) -> None:
        if netns in self.fail:
            raise NftError(f"nft -f in {netns} failed: (fake) refused")
        with self._lock:
            self.applied[netns] = text
            self.history.append((netns, text))
            values = {m.group(1): (0, 0) for m in re.finditer(r"^\s*counter (\S+) \{", text, re.M)}
            for m in re.finditer(r"^\s*counter (\S+) \{ packets (\d+) bytes (\d+) \}$", text, re.M):
                values[m.group(1)] = (int(m.group(2)), int(m.group(3)))
            self.counters[netns] = values

    def list_counters(self, netns: str) -> Counters:
        with self._lock:
            return dict(self.counters.get(netns, {}))


def with_counters(text: str, values: Mapping[str, tuple[int, int]]) -> str:
    """The rendered text with each named counter that `values` knows starting at its value.
    (The renderer declares every counter as `counter NAME { }`; only those lines change.)"""
    if not values:
        return text

    def sub(m: re.Match[str]) -> str:
        v = values.get(m.group(2))
        if v is None or v == (0, 0):
            return m.group(0)
        return f"{m.group(1)}counter {m.group(2)} {{ packets {v[0]} bytes {v[1]} }}"

    return _EMPTY_COUNTER.sub(sub, text)


def rule_count(text: str) -> int:
    """Rules in the rendered text: lines inside chains, hook declarations not counted."""
    n, inside = 0, False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("chain ") and s.endswith("{"):
            inside = True
        elif inside and s == "}":
            inside = False
        elif inside and not s.startswith("type "):
            n += 1
    return n


def read_counters(node_netns: Mapping[str, str], runner: NftRunner | None = None) -> Counters:
    """Every node's counters, summed by name (a policy's counter exists on each node where
    it selects pods); nodes whose namespace or table is missing count nothing."""
    runner = runner or IpNetnsRunner()
    total: Counters = {}
    for ns in node_netns.values():
        try:
            values = runner.list_counters(ns)
        except (NftError, OSError, ValueError, subprocess.SubprocessError):
            continue
        for name, (p, b) in values.items():
            p0, b0 = total.get(name, (0, 0))
            total[name] = (p0 + p, b0 + b)
    return total
