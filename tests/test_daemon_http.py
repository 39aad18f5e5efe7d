"""The stand-in's HTTP, sans-io."""

from __future__ import annotations

import json

import pytest

from podnet.workload import http
from podnet.workload.sockets import Identity

ME = Identity("shop", "web-0", "nginx", "node-1", "10.244.1.5")


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (b"GET / HTTP/1.1", True),
        (b"GE", None),
        (b"", None),
        (b"OPTIONS ", True),
        (b"hello", False),
        (b"GETX", False),
    ],
)
def test_looks_like_http(prefix, expected):
    assert http.looks_like_http(prefix) is expected


def test_response_reports_identity_client_host_path_headers():
    req = http.parse_head(b"GET /a?b=1 HTTP/1.1\r\nHost: web.shop\r\nX-A: 1\r\nX-A: 2")
    assert req is not None
    raw = http.response(ME, "10.244.2.7:40000", req)
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body) == {
        "namespace": "shop",
        "pod": "web-0",
        "container": "nginx",
        "node": "node-1",
        "podIP": "10.244.1.5",
        "client": "10.244.2.7:40000",
        "host": "web.shop",
        "path": "/a?b=1",
        "headers": {"Host": "web.shop", "X-A": "1, 2"},
    }


def test_head_request_has_no_body():
    req = http.parse_head(b"HEAD / HTTP/1.1\r\nHost: x")
    assert req is not None
    assert http.response(ME, "1.2.3.4:5", req).endswith(b"\r\n\r\n")


def test_garbled_request_line():
    assert http.parse_head(b"GET /\r\nHost: x") is None
