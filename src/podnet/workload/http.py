"""The stand-in's tiny HTTP/1.1 server, sans-io: classify the first bytes, parse a request
head, build the echo response. Like the agnhost/echoserver images the Kubernetes e2e suites
use, the answer is who served the request and what the server saw of the client."""

from __future__ import annotations

import json
from dataclasses import dataclass

from podnet.workload.sockets import Identity

METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE")
MAX_HEAD = 16 * 1024


def looks_like_http(prefix: bytes) -> bool | None:
    """True when the bytes start an HTTP request, False when they cannot, None when too few
    bytes have arrived to tell ("GE" could still become "GET ")."""
    for method in METHODS:
        token = method + b" "
        if prefix.startswith(token):
            return True
        if token.startswith(prefix):
            return None
    return False


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]


def parse_head(head: bytes) -> Request | None:
    """The request line and headers (everything before the blank line), or None if garbled."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name, value = name.strip(), value.strip()
        # Repeated fields combine with ", " (RFC 9110 section 5.3).
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return Request(parts[0], parts[1], headers)


def response(ident: Identity, client: str, request: Request) -> bytes:
    host = next((v for k, v in request.headers.items() if k.lower() == "host"), "")
    body = (
        json.dumps(
            {
                "namespace": ident.namespace,
                "pod": ident.pod,
                "container": ident.container,
                "node": ident.node,
                "podIP": ident.pod_ip,
                "client": client,
                "host": host,
                "path": request.path,
                "headers": request.headers,
            }
        ).encode()
        + b"\n"
    )
    head = (
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head if request.method == "HEAD" else head + body


def bad_request() -> bytes:
    return b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
