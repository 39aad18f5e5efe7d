"""Sockets made from inside a network namespace (they keep it after the thread leaves), for
tests that talk to the workload stand-in from a pod, a node or loopback."""

from __future__ import annotations

import socket

from podnet.datapath.netns import entered


def connect(netns: str, host: str, port: int, timeout: float = 2.0) -> socket.socket:
    """A TCP connection made from inside `netns` (the socket keeps that namespace)."""
    with entered(netns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


def udp_socket(netns: str, timeout: float = 2.0) -> socket.socket:
    with entered(netns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    return s


def read_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data
