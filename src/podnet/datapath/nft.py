"""NetworkPolicy rulesets into the kernel: one `nft -f` transaction per node per sync.

The renderer (podnet.render.policy_nft) is pure: engine -> one nftables Table per node
(podnet.nftables). This module is the only code that hands a table to the kernel. A small
protocol stands in front of the backend:

    NftRunner.apply(netns, table)      replace podnet's table inside the node's namespace
    NftRunner.update(netns, old, new)  change only what differs, when the kernel holds `old`
    NftRunner.list_counters(netns)     {counter name: (packets, bytes)} of podnet's tables

`NetnsRunner` is the real one: it renders the table once (podnet.nftables.text.replace)
and runs `nft -f -` in a child process born in the node's namespace (the spawning thread
enters it through the guard for the moment of the spawn); counters come back as JSON
(`nft -j list counters`).
podnet.testing.FakeRunner keeps the tables in memory for tests without root.

An incremental sync updates (nftables.text.update: adds, element changes and deletes in
one transaction; ~1 KiB of text for a label change instead of ~150 KiB, and no counters to
read back, because the counters both tables hold are left alone). A full sync replaces.

Counters survive a replace: the transaction deletes and re-creates the table (atomically, so
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
from collections.abc import Mapping, Set
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

    def update(self, netns: str, old: Table, new: Table) -> bool: ...

    def patch(self, netns: str, old: Table, new: Table, text: str) -> None: ...

    def list_counters(self, netns: str) -> Counters: ...


class NetnsRunner:
    """The real runner: `nft` started by a thread that stands inside the node's namespace
    (`netns.entered_fd`, the one guarded way in), so the child is born there. The guard
    refuses a namespace file that is the host's own, so nft never runs in the host's
    namespace. `ip netns exec NAME nft` did the same at about twice the cost per call (one
    more exec, a mount namespace and a remount of /sys), and guarded nothing: 256 nodes
    pay it at every full sync. (The name is kept from then; it is the protocol's one real
    implementation.)"""

    def _run(self, netns: str, argv: list[str], stdin: str | None = None) -> str:
        try:
            fd = dp_netns.open_fd(netns)  # ValueError on "", "..", names with "/"
        except FileNotFoundError:
            raise NftError(f"network namespace {netns} does not exist") from None
        try:
            with dp_netns.entered_fd(fd):
                proc = subprocess.Popen(
                    ["nft", *argv],
                    stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
        finally:
            os.close(fd)
        try:
            out, err = proc.communicate(stdin, timeout=NFT_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        if proc.returncode != 0:
            raise NftError(f"nft {' '.join(argv)} in {netns} failed: {err.strip()[:2000]}")
        return out

    def apply(self, netns: str, table: Table) -> None:
        text = nft_text.replace(table)
        dynamic = {s.name for s in table.sets if "dynamic" in s.flags}
        if dynamic:
            # A replace re-creates the table, so dynamic sets (ClientIP affinity) would
            # start empty and every client would be sent to a new random endpoint: their
            # elements are read first and written back in the same transaction, as the
            # caller does for counters. Only when the table has such sets (`list sets`
            # costs ~0.2 s at 10,000 Services, where it reads every set and map).
            try:
                listed = self._run(netns, ["-j", "list", "sets", table.family])
            except (NftError, OSError, subprocess.SubprocessError):
                listed = ""  # no namespace or no table yet: nothing to keep
            text += nft_text.kept_elements(table, parse_dynamic(listed, table.name, dynamic))
        self._run(netns, ["-f", "-"], text)

    def update(self, netns: str, old: Table, new: Table) -> bool:
        """Turn `old`, which the kernel must hold, into `new` in one transaction; False
        (nothing done) when only a replace can (nftables.text.update)."""
        text = nft_text.update(old, new)
        if text is None:
            return False
        if text:
            self._run(netns, ["-f", "-"], text)
        return True

    def patch(self, netns: str, old: Table, new: Table, text: str) -> None:
        """`text`, a difference computed by the caller (render.service_nft.difference:
        from the changed Services alone), turns `old`, which the kernel must hold, into
        `new`: applied as `update` applies its own."""
        if text:
            self._run(netns, ["-f", "-"], text)

    def list_counters(self, netns: str) -> Counters:
        return parse_counters(self._run(netns, ["-j", "list", "counters"]))

    def run_text(self, netns: str, text: str) -> None:
        """`nft -f -` of `text` (a short transaction of our own making: trace chains)."""
        self._run(netns, ["-f", "-"], text)

    def list_json(self, netns: str, argv: list[str]) -> str:
        """`nft -j ARGV...`: a listing as JSON, read, never parsed as text."""
        return self._run(netns, ["-j", *argv])


def parse_counters(json_text: str) -> Counters:
    """`nft -j list counters` -> {name: (packets, bytes)} for podnet's tables only."""
    doc = json.loads(json_text or "{}")
    counters: Counters = {}
    for item in doc.get("nftables", []):
        c = item.get("counter")
        if c and str(c.get("table", "")).startswith(NFT_TABLE_PREFIX):
            counters[c["name"]] = (int(c.get("packets", 0)), int(c.get("bytes", 0)))
    return counters


def parse_dynamic(json_text: str, table: str, names: Set[str]) -> dict[str, list[tuple[str, int]]]:
    """`nft -j list sets FAMILY` -> {set name: [(address, seconds left)]} for the sets of
    `table` named in `names` (elements without an expiry are not dynamic entries)."""
    doc = json.loads(json_text or "{}")
    out: dict[str, list[tuple[str, int]]] = {}
    for item in doc.get("nftables", []):
        s = item.get("set")
        if not s or s.get("table") != table or s.get("name") not in names:
            continue
        for e in s.get("elem", []):
            inner = e.get("elem") if isinstance(e, dict) else None
            if not isinstance(inner, dict):
                continue
            val, left = inner.get("val"), inner.get("expires")
            if isinstance(val, str) and isinstance(left, int):
                out.setdefault(s["name"], []).append((val, left))
    return out


def read_counters(node_netns: Mapping[str, str], runner: NftRunner | None = None) -> Counters:
    """Every node's counters, summed by name (a policy's counter exists on each node where
    it selects pods); nodes whose namespace or table is missing count nothing."""
    runner = runner or NetnsRunner()
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
