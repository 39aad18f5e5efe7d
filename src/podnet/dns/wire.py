"""The hot path: one query's bytes -> the response's bytes, by copying (sans-io).

No dnspython here: parsing a message into objects costs tens of microseconds, and the
server's budget is a few for the whole query. The header and question are read by hand
(RFC 1035 4.1), the rest comes from `Answers` (podnet.dns.answers).

- ID, RD and CD are copied from the query (RFC 1035 4.1.1, RFC 4035 3.2.2); RA stays 0: the
  server does not recurse (there is nothing to recurse to).
- EDNS (RFC 6891): a query with an OPT record gets one back, advertising 1232 bytes (the
  DNS flag day 2020 size) and the query's DO bit (RFC 3225 3); a version above 0 gets
  BADVERS.
- UDP size: 512 bytes without EDNS, else the client's size (at most 1232). A response that
  does not fit drops its additional section, then, if it still does not fit, is sent
  empty with TC set: the client retries over TCP (RFC 1035 4.2.1, RFC 2181 9).
- Not answered at all: anything shorter than a header, and responses (QR set: never answer
  an answer, or two servers could loop). FORMERR: not exactly one question, or a name
  that is malformed or compressed. NOTIMP: an opcode other than QUERY.
"""

from __future__ import annotations

from podnet.dns.answers import EDNS_SIZE, OPT, Answers, Canned

OPT_DO = OPT[:7] + b"\x80" + OPT[8:]  # DO copied back (RFC 3225 3)
BADVERS_OPT = b"\x00\x00\x29" + EDNS_SIZE.to_bytes(2, "big") + b"\x01\x00\x00\x00\x00\x00"
CLASS_IN = b"\x00\x01"
FORMERR, NOTIMP, REFUSED = 1, 4, 5
TCP_LIMIT = 65535


def _error(q: bytes, rcode: int, question: bytes = b"") -> bytes:
    counts = b"\x00\x01\x00\x00\x00\x00\x00\x00" if question else b"\x00" * 8
    return q[:2] + bytes((0x80 | (q[2] & 0x79), (q[3] & 0x10) | rcode)) + counts + question


def respond(answers: Answers, q: bytes, limit: int | None) -> bytes | None:
    """The response to query `q`; `limit` None over TCP, else the UDP datagram budget
    before EDNS widens it. None: send nothing.

    The fast path first: a plain query (QR clear, opcode QUERY, RD set, CD clear, one
    question) for a name and type in the table, class IN, whose answer fits 512 bytes,
    either without additional records or with exactly an OPT record of version 0 and DO
    clear (what dig and `options edns0` send; its options, such as dig's cookie, are
    ignored, as RFC 7873 lets a server without cookies do). A response of at most 512
    bytes fits every budget, whatever size the client advertised. The name's end is found
    with one find(); a table hit proves the bytes before it are a well-formed name (the
    table holds only such names), so nothing else needs parsing. AD in the query is
    ignored, as on the general path. Anything else takes the general path below."""
    i = q.find(0, 12)
    # 17 bytes: the header and the shortest question (the root's name, type, class).
    if len(q) >= 17 and q[2:3] == b"\x01" and not q[3] & 0x10 and q[4:6] == b"\x00\x01":
        ar = q[10:12]
        if ar == b"\x00\x00":
            c = answers.table.get(q[12 : i + 1].lower() + q[i + 1 : i + 3])
            if c is not None and q[i + 3 : i + 5] == CLASS_IN and len(c.tail) + i < 500:
                return q[:2] + c.head_rd + q[12 : i + 5] + c.tail
        elif (
            ar == b"\x00\x01"
            and len(q) >= i + 16  # the whole fixed part of the OPT record
            and q[i + 5 : i + 8] == b"\x00\x00\x29"  # OPT, owned by the root
            and q[i + 11] == 0  # version 0
            and not q[i + 12] & 0x80  # DO clear
        ):
            c = answers.table.get(q[12 : i + 1].lower() + q[i + 1 : i + 3])
            if c is not None and q[i + 3 : i + 5] == CLASS_IN and len(c.tail_opt) + i < 500:
                return q[:2] + c.head_rd_edns + q[12 : i + 5] + c.tail_opt
    return _respond(answers, q, limit)


def _respond(answers: Answers, q: bytes, limit: int | None) -> bytes | None:
    n = len(q)
    if n < 12 or q[2] & 0x80:
        return None
    if q[2] & 0x78:  # opcode
        return _error(q, NOTIMP)
    if q[4:6] != b"\x00\x01":
        return _error(q, FORMERR)
    # The name: labels up to the root label; a pointer or a length past the end is malformed.
    i = 12
    while True:
        if i >= n:
            return _error(q, FORMERR)
        length = q[i]
        if length == 0:
            break
        if length > 63:
            return _error(q, FORMERR)
        i += length + 1
    end = i + 5  # root label, type, class
    if end > n or i - 12 > 254:
        return _error(q, FORMERR)
    question = q[12:end]
    qtype = (q[i + 1] << 8) | q[i + 2]
    # EDNS: an OPT record right after the question (ARCOUNT 1; TSIG and the like are not
    # spoken here, and a message that carries them is answered as if without EDNS).
    edns = q[10:12] != b"\x00\x00" and q[end : end + 3] == b"\x00\x00\x29" and n >= end + 11
    if q[i + 3 : i + 5] != CLASS_IN:
        c: Canned = answers.refused
    else:
        c = answers.lookup(q[12 : i + 1].lower(), qtype)
    flags = bytes((c.flags | (q[2] & 0x01), (q[3] & 0x10) | c.rcode))
    if not edns:
        budget = 512 if limit is not None else TCP_LIMIT
        out = q[:2] + flags + c.counts + question + c.tail
        if len(out) <= budget:
            return out
        out = q[:2] + flags + c.short_counts + question + c.short_tail
        if len(out) <= budget:
            return out
        return q[:2] + bytes((flags[0] | 0x02, flags[1])) + b"\x00\x01" + b"\x00" * 6 + question
    if q[end + 6] != 0:  # EDNS version: only 0 exists (RFC 6891 6.1.3: BADVERS)
        head = q[:2] + bytes((c.flags | (q[2] & 0x01), q[3] & 0x10))
        return head + b"\x00\x01\x00\x00\x00\x00\x00\x01" + question + BADVERS_OPT
    client = (q[end + 3] << 8) | q[end + 4]
    opt = OPT_DO if q[end + 7] & 0x80 else OPT
    budget = TCP_LIMIT if limit is None else max(512, min(EDNS_SIZE, client))
    out = q[:2] + flags + c.counts_edns + question + c.tail + opt
    if len(out) <= budget:
        return out
    out = q[:2] + flags + c.short_counts_edns + question + c.short_tail + opt
    if len(out) <= budget:
        return out
    head = q[:2] + bytes((flags[0] | 0x02, flags[1]))
    return head + b"\x00\x01\x00\x00\x00\x00\x00\x01" + question + opt
