"""podnet.nftables.text: every expression's nft spelling, and the whole-table transaction
(the renderer's golden files cover the same text end to end)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from podnet.nftables import text
from podnet.nftables.expr import (
    ACCEPT,
    DROP,
    RETURN,
    CtState,
    DPort,
    Element,
    Field,
    InSet,
    Jump,
    Match,
    Proto,
    Range,
    Reject,
    SetUpdate,
    Verdict,
    VMap,
)
from podnet.nftables.model import Chain, Counter, Hook, Map, Rule, Set, Table

ADDR = IPv4Address("10.244.0.3")


@pytest.mark.parametrize(
    "match, want",
    [
        (CtState(("established", "related")), "ct state established,related"),
        (Proto("udp"), "meta l4proto udp"),
        (DPort(53), "th dport 53"),
        (DPort(9000, 9010), "th dport 9000-9010"),
        (InSet((Field.IP_SADDR,), "peer-1"), "ip saddr @peer-1"),
        (
            InSet((Field.IP_DADDR, Field.L4PROTO, Field.TH_DPORT), "np-1"),
            "ip daddr . meta l4proto . th dport @np-1",
        ),
    ],
    ids=["ct-state", "l4proto", "dport", "dport-range", "saddr-set", "concat-set"],
)
def test_matches(match: Match, want: str) -> None:
    assert text.match(match) == want


@pytest.mark.parametrize(
    "verdict, want",
    [
        (ACCEPT, "accept"),
        (DROP, "drop"),
        (RETURN, "return"),
        (Jump("in-1"), "jump in-1"),
        (Reject(), "reject with icmpx admin-prohibited"),
        (VMap((Field.IP_DADDR,), "ingress-pods"), "ip daddr vmap @ingress-pods"),
    ],
    ids=["accept", "drop", "return", "jump", "reject", "vmap"],
)
def test_verdicts(verdict: Verdict, want: str) -> None:
    assert text.verdict(verdict) == want


@pytest.mark.parametrize(
    "element, want",
    [
        (ADDR, "10.244.0.3"),
        (Range(ADDR, IPv4Address("10.244.0.9")), "10.244.0.3-10.244.0.9"),
        ((ADDR, "tcp", 8080), "10.244.0.3 . tcp . 8080"),
        (Range(80, 90), "80-90"),
    ],
    ids=["address", "address-range", "concatenation", "port-range"],
)
def test_elements(element: Element, want: str) -> None:
    assert text.element(element) == want


def test_a_rule_is_matches_then_counter_then_verdict() -> None:
    rule = Rule((InSet((Field.IP_SADDR,), "p"), Proto("tcp"), DPort(80)), "c", ACCEPT)
    assert text.rule(rule) == "ip saddr @p meta l4proto tcp th dport 80 counter name c accept"
    assert text.rule(Rule(counter="d", verdict=Reject())) == (
        "counter name d reject with icmpx admin-prohibited"
    )
    assert text.rule(Rule((Proto("udp"),))) == "meta l4proto udp"


def test_replace_deletes_and_redeclares_the_table_in_one_transaction() -> None:
    table = Table(
        "inet",
        "podnet_t",
        counters=(Counter("a"), Counter("b", 3, 120)),
        sets=(
            Set("s", ("ipv4_addr",), ("interval",)),
            Set("n", ("ipv4_addr", "inet_proto", "inet_service"), (), ((ADDR, "tcp", 80),)),
        ),
        maps=(Map("m", ("ipv4_addr",), ((ADDR, Jump("c")),)),),
        chains=(
            Chain("c", (Rule(verdict=ACCEPT),)),
            Chain(
                "f",
                (Rule(verdict=VMap((Field.IP_DADDR,), "m")),),
                Hook("filter", "forward", "filter", "accept"),
            ),
        ),
    )
    assert text.replace(table) == (
        "table inet podnet_t\n"
        "delete table inet podnet_t\n"
        "table inet podnet_t {\n"
        "\tcounter a { }\n"
        "\tcounter b { packets 3 bytes 120 }\n"
        "\tset s {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t}\n"
        "\tset n {\n\t\ttype ipv4_addr . inet_proto . inet_service\n"
        "\t\telements = { 10.244.0.3 . tcp . 80 }\n\t}\n"
        "\tmap m {\n\t\ttype ipv4_addr : verdict\n\t\telements = { 10.244.0.3 : jump c }\n\t}\n"
        "\tchain c {\n\t\taccept\n\t}\n"
        "\tchain f {\n\t\ttype filter hook forward priority filter; policy accept;\n"
        "\t\tip daddr vmap @m\n\t}\n"
        "}\n"
    )


def test_a_hook_without_policy_and_a_numeric_priority() -> None:
    chain = Chain("n", hook=Hook("nat", "prerouting", -100))
    out = text.declare(Table("ip", "t", chains=(chain,)))
    assert "\t\ttype nat hook prerouting priority -100;\n" in out


def _map_table(*elements: tuple[Element, Verdict], chains: tuple[Chain, ...] = ()) -> Table:
    m = Map("m", ("ipv4_addr", "inet_proto", "inet_service"), tuple(elements))
    return Table("inet", "podnet_t", maps=(m,), chains=chains)


def test_update_writes_only_the_elements_that_differ() -> None:
    """Elements are compared as values by key: the unchanged ones are not written at all,
    a changed verdict is a delete and an add (the kernel refuses an add over a key). The
    add re-declares the map with the new elements: for `add map` nft 1.0.6 fetches the
    tables alone, for `add element` every chain and set of the namespace."""
    a, b, c = (IPv4Address(f"10.96.0.{i}") for i in (1, 2, 3))
    old = _map_table(((a, "tcp", 80), Jump("x")), ((b, "tcp", 80), Jump("y")))
    new = _map_table(((a, "tcp", 80), Jump("x")), ((b, "tcp", 80), Jump("z")), ((c, "udp", 53), Jump("x")))  # fmt: skip
    assert text.update(old, new) == (
        "delete element inet podnet_t m { 10.96.0.2 . tcp . 80 }\n"
        "add map inet podnet_t m { type ipv4_addr . inet_proto . inet_service : verdict; "
        "elements = { 10.96.0.2 . tcp . 80 : jump z, 10.96.0.3 . udp . 53 : jump x } }\n"
    )
    assert text.update(new, new) == ""


def test_update_rewrites_a_changed_chain_and_leaves_the_same_ones() -> None:
    same = Chain("same", (Rule(verdict=ACCEPT),))
    old = _map_table(chains=(same, Chain("c", (Rule(verdict=DROP),))))
    new = _map_table(chains=(same, Chain("c", (Rule(verdict=RETURN),)), Chain("d")))
    assert text.update(old, new) == (
        "flush chain inet podnet_t c\n"
        "add chain inet podnet_t c { return; }\n"
        "add chain inet podnet_t d { }\n"
    )


def test_update_keeps_the_full_form_where_nft_needs_its_cache() -> None:
    """A chain naming a set that the batch does not declare, a base chain, and elements
    of an interval set: nft 1.0.6 resolves those against what it reads from the kernel,
    so they keep `table { }`, `add rule` and `add element` (and their cost)."""
    hook = Hook("filter", "forward", "filter", "accept")
    lookup = Rule((InSet((Field.IP_SADDR,), "s"),), verdict=ACCEPT)
    s_old = Set("s", ("ipv4_addr",), ("interval",), (ADDR,))
    s_new = Set("s", ("ipv4_addr",), ("interval",), (ADDR, IPv4Address("10.244.0.9")))
    fresh = Set("t", ("ipv4_addr",), ("dynamic", "timeout"), timeout=5)
    update = Rule(statements=(SetUpdate("t", (Field.IP_SADDR,)),), verdict=ACCEPT)
    old = Table("inet", "podnet_t", sets=(s_old,), chains=(Chain("f", (), hook),))
    new = Table(
        "inet",
        "podnet_t",
        sets=(s_new, fresh),
        chains=(Chain("f", (lookup,), hook), Chain("g", (lookup,)), Chain("h", (update,))),
    )
    assert text.update(old, new) == (
        "add set inet podnet_t t { type ipv4_addr; flags dynamic,timeout; timeout 5s; }\n"
        "flush chain inet podnet_t f\n"
        "add rule inet podnet_t f ip saddr @s accept\n"
        "table inet podnet_t {\n\tchain g {\n\t\tip saddr @s accept\n\t}\n}\n"
        "add chain inet podnet_t h { update @t { ip saddr } accept; }\n"
        "add element inet podnet_t s { 10.244.0.9 }\n"
    )


def test_update_replaces_when_a_set_timeout_changes() -> None:
    old = Table("inet", "t", sets=(Set("s", ("ipv4_addr",), ("dynamic", "timeout"), timeout=10),))
    new = Table("inet", "t", sets=(Set("s", ("ipv4_addr",), ("dynamic", "timeout"), timeout=20),))
    assert text.update(old, new) is None


def test_update_compares_values_where_identity_differs() -> None:
    """Equal values that are other objects (a Service rendered again) change nothing."""

    def build() -> Table:
        a = IPv4Address("10.96.0.1")
        return _map_table(((a, "tcp", 80), Jump("x")), chains=(Chain("c", (Rule(verdict=DROP),)),))

    assert build() is not build()
    assert text.update(build(), build()) == ""


def test_kept_elements_put_back_dynamic_sets_with_their_time_left() -> None:
    """After a replace, the clients of a ClientIP affinity set come back with the seconds
    they had left (capped by the set's timeout, at least 1); other sets get nothing."""
    aff = Set("aff-x", ("ipv4_addr",), ("dynamic", "timeout"), timeout=60)
    plain = Set("s", ("ipv4_addr",))
    table = Table("inet", "podnet_t", sets=(aff, plain))
    kept = {
        "aff-x": [("10.244.1.2", 30), ("10.244.1.3", 500), ("10.244.1.4", 0)],
        "s": [("1.2.3.4", 9)],
    }
    assert text.kept_elements(table, kept) == (
        "add element inet podnet_t aff-x { 10.244.1.2 expires 30s, 10.244.1.3 expires 60s, "
        "10.244.1.4 expires 1s }\n"
    )
    assert text.kept_elements(table, {}) == ""
