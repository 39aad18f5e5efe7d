"""One packet for `podnet trace`: a TCP connection or a UDP datagram from inside a
namespace, from a source port chosen beforehand (the trace chains match that port, so that
they mark exactly this packet), with the outcome told apart as `probe` tells it."""

from __future__ import annotations

import socket
import struct
import time

from podnet.datapath.netns import Namespaces
from podnet.policy.expectations import Observation
from podnet.probing.send import DNS_QUERY, PAYLOAD, _dns_reply, _failure, _line


def send_one(
    netns: str,
    host: str,
    port: int,
    protocol: str,
    sport: int,
    timeout: float = 2.0,
    dns: bool = False,
) -> Observation:
    """Connect (TCP) or send one datagram (UDP) from `sport`; the reply line, "refused",
    "rejected" (a policy's ICMP), or "no-answer" at `timeout`."""
    ns = Namespaces()
    kind = socket.SOCK_STREAM if protocol == "TCP" else socket.SOCK_DGRAM
    started = time.monotonic()
    try:
        sock = ns.socket(netns, kind)
    finally:
        ns.close()
    try:
        sock.setblocking(True)
        sock.settimeout(timeout)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", sport))
        sock.connect((host, port))
        if protocol == "TCP":
            query = struct.pack("!H", len(DNS_QUERY)) + DNS_QUERY if dns else PAYLOAD
            sock.sendall(query)
            data = sock.recv(4096)
            if dns:
                data = data[2:]
        else:
            sock.send(DNS_QUERY if dns else PAYLOAD)
            data = sock.recv(4096)
    except TimeoutError:
        took = time.monotonic() - started
        return Observation("no-answer", detail=f"no answer in {timeout:g}s", seconds=took)
    except OSError as e:
        return _failure(e, started)
    finally:
        sock.close()
    took = time.monotonic() - started
    if not data:
        return Observation("error", detail="connected, but closed without a reply", seconds=took)
    reply = (_dns_reply(data) or "<not DNS>") if dns else _line(data)
    return Observation("reply", reply=reply, seconds=took)
