"""The DNS server's answers on the wire (dns.answers + dns.wire), sans-io: queries built and
responses read by dnspython, as a client would. Which rcode, which sections, which flags,
for every kind of name the zone has or lacks."""

from __future__ import annotations

from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from podnet.dns.answers import Answers
from podnet.dns.wire import respond

# The golden zone of test_dns_zone (render.dns_zone's output for a shop namespace).
ZONE = Answers((Path(__file__).parent / "golden" / "dns" / "shop.zone").read_text())
NOERROR, NXDOMAIN, REFUSED = dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.REFUSED


def ask(name: str, rdtype: str = "A", edns: int = 0, tcp: bool = False, payload: int = 1232):
    q = dns.message.make_query(name, rdtype, use_edns=edns, payload=payload)
    out = respond(ZONE, q.to_wire(), None if tcp else 512)
    assert out is not None
    r = dns.message.from_wire(out)
    assert r.id == q.id and r.question == q.question
    return r


def answers(r) -> set[str]:
    return {rd.to_text() for rrset in r.answer for rd in rrset}


CASES = [
    # (name, type, rcode, answer data, SOA in authority)
    ("web.shop.svc.cluster.local", "A", NOERROR, {"10.96.0.20"}, False),
    ("WeB.ShOp.SvC.Cluster.LOCAL", "A", NOERROR, {"10.96.0.20"}, False),  # 2.1 case
    ("web.shop.svc.cluster.local", "AAAA", NOERROR, set(), True),  # NODATA
    ("web.shop.svc.cluster.local", "TXT", NOERROR, set(), True),
    ("nope.shop.svc.cluster.local", "A", NXDOMAIN, set(), True),
    ("web.nons.svc.cluster.local", "A", NXDOMAIN, set(), True),
    ("svc.cluster.local", "A", NOERROR, set(), True),  # empty non-terminal: NODATA
    ("shop.svc.cluster.local", "A", NOERROR, set(), True),
    ("_tcp.web.shop.svc.cluster.local", "A", NOERROR, set(), True),
    (
        "_http._tcp.web.shop.svc.cluster.local",
        "SRV",
        NOERROR,
        {"0 100 80 web.shop.svc.cluster.local."},
        False,
    ),
    ("_http._udp.web.shop.svc.cluster.local", "SRV", NXDOMAIN, set(), True),
    ("db.shop.svc.cluster.local", "A", NOERROR, {"10.244.1.5", "10.244.2.6"}, False),
    ("db-0.db.shop.svc.cluster.local", "A", NOERROR, {"10.244.1.5"}, False),
    ("db-2.db.shop.svc.cluster.local", "A", NXDOMAIN, set(), True),  # not ready
    ("empty.shop.svc.cluster.local", "A", NXDOMAIN, set(), True),  # 2.4.1 no ready endpoint
    ("empty.shop.svc.cluster.local", "SRV", NXDOMAIN, set(), True),
    ("x.web.shop.svc.cluster.local", "A", NXDOMAIN, set(), True),
    ("ext.shop.svc.cluster.local", "A", NOERROR, {"api.example.com."}, False),  # 2.5
    ("ext.shop.svc.cluster.local", "CNAME", NOERROR, {"api.example.com."}, False),
    ("sub.ext.shop.svc.cluster.local", "A", NXDOMAIN, set(), True),
    ("dns-version.cluster.local", "TXT", NOERROR, {'"1.1.0"'}, False),
    ("20.0.96.10.in-addr.arpa", "PTR", NOERROR, {"web.shop.svc.cluster.local."}, False),
    ("5.1.244.10.in-addr.arpa", "PTR", NOERROR, {"db-0.db.shop.svc.cluster.local."}, False),
    ("9.9.9.9.in-addr.arpa", "PTR", NXDOMAIN, set(), True),
    ("10-244-1-5.shop.pod.cluster.local", "A", NOERROR, {"10.244.1.5"}, False),
    ("10-244-1-5.other.pod.cluster.local", "A", NXDOMAIN, set(), True),
    ("pod.cluster.local", "A", NOERROR, set(), True),
    (
        "cluster.local",
        "SOA",
        NOERROR,
        {"ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5"},
        False,
    ),
    ("cluster.local", "NS", NOERROR, {"ns.dns.cluster.local."}, False),
    ("example.com", "A", REFUSED, set(), False),  # outside every zone served
    ("local", "A", REFUSED, set(), False),
    (".", "NS", REFUSED, set(), False),
    ("cluster.local", "AXFR", REFUSED, set(), False),  # no zone transfers
]


@pytest.mark.parametrize(
    ("name", "rdtype", "rcode", "data", "soa"), CASES, ids=[f"{c[0]}/{c[1]}" for c in CASES]
)
def test_answer(name, rdtype, rcode, data, soa):
    r = ask(name, rdtype)
    assert r.rcode() == rcode
    assert answers(r) == data
    assert [rrset.rdtype for rrset in r.authority] == ([dns.rdatatype.SOA] if soa else [])
    assert bool(r.flags & dns.flags.AA) == (rcode != REFUSED)
    assert not r.flags & dns.flags.RA  # no recursion: nothing to recurse to


def test_negative_answer_names_the_zone_of_the_name():
    assert ask("nope.shop.svc.cluster.local").authority[0].name.to_text() == "cluster.local."
    assert ask("1.1.1.1.in-addr.arpa", "PTR").authority[0].name.to_text() == "in-addr.arpa."


def test_srv_carries_the_targets_addresses_as_additional():
    r = ask("_pg._tcp.db.shop.svc.cluster.local", "SRV")
    assert {(rr.name.to_text(), rd.to_text()) for rr in r.additional for rd in rr} == {
        ("db-0.db.shop.svc.cluster.local.", "10.244.1.5"),
        ("db-1.db.shop.svc.cluster.local.", "10.244.2.6"),
    }


def test_the_question_comes_back_as_asked_0x20():
    r = ask("WEB.shop.SVC.cluster.local")
    assert r.question[0].name.to_text() == "WEB.shop.SVC.cluster.local."
    assert r.answer[0].name.to_text().lower() == "web.shop.svc.cluster.local."


def test_any_returns_every_record_of_the_name():
    r = ask("cluster.local", "ANY")
    assert {rr.rdtype for rr in r.answer} == {dns.rdatatype.NS, dns.rdatatype.SOA}


def test_rd_and_cd_are_copied():
    q = dns.message.make_query("web.shop.svc.cluster.local", "A")
    q.flags |= dns.flags.CD
    r = dns.message.from_wire(respond(ZONE, q.to_wire(), 512))
    assert r.flags & dns.flags.RD and r.flags & dns.flags.CD
    q.flags &= ~(dns.flags.RD | dns.flags.CD)
    r = dns.message.from_wire(respond(ZONE, q.to_wire(), 512))
    assert not r.flags & (dns.flags.RD | dns.flags.CD)


def test_edns_in_edns_out_and_badvers():
    assert ask("web.shop.svc.cluster.local", edns=0).edns == 0
    assert ask("web.shop.svc.cluster.local", edns=-1).edns == -1
    r = ask("web.shop.svc.cluster.local", edns=1)
    assert r.rcode() == dns.rcode.BADVERS and not r.answer


def big_zone(n: int) -> Answers:
    lines = [
        f"big.shop.svc.cluster.local. 5 IN A 10.244.{i // 250}.{i % 250 + 1}" for i in range(n)
    ]
    lines += [
        f"_p._tcp.big.shop.svc.cluster.local. 5 IN SRV 0 100 80 h{i}.big.shop.svc.cluster.local."
        for i in range(n)
    ]
    lines += [
        f"h{i}.big.shop.svc.cluster.local. 5 IN A 10.244.{i // 250}.{i % 250 + 1}" for i in range(n)
    ]
    soa = "ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5"
    return Answers("\n".join([*lines, f"cluster.local. 5 IN SOA {soa}"]))


def test_udp_answer_that_does_not_fit_is_truncated_and_tcp_gets_all_of_it():
    zone = big_zone(200)  # 200 A records: 16 bytes each, far above 512 and 1232
    q = dns.message.make_query("big.shop.svc.cluster.local", "A")
    r = dns.message.from_wire(respond(zone, q.to_wire(), 512))
    assert r.flags & dns.flags.TC and not r.answer
    q = dns.message.make_query("big.shop.svc.cluster.local", "A", use_edns=0, payload=4096)
    out = respond(zone, q.to_wire(), 512)
    assert len(out) <= 1232 and dns.message.from_wire(out).flags & dns.flags.TC
    r = dns.message.from_wire(respond(zone, q.to_wire(), None))
    assert len(r.answer[0]) == 200 and not r.flags & dns.flags.TC


def test_additional_section_dropped_before_truncating():
    zone = big_zone(20)  # 20 SRV fit 1232 bytes, with their 20 A records they do not
    q = dns.message.make_query("_p._tcp.big.shop.svc.cluster.local", "SRV", use_edns=0)
    r = dns.message.from_wire(respond(zone, q.to_wire(), 512))
    assert len(r.answer[0]) == 20 and not r.additional and not r.flags & dns.flags.TC
    r = dns.message.from_wire(respond(zone, q.to_wire(), None))
    assert len(r.additional) == 20


def test_malformed_and_unusual_queries():
    q = dns.message.make_query("web.shop.svc.cluster.local", "A").to_wire()
    assert respond(ZONE, q[:11], 512) is None  # shorter than a header
    assert respond(ZONE, q[:2] + bytes([q[2] | 0x80]) + q[3:], 512) is None  # a response
    r = dns.message.from_wire(respond(ZONE, q[:2] + bytes([q[2] | 0x10]) + q[3:], 512))
    assert r.rcode() == dns.rcode.NOTIMP  # opcode STATUS
    no_question = q[:4] + b"\x00\x00" + q[6:12]
    assert dns.message.from_wire(respond(ZONE, no_question, 512)).rcode() == dns.rcode.FORMERR
    cut = q[:20]  # the name runs past the end
    assert dns.message.from_wire(respond(ZONE, cut, 512)).rcode() == dns.rcode.FORMERR
    chaos = dns.message.make_query("version.bind", "TXT", "CH").to_wire()
    assert dns.message.from_wire(respond(ZONE, chaos, 512)).rcode() == REFUSED


def test_do_bit_is_copied_back():
    q = dns.message.make_query("web.shop.svc.cluster.local", "A", want_dnssec=True)
    r = dns.message.from_wire(respond(ZONE, q.to_wire(), 512))
    assert r.ednsflags & dns.flags.DO and answers(r) == {"10.96.0.20"}
    assert not ask("web.shop.svc.cluster.local", edns=0).ednsflags & dns.flags.DO


@pytest.mark.parametrize(
    ("name", "rcode", "zone"),
    [
        ("xcluster.local", REFUSED, None),  # a suffix, but not on a label boundary
        ("nope.local", REFUSED, None),
        ("a.b.c.d.e.f.nope.shop.svc.cluster.local", NXDOMAIN, "cluster.local."),
        ("NOPE.Shop.SVC.cluster.local", NXDOMAIN, "cluster.local."),
        ("1.0.0.0.ip6.arpa", NXDOMAIN, "ip6.arpa."),
        ("in-addr.arpa.cluster.local", NXDOMAIN, "cluster.local."),
    ],
)
def test_names_that_do_not_exist_belong_to_the_zone_above_them(name, rcode, zone):
    r = ask(name)
    assert r.rcode() == rcode
    assert [rr.name.to_text() for rr in r.authority] == ([zone] if zone else [])


def fast_path_queries() -> list[tuple[str, bytes]]:
    """Every (name, type) of the table, asked as clients ask: plain, dig's (EDNS with a
    cookie, AD set), glibc's `options edns0`, with odd sizes, 0x20 spellings, CD, DO."""
    out = []
    for key in list(ZONE.table):
        name = dns.name.from_wire(key[:-2], 0)[0]
        rdtype = int.from_bytes(key[-2:], "big")
        mixed = dns.name.from_text(
            "".join(ch.upper() if i % 2 else ch for i, ch in enumerate(name.to_text()))
        )
        cookie = [dns.edns.GenericOption(dns.edns.COOKIE, b"\x01" * 8)]
        for label, q in [
            ("plain", dns.message.make_query(name, rdtype, use_edns=False)),
            ("0x20", dns.message.make_query(mixed, rdtype, use_edns=False)),
            ("edns", dns.message.make_query(name, rdtype, use_edns=0, payload=1232)),
            ("edns-512", dns.message.make_query(name, rdtype, use_edns=0, payload=512)),
            ("edns-100", dns.message.make_query(name, rdtype, use_edns=0, payload=100)),
            ("dig", dns.message.make_query(name, rdtype, use_edns=0, options=cookie)),
            ("do", dns.message.make_query(name, rdtype, want_dnssec=True)),
            ("edns1", dns.message.make_query(name, rdtype, use_edns=1)),
        ]:
            q.flags |= dns.flags.AD if label == "dig" else 0
            out.append((f"{name}/{rdtype}/{label}", q.to_wire()))
            cd = q.to_wire()
            out.append((f"{name}/{rdtype}/{label}/cd", cd[:3] + bytes([cd[3] | 0x10]) + cd[4:]))
    return out


def test_the_fast_path_answers_byte_for_byte_as_the_general_path():
    """respond()'s shortcuts (plain and EDNS) must change nothing a client can see."""
    from podnet.dns.wire import _respond

    queries = fast_path_queries()
    assert len(queries) > 300
    for label, q in queries:
        for limit in (512, None):
            assert respond(ZONE, q, limit) == _respond(ZONE, q, limit), label


def test_no_query_bytes_make_respond_raise():
    """The server must outlive any datagram: every prefix of real queries (plain, EDNS,
    dig's) and thousands of random mutations of them are answered or ignored, never raise."""
    import random

    rng = random.Random(7)
    seeds = [q for _, q in fast_path_queries()[:48]]
    seeds.append(dns.message.make_query("nope.shop.svc.cluster.local", "A", use_edns=0).to_wire())
    for q in seeds:
        for cut in range(len(q) + 1):
            for limit in (512, None):
                respond(ZONE, q[:cut], limit)
    for _ in range(20000):
        q = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            q[rng.randrange(len(q))] = rng.choice(
                (0, 1, 0x29, 0x3F, 0x40, 0xC0, rng.randrange(256))
            )
        respond(ZONE, bytes(q[: rng.randint(0, len(q))]), rng.choice((512, None)))
