"""Every answer of a zone, computed once from its master-file text (sans-io).

A response is the query's first two bytes (its ID), two bytes of flags, four counts, the
query's own question copied back (so the client sees its own spelling of the name: 0x20
case randomisation keeps working), then everything after the question. That last part
depends only on the (lowercase name, type) asked, so it is built once, by dnspython, with
the lowercase question at offset 12: its compression pointers stay valid for any spelling of
the same name, which has the same length. The hot path (podnet.dns.wire) then only copies
bytes.

Which answer a name gets:

| the name | answer |
| --- | --- |
| has records of the type | NOERROR, the records (SRV and NS: the targets' addresses in the additional section) |
| is a CNAME (an ExternalName Service) | NOERROR, the CNAME, and the target's records when the target is in the zone (RFC 1034 4.3.2) |
| exists (has records of other types, or names below it: an empty non-terminal) | NOERROR, empty answer, the apex's SOA in authority (NODATA, RFC 2308) |
| is in a zone served here but does not exist | NXDOMAIN, SOA in authority |
| is outside every zone served here | REFUSED, at once (docs/dns.md: the cluster is sealed, there is no upstream) |
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

IN = dns.rdataclass.IN
ANY = dns.rdatatype.ANY
CNAME = dns.rdatatype.CNAME
MAX_CACHED = 200_000  # computed NODATA/CNAME answers kept; beyond it they are built per query
AXFR, IXFR = dns.rdatatype.AXFR, dns.rdatatype.IXFR
EDNS_SIZE = 1232  # the UDP size we advertise: the DNS flag day 2020 size
# The OPT record an EDNS query gets back (RFC 6891 6.1.2): root owner, type 41, our size,
# extended rcode 0, version 0, flags (DO is the high bit of the first byte), no options.
OPT = b"\x00\x00\x29" + EDNS_SIZE.to_bytes(2, "big") + b"\x00\x00\x00\x00\x00\x00"


@dataclass(frozen=True, slots=True)
class Canned:
    """What follows the question, for one (name, type): plain and without the additional
    section (when the plain one does not fit a UDP limit), counts with and without room for
    the OPT record that an EDNS query gets back."""

    flags: int  # QR | AA where authoritative
    rcode: int
    counts: bytes
    tail: bytes
    counts_edns: bytes
    short_counts: bytes
    short_tail: bytes
    short_counts_edns: bytes
    head_rd: bytes = b""  # flags and counts for the common query: RD set, CD clear, no EDNS
    head_rd_edns: bytes = b""  # the same for that query with an OPT record (DO clear)
    tail_opt: bytes = b""  # tail + OPT


def _wire(name: dns.name.Name) -> bytes:
    w = name.to_wire()
    assert w is not None  # without a file, to_wire returns the bytes
    return w


def _counts(an: int, ns: int, ar: int) -> bytes:
    return b"\x00\x01" + an.to_bytes(2, "big") + ns.to_bytes(2, "big") + ar.to_bytes(2, "big")


def canned(
    qname: dns.name.Name,
    qtype: int,
    rcode: int = 0,
    answer: Iterable[dns.rrset.RRset] = (),
    authority: Iterable[dns.rrset.RRset] = (),
    additional: Iterable[dns.rrset.RRset] = (),
    authoritative: bool = True,
) -> Canned:
    def wire(extra: list[dns.rrset.RRset]) -> tuple[bytes, bytes]:
        m = dns.message.Message(id=0)
        m.flags = dns.flags.QR | (dns.flags.AA if authoritative else 0)
        m.set_rcode(dns.rcode.Rcode(rcode))
        rdtype = dns.rdatatype.RdataType(qtype)
        m.find_rrset(m.question, qname, IN, rdtype, create=True, force_unique=True)
        m.answer, m.authority, m.additional = list(answer), list(authority), extra
        w = m.to_wire()
        return w[4:12], w[12 + len(_wire(qname)) + 4 :]

    extra = list(additional)
    counts, tail = wire(extra)
    short_counts, short_tail = wire([]) if extra else (counts, tail)

    def plus_opt(c: bytes) -> bytes:
        return c[:6] + (int.from_bytes(c[6:8], "big") + 1).to_bytes(2, "big")

    flags = 0x80 | (0x04 if authoritative else 0)
    return Canned(
        flags,
        rcode,
        counts,
        tail,
        plus_opt(counts),
        short_counts,
        short_tail,
        plus_opt(short_counts),
        bytes((flags | 0x01, rcode)) + counts,
        bytes((flags | 0x01, rcode)) + plus_opt(counts),
        tail + OPT,
    )


def _fixed(rcode: int, authority: bytes, authoritative: bool) -> Canned:
    """A negative answer whose tail does not depend on the name: the SOA written out
    uncompressed (no pointer into the question), or nothing at all."""
    c = _counts(0, 1 if authority else 0, 0)
    e = c[:6] + b"\x00\x01"
    flags = 0x80 | (0x04 if authoritative else 0)
    head = bytes((flags | 0x01, rcode))
    return Canned(
        flags, rcode, c, authority, e, c, authority, e, head + c, head + e, authority + OPT
    )


Key = tuple[dns.name.Name, int]
TextKey = tuple[str, str]  # a line's owner and type, as written


def _text_key(line: str) -> TextKey:
    owner, _ttl, _cls, rdtype, _data = line.split(None, 4)
    return owner, rdtype


class Answers:
    """The answers of one zone text; `lookup(lowercase wire name, qtype)`.

    With `previous` (the answers of the text before), only the records whose lines changed
    are parsed and only their answers built again (with the answers whose additional
    section holds their addresses); every other answer is the previous one, the same
    bytes. Building every answer costs ~0.3 ms a record in dnspython (5.5 s at 10,000
    Services); a reload after one Service changed then blocked the server's loop that
    long. tests/test_dns_wire.py holds the two ways equal over random zone changes."""

    def __init__(self, text: str, previous: Answers | None = None) -> None:
        self.lines = {line for line in text.splitlines() if line and not line.startswith(";")}
        old = previous.lines if previous is not None else set()
        changed = self.lines ^ old
        # The lines of each (owner, type) that changed, as the text now has them.
        self.text_keys: dict[TextKey, frozenset[str]] = (
            dict(previous.text_keys) if previous is not None else {}
        )
        grouped: dict[TextKey, set[str]] = {}
        for line in changed:
            grouped.setdefault(_text_key(line), set())
        for line in self.lines if previous is None else (self.lines - old):
            grouped.setdefault(_text_key(line), set()).add(line)
        if previous is not None:
            for tk in grouped:  # the unchanged lines of a changed key
                grouped[tk] |= {x for x in previous.text_keys.get(tk, ()) if x in self.lines}
        self.rrsets: dict[Key, dns.rrset.RRset] = (
            dict(previous.rrsets) if previous is not None else {}
        )
        self.glue_users: dict[dns.name.Name, frozenset[Key]] = (
            dict(previous.glue_users) if previous is not None else {}
        )
        dirty: set[Key] = set()
        gone_owner = False
        for (owner, rdtype), lines in grouped.items():
            name = dns.name.from_text(owner)
            kind = dns.rdatatype.from_text(rdtype)
            key = (name, int(kind))
            dirty.add(key)
            self._unglue(key)
            if not lines:
                self.text_keys.pop((owner, rdtype), None)
                self.rrsets.pop(key, None)
                gone_owner = True
                continue
            self.text_keys[(owner, rdtype)] = frozenset(lines)
            rrset = self.rrsets[key] = dns.rrset.RRset(name, IN, kind)
            for line in sorted(lines):
                _owner, ttl, _cls, _type, data = line.split(None, 4)
                rrset.add(dns.rdata.from_text(IN, kind, data), int(ttl))
            self._glue(key)
        self.records = sum(len(r) for r in self.rrsets.values())
        soas = [r for (_, t), r in self.rrsets.items() if t == dns.rdatatype.SOA]
        # Longest apex first: a name belongs to the most specific zone that holds it.
        self.apexes = sorted((r.name for r in soas), key=lambda n: (-len(n), n.to_text()))
        self.negative: dict[dns.name.Name, tuple[Canned, Canned]] = {}
        for soa in soas:
            buf = io.BytesIO()
            soa.to_wire(buf)  # no compression table: self-contained bytes
            self.negative[soa.name] = (
                _fixed(dns.rcode.NOERROR, buf.getvalue(), True),
                _fixed(dns.rcode.NXDOMAIN, buf.getvalue(), True),
            )
        self.soa = {r.name: r for r in soas}
        self.refused = _fixed(dns.rcode.REFUSED, b"", False)
        self.by_name: dict[dns.name.Name, list[dns.rrset.RRset]] = (
            dict(previous.by_name) if previous is not None else {}
        )
        types: dict[dns.name.Name, list[int]] = {}
        for name, t in dirty:
            types.setdefault(name, []).append(t)
        for name, ts in types.items():
            held = [r for r in self.by_name.get(name, ()) if r.rdtype not in ts]
            held += [self.rrsets[(name, t)] for t in ts if (name, t) in self.rrsets]
            if held:
                self.by_name[name] = held
            else:
                self.by_name.pop(name, None)
        if previous is None or previous.apexes != self.apexes:
            self.exists: set[dns.name.Name] = set()  # every owner and every name above it
            self.children: dict[dns.name.Name, int] = {}  # existing names just below each
            # The same facts as lowercase wire bytes, for the negative answers' path: a
            # name that does not exist is answered without dnspython (from_wire and
            # is_subdomain cost ~35 µs, ten times a whole positive answer, and NXDOMAIN is
            # what a search path's first tries get: `web.shop.svc.cluster.local.shop...`).
            self.exists_wire: set[bytes] = set()
            self._exist(self.by_name)
        else:
            self.exists = set(previous.exists)
            self.children = dict(previous.children)
            self.exists_wire = set(previous.exists_wire)
            names = {n for n, _ in dirty}
            self._exist(names)
            if gone_owner:
                self._unexist(names)
        self.nxdomain_wire = {_wire(a.canonicalize()): neg[1] for a, neg in self.negative.items()}
        # Every positive answer; an SRV's or NS's again when its target's address changed.
        self.positive: dict[bytes, Canned] = dict(previous.positive) if previous is not None else {}
        again = set(dirty)
        for name, t in dirty:
            if t in (dns.rdatatype.A, dns.rdatatype.AAAA):
                again |= self.glue_users.get(name, frozenset())
        for name, t in again:
            wire_key = _wire(name) + t.to_bytes(2, "big")
            found = self.rrsets.get((name, t))
            if found is None:
                self.positive.pop(wire_key, None)
            else:
                self.positive[wire_key] = self._positive(name, t, [found])
        self.table: dict[bytes, Canned] = dict(self.positive)  # and computed ones, cached

    def _glue(self, key: Key) -> None:
        """Note the targets whose addresses go into this rrset's additional section."""
        for target in self._targets(key):
            self.glue_users[target] = self.glue_users.get(target, frozenset()) | {key}

    def _unglue(self, key: Key) -> None:
        for target in self._targets(key):
            users = self.glue_users.get(target, frozenset()) - {key}
            if users:
                self.glue_users[target] = users
            else:
                self.glue_users.pop(target, None)

    def _targets(self, key: Key) -> set[dns.name.Name]:
        rrset = self.rrsets.get(key)
        if rrset is None or key[1] not in (dns.rdatatype.SRV, dns.rdatatype.NS):
            return set()
        return {rd.target for rd in rrset}

    def _exist(self, owners: Iterable[dns.name.Name]) -> None:
        for name in owners:
            if name not in self.by_name:
                continue
            apex = self.apex(name)
            while apex is not None and name not in self.exists and name.is_subdomain(apex):
                self.exists.add(name)
                self.exists_wire.add(_wire(name.canonicalize()))
                if name == apex:
                    break
                name = name.parent()
                self.children[name] = self.children.get(name, 0) + 1

    def _unexist(self, names: Iterable[dns.name.Name]) -> None:
        """Names that are no longer owners: gone, and their parents with them, unless
        something exists below them still."""
        for name in names:
            apex = self.apex(name)
            while (
                name in self.exists
                and name not in self.by_name
                and not self.children.get(name)
                and apex is not None
            ):
                self.exists.discard(name)
                self.exists_wire.discard(_wire(name.canonicalize()))
                self.children.pop(name, None)
                if name == apex:
                    break
                name = name.parent()
                self.children[name] -= 1

    def apex(self, name: dns.name.Name) -> dns.name.Name | None:
        return next((a for a in self.apexes if name.is_subdomain(a)), None)

    def _additional(self, rrsets: list[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
        """Addresses of SRV and NS targets that the zone holds (2.3.2: "The Additional
        section of the response may include the Service A record")."""
        out: list[dns.rrset.RRset] = []
        for rrset in rrsets:
            if rrset.rdtype not in (dns.rdatatype.SRV, dns.rdatatype.NS):
                continue
            for rd in rrset:
                for t in (dns.rdatatype.A, dns.rdatatype.AAAA):
                    glue = self.rrsets.get((rd.target, t))
                    if glue is not None and glue not in out:
                        out.append(glue)
        return out

    def _positive(self, name: dns.name.Name, qtype: int, rrsets: list[dns.rrset.RRset]) -> Canned:
        return canned(name, qtype, answer=rrsets, additional=self._additional(rrsets))

    def lookup(self, wire_name: bytes, qtype: int) -> Canned:
        """The answer to (name, qtype); `wire_name` is the lowercase name in wire format."""
        hit = self.table.get(wire_name + qtype.to_bytes(2, "big"))
        if hit is not None:
            return hit
        if qtype in (AXFR, IXFR):
            return self.refused
        if wire_name not in self.exists_wire:
            return self._absent(wire_name)
        try:
            name = dns.name.from_wire(wire_name, 0)[0]
        except dns.exception.DNSException:
            return self.refused
        return self._compute(name, qtype, wire_name)

    def _absent(self, wire_name: bytes) -> Canned:
        """A name that does not exist: NXDOMAIN of the most specific zone above it (its
        longest suffix that is an apex), or REFUSED outside every zone. `wire_name` is
        well formed (the caller parsed it), so its labels can be walked by their lengths."""
        i, n, zones = 0, len(wire_name), self.nxdomain_wire
        while i < n:
            hit = zones.get(wire_name[i:])
            if hit is not None:
                return hit
            i += wire_name[i] + 1
        return self.refused

    def _compute(self, name: dns.name.Name, qtype: int, key: bytes) -> Canned:
        apex = self.apex(name)
        if apex is None or qtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            return self.refused
        if name not in self.exists:
            return self.negative[apex][1]
        found = self.by_name.get(name, [])
        if qtype == ANY and found:
            answer = self._positive(name, qtype, sorted(found, key=lambda r: r.rdtype))
        elif (cname := self.rrsets.get((name, CNAME))) is not None:
            answer = canned(name, qtype, answer=self._chase(cname, qtype))
        else:
            return self.negative[apex][0]
        if len(self.table) < MAX_CACHED:
            self.table[key + qtype.to_bytes(2, "big")] = answer
        return answer

    def _chase(self, cname: dns.rrset.RRset, qtype: int) -> list[dns.rrset.RRset]:
        """The CNAME, then the target's records of the type when the zone holds them
        (chains of at most 8, as resolvers bound them)."""
        chain = [cname]
        for _ in range(8):
            target = chain[-1][0].target
            nxt = self.rrsets.get((target, CNAME)) or self.rrsets.get((target, qtype))
            if nxt is None or nxt in chain:
                break
            chain.append(nxt)
            if nxt.rdtype != CNAME:
                break
        return chain
