"""An in-memory nft runner (podnet.datapath.nft.NftRunner) for tests without root."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field

from podnet.datapath.nft import Counters, NftError
from podnet.nftables.model import Counter, Table


@dataclass
class FakeRunner:
    """The last table applied per namespace, every apply in order, and counters: an apply
    sets a namespace's counters to the table's starting values (as the kernel does when
    the table is re-created); a test may set them by hand
    (`counters[netns][name] = (packets, bytes)`)."""

    applied: dict[str, Table] = field(default_factory=dict)
    history: list[tuple[str, Table]] = field(default_factory=list)
    counters: dict[str, Counters] = field(default_factory=dict)
    fail: set[str] = field(default_factory=set)  # namespaces whose apply fails
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def apply(self, netns: str, table: Table) -> None:
        if netns in self.fail:
            raise NftError(f"nft -f in {netns} failed: (fake) refused")
        with self._lock:
            self.applied[netns] = table
            self.history.append((netns, table))
            self.counters[netns] = {c.name: (c.packets, c.bytes) for c in table.counters}

    def update(self, netns: str, old: Table, new: Table) -> bool:
        """As the kernel does: refused unless the namespace holds `old`; counters that both
        tables hold keep their values, new ones start at zero."""
        if netns in self.fail:
            raise NftError(f"nft -f in {netns} failed: (fake) refused")
        with self._lock:
            held = self.applied.get(netns)
            if held is None or _bare(held) != _bare(old):
                raise NftError(f"nft -f in {netns} failed: (fake) the table is not the old one")
            kept = self.counters.get(netns, {})
            values = {c.name: kept.get(c.name, (0, 0)) for c in new.counters}
            self.applied[netns] = new.with_counter_values(values)
            self.history.append((netns, new))
            self.counters[netns] = values
        return True

    def patch(self, netns: str, old: Table, new: Table, text: str) -> None:
        """As `update`: the caller's text is taken to turn `old` into `new`."""
        self.update(netns, old, new)

    def list_counters(self, netns: str) -> Counters:
        with self._lock:
            return dict(self.counters.get(netns, {}))


def _bare(t: Table) -> Table:
    """The table without counter values."""
    return dataclasses.replace(t, counters=tuple(Counter(c.name) for c in t.counters))
