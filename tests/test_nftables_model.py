"""podnet.nftables.model: rule counts and counter values carried on the model."""

from __future__ import annotations

from podnet.nftables.expr import ACCEPT, CtState, Reject
from podnet.nftables.model import Chain, Counter, Hook, Rule, Table

HOOK = Hook("filter", "forward", "filter", "accept")


def table() -> Table:
    return Table(
        "inet",
        "t",
        counters=(Counter("a"), Counter("b")),
        chains=(
            Chain("in-1", (Rule(counter="a", verdict=ACCEPT), Rule(verdict=Reject()))),
            Chain("forward", (Rule((CtState(("invalid",)),), verdict=ACCEPT),), HOOK),
        ),
    )


def test_rule_count_counts_rules_not_hook_declarations() -> None:
    assert table().rule_count == 3
    assert Table("inet", "t").rule_count == 0


def test_counter_values_are_set_by_name_and_unknown_names_ignored() -> None:
    t = table().with_counter_values({"b": (4, 256), "gone": (1, 1)})
    assert t.counters == (Counter("a"), Counter("b", 4, 256))
    assert t.chains == table().chains
    assert table().with_counter_values({}) == table()


def test_tables_are_values() -> None:
    assert table() == table() and hash(table()) == hash(table())
    assert table().with_counter_values({"a": (1, 1)}) != table()
