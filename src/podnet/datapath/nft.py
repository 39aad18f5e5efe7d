"""NetworkPolicy rulesets into the kernel: one `nft -f` transaction per node per sync.

The renderer (podnet.render.policy_nft) is pure: engine -> one nftables Table per node
(podnet.nftables). This module is the only code that hands a table to the kernel. A small
protocol stands in front of the backend:

    NftRunner.apply(netns, table)      replace podnet's table inside the node's namespace
    NftRunner.list_counters(netns)     {counter name: (packets, bytes)} of podnet's tables

`IpNetnsRunner` is the real one: it renders the table once (podnet.nftables.text.replace)
and runs `ip netns exec NAME nft -f -`, a child process that lives in the node's namespace
(our own threads never move); counters come back as JSON (`nft -j list counters`).
podnet.testing.FakeRunner keeps the tables in memory for tests without root.

Counters survive a sync: the transaction deletes and re-creates the table (atomically, so
no packet ever sees a half-built ruleset), which would reset every named counter; so the
caller reads the counters first and applies the table with them as starting values
(Table.with_counter_values). Packets counted between the read and the commit (a few
milliseconds) are lost; a count never goes backwards. Conntrack entries belong to the
namespace, not to the table: connections established before a sync stay established.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from typing import Protocol

from podnet.datapath import netns as dp_netns
from podnet.nftables import text as nft_text
from podnet.nftables.model import Table
from podnet.render.kernel_names import NFT_TABLE_PREFIX

Counters = dict[str, tuple[int, int]]
NFT_TIMEOUT = 30.0


class NftError(RuntimeError):
    """`nft` refused a ruleset or a listing; the message carries nft's own words."""


class NftRunner(Protocol):
    def apply(self, netns: str, table: Table) -> None: ...

    def list_counters(self, netns: str) -> Counters: ...


class IpNetnsRunner:
    """The real runner: `ip netns exec NAME nft ...`. The name is checked to be a named
    namespace that exists, so a mistake can never run nft in the host's namespace."""

    def _argv(self, netns: str, *nft: str) -> list[str]:
        p = dp_netns.path(netns)  # ValueError on "", "..", names with "/"
        if not os.path.exists(p):
            raise NftError(f"network namespace {netns} does not exist")
        return ["ip", "netns", "exec", netns, "nft", *nft]

    def apply(self, netns: str, table: Table) -> None:
        out = subprocess.run(
            self._argv(netns, "-f", "-"),
            input=nft_text.replace(table),
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
        if c and str(c.get("table", "")).startswith(NFT_TABLE_PREFIX):
            counters[c["name"]] = (int(c.get("packets", 0)), int(c.get("bytes", 0)))
    return counters


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
