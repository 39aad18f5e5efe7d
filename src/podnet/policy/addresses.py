"""Sets of IPv4 addresses as sorted disjoint intervals: ipBlocks with their excepts, and
outside peers given as CIDRs, compared exactly rather than by sampling addresses."""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Interval = tuple[int, int]  # inclusive bounds


def net_interval(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Interval:
    return int(net.network_address), int(net.broadcast_address)


def _start(interval: Interval) -> int:
    return interval[0]


@dataclass(frozen=True, slots=True)
class AddressSet:
    """Intervals sorted, disjoint and never adjacent (`of` merges them; `minus` keeps it so),
    which lets `contains` and `covers` search instead of scanning."""

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
        # Every interval of `other` must lie inside one interval of self: two intervals of
        # self are never adjacent, so one that spans a gap is not covered.
        return all(self._holding(lo) >= hi for lo, hi in other.intervals)

    def contains(self, address: int) -> bool:
        return self._holding(address) >= address

    def _holding(self, address: int) -> int:
        """The end of the interval holding `address`, or -1 when none holds it."""
        i = bisect.bisect_right(self.intervals, address, key=_start) - 1
        if i >= 0 and self.intervals[i][1] >= address:
            return self.intervals[i][1]
        return -1

    def __bool__(self) -> bool:
        return bool(self.intervals)
