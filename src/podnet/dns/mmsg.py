"""Batched UDP I/O: recvmmsg(2) and sendmmsg(2) through ctypes, for the DNS server's loop.

Why: per datagram, `sock.recvfrom` allocates a 4 KiB bytes object and an address tuple
(the address formatted by inet_ntop), and `sock.sendto` parses that tuple back; with two
system calls that is most of the server's time per query once the answer itself is a
dict lookup. Here one recvmmsg fills up to BATCH slots of preallocated buffers, and one
sendmmsg sends every answer of the batch back to the addresses the kernel wrote, in their
binary form: per datagram only a slice of the query and a copy of the answer remain.

Layout: `struct mmsghdr` and `struct iovec` are declared with ctypes (their offsets come
from the declaration, not from constants), then read and written through flat memoryviews
of the arrays: indexing a memoryview costs a fraction of building a ctypes struct per
datagram. The rejected alternative, a C extension, would add a compiler to the build.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from collections.abc import Callable

from podnet.dns.answers import EDNS_SIZE

MSG_DONTWAIT = 0x40
ADDR_SIZE = 32  # room for a sockaddr_in6 (28 bytes), kept 8-byte aligned

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.c_void_p),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", _Msghdr), ("len", ctypes.c_uint)]


# No argtypes on purpose: converting arguments through argtypes costs about 1.7 µs a call,
# more than the system call. Every argument is passed as a value C reads right: small
# Python ints (the fd, counts, flags: C int), ctypes pointers made once (c_void_p), None
# (NULL). The result is a C int, ctypes' default restype.
_recvmmsg = _libc.recvmmsg
_sendmmsg = _libc.sendmmsg

UDP_LIMIT = 512  # answer()'s budget before EDNS widens it (podnet.dns.wire)
_MSG = ctypes.sizeof(_Mmsghdr)
# Offsets in words of the flat views: uint32 fields of an mmsghdr, size_t of an iovec.
_MSG32 = _MSG // 4
_LEN32 = _Mmsghdr.len.offset // 4  # msg_len: bytes received
_NAMELEN32 = _Msghdr.namelen.offset // 4  # msghdr is the first member of mmsghdr
_IOV_WORDS = ctypes.sizeof(_Iovec) // ctypes.sizeof(ctypes.c_size_t)
_IOV_LEN_WORD = _Iovec.len.offset // ctypes.sizeof(ctypes.c_size_t)
# Errors a UDP socket reports for an earlier datagram (an ICMP error), or a full buffer:
# the datagram in hand is dropped, as UDP may, and the loop goes on.
_TRANSIENT = frozenset(
    (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EAGAIN, errno.ENOBUFS)
)


class Batch:
    """Buffers for `n` datagrams of at most `size` bytes in and `out_size` bytes out (the
    largest UDP reply: our EDNS size). One per server: the loop serves one socket at a
    time, and a batch is answered and sent before the next is read."""

    def __init__(self, n: int = 64, size: int = 4096, out_size: int = EDNS_SIZE) -> None:
        self.n, self.size, self.out_size = n, size, out_size
        self._in = ctypes.create_string_buffer(n * size)
        self._out = ctypes.create_string_buffer(n * out_size)
        self._addr = ctypes.create_string_buffer(n * ADDR_SIZE)
        self._in_iov = (_Iovec * n)()
        self._out_iov = (_Iovec * n)()
        self._recv = (_Mmsghdr * n)()
        self._send = (_Mmsghdr * n)()
        base_in, base_out = ctypes.addressof(self._in), ctypes.addressof(self._out)
        base_addr = ctypes.addressof(self._addr)
        for k in range(n):
            self._in_iov[k].base, self._in_iov[k].len = base_in + k * size, size
            self._out_iov[k].base = base_out + k * out_size
            for msgs, iov in ((self._recv, self._in_iov), (self._send, self._out_iov)):
                h = msgs[k].hdr
                h.name, h.namelen = base_addr + k * ADDR_SIZE, ADDR_SIZE
                h.iov, h.iovlen = ctypes.addressof(iov[k]), 1
        self._in_view = memoryview(self._in).cast("B")
        self._out_view = memoryview(self._out).cast("B")
        # msg_len and msg_namelen as uint32 (4-byte aligned), iov_len as size_t.
        self._recv_u32 = memoryview(self._recv).cast("B").cast("I")
        self._send_u32 = memoryview(self._send).cast("B").cast("I")
        # size_t is unsigned long on Linux (LP64 and ILP32 alike): format "L".
        self._out_iov_len = memoryview(self._out_iov).cast("B").cast("L")
        self._recv_ptr = ctypes.c_void_p(ctypes.addressof(self._recv))
        send = ctypes.addressof(self._send)
        self._send_at = [ctypes.c_void_p(send + k * _MSG) for k in range(n)]

    def serve(self, fd: int, answer: Callable[[bytes, int], bytes | None]) -> int:
        """Read one batch from `fd`, answer each datagram with `answer(query, 512)` (None:
        no reply), send the replies. Returns how many datagrams were read (0: none were
        waiting), or -1 after an ICMP error reported for an earlier reply (read again)."""
        got = _recvmmsg(fd, self._recv_ptr, self.n, MSG_DONTWAIT, None)
        if got < 0:
            err = ctypes.get_errno()
            if err == errno.EAGAIN:
                return 0
            if err in _TRANSIENT:
                return -1
            raise OSError(err, f"recvmmsg: {os.strerror(err)}")
        size, out_size, inv, outv = self.size, self.out_size, self._in_view, self._out_view
        ru32, su32, iov_len = self._recv_u32, self._send_u32, self._out_iov_len
        start = 0  # the first reply of the current run, not sent yet
        for k in range(got):
            m, at = k * _MSG32, k * size
            reply = answer(inv[at : at + ru32[m + _LEN32]].tobytes(), UDP_LIMIT)
            su32[m + _NAMELEN32] = ru32[m + _NAMELEN32]  # the peer's address length
            ru32[m + _NAMELEN32] = ADDR_SIZE  # room for the next peer's address
            if reply is None or len(reply) > out_size:
                # No reply (answer() never makes a UDP reply larger than a slot): send
                # the run before this datagram, start a new run after it.
                self._flush(fd, start, k)
                start = k + 1
                continue
            at = k * out_size
            outv[at : at + len(reply)] = reply
            iov_len[k * _IOV_WORDS + _IOV_LEN_WORD] = len(reply)
        self._flush(fd, start, got)
        return got

    def _flush(self, fd: int, start: int, end: int) -> None:
        while start < end:
            sent = _sendmmsg(fd, self._send_at[start], end - start, MSG_DONTWAIT)
            if sent < 0:
                err = ctypes.get_errno()
                if err not in _TRANSIENT:
                    raise OSError(err, f"sendmmsg: {os.strerror(err)}")
                sent = 1  # that datagram is dropped, as a full buffer drops it
            start += sent
