"""Sets of IPv4 addresses as sorted disjoint intervals: ipBlocks with their excepts, and
outside peers given as CIDRs, compared exactly rather than by sampling addresses."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Interval = tuple[int, int]  # inclusive bounds


def net_interval(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Interval:
    return int(net.network_address), int(net.broadcast_address)


@dataclass(frozen=True, slots=True)
class AddressSet:
    intervals: tuple[Interval, ...] = ()

    @staticmethod
    def of(intervals: Iterable[Interval]) -> AddressSet:
        merged: list[list[int]] = []
        for lo, hi in sorted(intervals):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        return AddressSet(tuple((lo, hi) for lo, hi in merged))

    @staticmethod
    def everything() -> AddressSet:
        return AddressSet(((0, 2**32 - 1),))

    @staticmethod
    def cidr(text: str) -> AddressSet:
        return AddressSet((net_interval(ipaddress.ip_network(text, strict=False)),))

    def union(self, other: AddressSet) -> AddressSet:
        return AddressSet.of(self.intervals + other.intervals)

    def minus(self, other: AddressSet) -> AddressSet:
        out: list[Interval] = []
        for lo, hi in self.intervals:
            cur = lo
            for olo, ohi in other.intervals:
                if ohi < cur or olo > hi:
                    continue
                if olo > cur:
                    out.append((cur, olo - 1))
                cur = max(cur, ohi + 1)
                if cur > hi:
                    break
            if cur <= hi:
                out.append((cur, hi))
        return AddressSet(tuple(out))

    def covers(self, other: AddressSet) -> bool:
        return not other.minus(self).intervals

    def contains(self, address: int) -> bool:
        return any(lo <= address <= hi for lo, hi in self.intervals)

    def __bool__(self) -> bool:
        return bool(self.intervals)
