"""dns.mmsg: recvmmsg/sendmmsg batches on real loopback sockets (no root needed): every
datagram answered to its own sender (IPv4 and IPv6), no reply where answer() says None,
runs split around it, more datagrams than one batch holds, a drained socket."""

from __future__ import annotations

import socket

import pytest

from podnet.dns.mmsg import Batch


def server(family: socket.AddressFamily, host: str) -> socket.socket:
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.bind((host, 0))
    return s


def client(family: socket.AddressFamily, host: str) -> socket.socket:
    c = socket.socket(family, socket.SOCK_DGRAM)
    c.settimeout(2.0)
    c.bind((host, 0))
    return c


def echo(q: bytes, limit: int) -> bytes | None:
    """Upper-cased query, no reply to b"drop..."; the limit is the plain UDP budget."""
    assert limit == 512
    return None if q.startswith(b"drop") else q.upper()


def received(c: socket.socket) -> list[bytes]:
    out = []
    c.settimeout(0.2)
    try:
        while True:
            out.append(c.recv(2048))
    except TimeoutError:
        return out


@pytest.mark.parametrize(
    ("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")], ids=["v4", "v6"]
)
def test_each_datagram_answered_to_its_sender(family, host):
    s = server(family, host)
    clients = [client(family, host) for _ in range(3)]
    sent: dict[int, list[bytes]] = {i: [] for i in range(3)}
    for n in range(10):
        i = n % 3
        q = b"drop %d" % n if n in (0, 4, 9) else b"q%d from %d" % (n, i)
        clients[i].sendto(q, s.getsockname())
        if not q.startswith(b"drop"):
            sent[i].append(q.upper())
    batch = Batch(n=4)  # 10 datagrams: three batches, the last one short
    counts = []
    while (got := batch.serve(s.fileno(), echo)) > 0:
        counts.append(got)
    assert counts == [4, 4, 2]
    for i, c in enumerate(clients):
        assert received(c) == sent[i]
    assert batch.serve(s.fileno(), echo) == 0  # drained
    for sock in [s, *clients]:
        sock.close()


def test_a_large_reply_and_an_empty_query():
    s = server(socket.AF_INET, "127.0.0.1")
    c = client(socket.AF_INET, "127.0.0.1")
    c.sendto(b"", s.getsockname())
    c.sendto(b"x" * 1500, s.getsockname())
    batch = Batch(n=8)
    assert batch.serve(s.fileno(), lambda q, _: b"len %d" % len(q) + b"." * 1000) == 2
    assert [r[:8] for r in received(c)] == [b"len 0...", b"len 1500"]
    s.close()
    c.close()


def test_buffers_are_reused_without_leftovers():
    """A short query after a long one in the same slot sees only its own bytes, and the
    peer's address length is restored for the next read."""
    s = server(socket.AF_INET6, "::1")
    c = client(socket.AF_INET6, "::1")
    batch = Batch(n=1)
    for q in (b"a-long-query", b"b"):
        c.sendto(q, s.getsockname())
        assert batch.serve(s.fileno(), echo) == 1
        assert received(c) == [q.upper()]
    s.close()
    c.close()
