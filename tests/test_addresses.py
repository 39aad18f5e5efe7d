"""AddressSet: interval arithmetic equals plain set arithmetic over a small address space."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from podnet.policy.addresses import AddressSet

SPACE = 64
intervals = st.lists(
    st.tuples(st.integers(0, SPACE - 1), st.integers(0, 8)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=6,
)


def addresses(s: AddressSet) -> set[int]:
    return {a for lo, hi in s.intervals for a in range(lo, hi + 1)}


@given(intervals, intervals)
def test_set_operations(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> None:
    x, y = AddressSet.of(a), AddressSet.of(b)
    assert addresses(x.union(y)) == addresses(x) | addresses(y)
    assert addresses(x.minus(y)) == addresses(x) - addresses(y)
    assert x.covers(y) == (addresses(y) <= addresses(x))
    assert x.minus(y).covers(y.minus(x).minus(y))
    for addr in range(SPACE + 10):
        assert x.contains(addr) == (addr in addresses(x))


def test_adjacent_intervals_merge_so_a_span_across_them_is_covered() -> None:
    s = AddressSet.of([(0, 5), (6, 10)])
    assert s.intervals == ((0, 10),)
    assert s.covers(AddressSet(((3, 8),)))
    assert not AddressSet.of([(0, 5), (7, 10)]).covers(AddressSet(((3, 8),)))
