"""The cluster's DNS records kept from one sync to the next and updated per Service (the
change tracking kube-proxy and the endpointslice controller do): a Service added or one
of its slices changed costs that Service's records, not a walk of every Service's (at
10,000 Services `render_zone` took ~1 s a sync, sorting reverse names and records).

`ZoneRecords.rebuild` is `dns_zone.render_zone` (the reference; tests/test_follow.py holds
the updated records equal to it over random changes); `update` replaces the records of
the Services it is told changed, and the pods' when their addresses changed. The records
stay sorted in a list (`bisect` by `dns_zone.order`), with their master-file lines beside
them, so that the zone's text is a join.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING

from podnet.render.dns_zone import (
    PodAddress,
    Record,
    Zone,
    fqdn,
    order,
    pod_record,
    service_records,
    version_record,
)

if TYPE_CHECKING:
    from podnet.model.service import EndpointSlice, Service

ServiceKey = tuple[str, str]  # namespace, name
SlicesOf = Callable[[str, str], Iterable["EndpointSlice"]]  # a Service's labelled slices


class ZoneRecords:
    """Every record of the zone, by the Service (or the pods) that gives it."""

    def __init__(self) -> None:
        self.domain = ""  # the zone ("cluster.local."); "" until the first rebuild
        self._of: dict[ServiceKey, frozenset[Record]] = {}
        self._pods: frozenset[Record] = frozenset()
        self._count: Counter[Record] = Counter()  # a record two Services give is one
        self._sorted: list[Record] = []
        self._keys: list[tuple[str, str, str, int]] = []  # order() of each, for bisect
        self._lines: list[str] = []

    def rebuild(
        self,
        services: Iterable[Service],
        slices: Iterable[EndpointSlice],
        pods: Iterable[PodAddress],
        domain: str,
    ) -> None:
        """Everything from scratch (a full sync, the first one)."""
        self.domain = zone = fqdn(domain)
        by_service: dict[ServiceKey, list[EndpointSlice]] = {}
        for s in slices:
            if s.service_name:
                key = (s.metadata.namespace or "default", s.service_name)
                by_service.setdefault(key, []).append(s)
        self._of = {}
        for svc in services:
            key = (svc.metadata.namespace or "default", svc.metadata.name or "")
            self._of[key] = frozenset(service_records(svc, zone, by_service.get(key, ())))
        self._pods = frozenset(pod_record(p, zone) for p in pods)
        self._count = Counter([version_record(zone), *self._pods])
        for records in self._of.values():
            self._count.update(records)
        self._sorted = sorted(self._count, key=order)
        self._keys = [order(r) for r in self._sorted]
        self._lines = [r.line() + "\n" for r in self._sorted]

    def update(
        self,
        services: Callable[[str, str], Service | None],
        slices_of: SlicesOf,
        changed: Collection[ServiceKey],
        pods: Iterable[PodAddress] | None,
    ) -> None:
        """The records of the `changed` Services (`services(ns, name)`: None when gone)
        made again; the pods' too unless `pods` is None (their addresses did not change)."""
        for key in changed:
            svc = services(*key)
            now = (
                frozenset(service_records(svc, self.domain, slices_of(*key)))
                if svc is not None
                else frozenset()
            )
            was = self._of.pop(key, frozenset())
            if svc is not None:
                self._of[key] = now
            self._replace(was, now)
        if pods is not None:
            now = frozenset(pod_record(p, self.domain) for p in pods)
            self._replace(self._pods, now)
            self._pods = now

    def _replace(self, was: frozenset[Record], now: frozenset[Record]) -> None:
        for r in was - now:
            self._count[r] -= 1
            if not self._count[r]:
                del self._count[r]
                i = bisect_left(self._keys, order(r))
                del self._sorted[i], self._keys[i], self._lines[i]
        for r in now - was:
            self._count[r] += 1
            if self._count[r] == 1:
                k = order(r)
                i = bisect_left(self._keys, k)
                self._sorted.insert(i, r)
                self._keys.insert(i, k)
                self._lines.insert(i, r.line() + "\n")

    def zone(self, dns_ip: str, serial: int) -> tuple[Zone, str]:
        """The zone and its master-file text (`Zone.text()`, without sorting again)."""
        zone = Zone(self.domain, dns_ip, tuple(self._sorted), serial)
        lines = self._lines[:]
        keys = self._keys[:]
        for r in sorted((r for r in zone.authority() if r not in self._count), key=order):
            k = order(r)
            i = bisect_left(keys, k)
            keys.insert(i, k)
            lines.insert(i, r.line() + "\n")
        return zone, "".join(lines)
