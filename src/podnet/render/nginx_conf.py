"""The nginx configuration of the ingress controller, pure: an `IngressPlan` -> nginx.conf
text (golden files in tests/golden/ingress/). nginx runs inside the controller pod's
network namespace; every path it uses lies under `root` (the state directory's ingress/),
so nothing outside the cluster's state directory is read or written.

One `server` per host (exact names as `server_name`, wildcards as a regex that covers one
label: nginx's own `*.foo.com` would also match `a.b.foo.com`), plus the catch-all default
server of hostless rules and unmatched hosts; each listens on 80 and on 443 with its
certificate (SNI). Locations as `render.ingress_routes` decides them. Upstreams list the
ready endpoints (pod IP:targetPort), as ingress-nginx proxies to endpoints directly rather
than through the Service's virtual IP.
"""

from __future__ import annotations

import re

from podnet.render.ingress_routes import CATCH_ALL, DEFAULT_CERT, IngressPlan, Location, Server

HTTP_PORT, HTTPS_PORT = 80, 443
WORKER_SHUTDOWN = "30s"  # old workers finish in-flight requests after a reload, up to this

_HEADERS = (
    # What reaches the pod (ingress-nginx's defaults, without trusting the client's own
    # X-Forwarded-* headers: use-forwarded-headers is false there too).
    ("Host", "$host"),
    ("X-Real-IP", "$remote_addr"),
    ("X-Forwarded-For", "$remote_addr"),
    ("X-Forwarded-Host", "$host"),
    ("X-Forwarded-Port", "$server_port"),
    ("X-Forwarded-Proto", "$scheme"),
    ("X-Request-ID", "$request_id"),
    ("Connection", '""'),
)


def cert_path(root: str, name: str) -> str:
    """One PEM file per certificate, key and chain together (nginx reads both from it)."""
    return f"{root}/certs/{name}.pem"


def server_name(host: str) -> str:
    if host == CATCH_ALL:
        return "_"
    if host.startswith("*."):
        return '"~^[^.]+' + re.escape(host[1:]).replace("\\-", "-") + '$"'
    return host


def _location(loc: Location) -> list[str]:
    head = {"=": f'location = "{loc.path}"', "^~": f'location ^~ "{loc.path}"', "/": "location /"}
    out = [f"    # {loc.source} -> {loc.backend.what}", f"    {head[loc.match]} {{"]
    if loc.backend.upstream is not None:
        out.append(f"      proxy_pass http://{loc.backend.upstream};")
    else:
        out.append(f"      return {loc.backend.status};")
    out.append("    }")
    return out


def _server(s: Server, root: str) -> list[str]:
    default = " default_server" if s.host == CATCH_ALL else ""
    out = ["  server {", f"    listen {HTTP_PORT}{default};"]
    if s.tls is not None:
        out.append(f"    listen {HTTPS_PORT} ssl{default};")
    out.append(f"    server_name {server_name(s.host)};")
    if s.tls is not None:
        out.append(f"    ssl_certificate {cert_path(root, s.tls)};")
        out.append(f"    ssl_certificate_key {cert_path(root, s.tls)};")
    for loc in s.locations:
        out += _location(loc)
    out.append("  }")
    return out


def render(plan: IngressPlan, root: str) -> str:
    lines = [
        "# The ingress controller's nginx.conf, written by podnet (render/nginx_conf.py).",
        "worker_processes 1;",
        f"pid {root}/nginx.pid;",
        f"error_log {root}/error.log notice;",
        f"worker_shutdown_timeout {WORKER_SHUTDOWN};",
        "events {",
        "  worker_connections 8192;",
        "}",
        "http {",
        "  access_log off;",
        "  server_tokens off;",
        "  default_type text/plain;",
        "  server_names_hash_bucket_size 256;",
        "  server_names_hash_max_size 65536;",
        "  variables_hash_bucket_size 128;",
        "  keepalive_timeout 75s;",
        "  ssl_protocols TLSv1.2 TLSv1.3;",
        "  ssl_session_cache shared:SSL:1m;",
        "  proxy_http_version 1.1;",
        "  proxy_connect_timeout 5s;",
        "  proxy_buffering off;",
        *(f"  proxy_set_header {name} {value};" for name, value in _HEADERS),
        *(
            f"  {kind}_temp_path {root}/tmp/{kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
    ]
    for u in plan.upstreams:
        if not u.servers:
            continue  # no ready endpoint: its locations answer 503 themselves
        lines.append(f"  upstream {u.name} {{")
        lines += [f"    server {s} max_fails=0;" for s in u.servers]
        lines.append("  }")
    for s in plan.servers:
        lines += _server(s, root)
    lines.append("}")
    return "\n".join(lines) + "\n"


__all__ = ["DEFAULT_CERT", "render"]
