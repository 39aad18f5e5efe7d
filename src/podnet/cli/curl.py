"""`podnet curl`: one real HTTP request from inside a pod, a node or the internet client.

Debian's curl runs inside the source's network namespace, entered the way `podnet exec`
enters it (the same fresh interpreter, the pod's resolv.conf bind-mounted): names resolve
as the pod's own processes resolve them, through glibc with the cluster DNS, the search
list and ndots:5 (so `http://web.shop/` works from a pod). Rejected: an HTTP client in
Python inside the namespace, which would need a second resolver that follows resolv.conf
exactly as glibc does; curl already does, and it is what a user types in a real pod.

The request's facts come from curl itself: headers and body to files, `--write-out
%{json}` (status, remote address, time) to stdout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from podnet.cli.live import add_cluster_arg
from podnet.cli.output import print_error

EXIT_USAGE = 2
TIMEOUT = 5.0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "curl",
        help="one HTTP request from inside a pod, a node or the internet client",
        description="Send one HTTP request with curl from inside the network namespace of "
        "--from (NS/POD, node/NAME or internet; default internet) and print the response. "
        "From a pod, names resolve through the cluster DNS with the pod's resolv.conf "
        "(search list, ndots:5): `podnet curl --from shop/front http://web/`. The exit "
        "status is curl's (7: refused or rejected, 28: timeout, 6: name not resolved).",
    )
    add_cluster_arg(p)
    p.add_argument(
        "--from",
        dest="source",
        default="internet",
        metavar="NS/POD|node/NAME|internet",
        help="where the request starts (default: internet, outside the cluster)",
    )
    p.add_argument("-i", "--include", action="store_true", help="print the status and headers")
    p.add_argument("-k", "--insecure", action="store_true", help="accept any TLS certificate")
    p.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra request header (repeatable), e.g. -H 'Host: shop.example.com'",
    )
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.add_argument(
        "--max-time",
        type=float,
        default=TIMEOUT,
        metavar="SECONDS",
        help=f"give up after this long (default {TIMEOUT:g})",
    )
    p.add_argument("url", help="http://NAME-OR-ADDRESS[:PORT]/PATH")
    p.set_defaults(func=run)


def curl_argv(
    url: str,
    headers: Path,
    body: Path,
    max_time: float,
    insecure: bool,
    extra: tuple[str, ...] = (),
    resolve: str | None = None,
) -> list[str]:
    argv = ["curl", "--silent", "--show-error", "--max-time", f"{max_time:g}"]
    argv += ["--dump-header", str(headers), "--output", str(body), "--write-out", "%{json}"]
    if insecure:
        argv.append("--insecure")
    for h in extra:
        argv += ["--header", h]
    if resolve:
        argv += ["--resolve", resolve]
    return [*argv, "--", url]


def ingress_resolve(url: str, address: str | None) -> str | None:
    """`HOST:PORT:ADDRESS` for curl's --resolve: a request from the internet to a name goes
    to the ingress controller's load-balancer address, as a public DNS record would send it
    there (the internet has no cluster DNS). None for an address, or without an ingress."""
    import ipaddress
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname
    if not host or address is None:
        return None
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{host}:{port}:{address}"


def ingress_address(cluster: str) -> str | None:
    """The load-balancer address of the ingress controller's Service, from the store."""
    from podnet.state.ingress_identity import NAMESPACE, SERVICE
    from podnet.state.store import Store, state_dir

    sdir = state_dir(cluster)
    if not Store.exists(sdir):
        return None
    with Store.open(sdir) as store:
        row = store.get("Service", NAMESPACE, SERVICE)
    if row is None:
        return None
    lb = row.body.get("status", {}).get("loadBalancer", {}).get("ingress", [])
    return next((i["ip"] for i in lb if i.get("ip")), None)


def parse_headers(text: str) -> tuple[str, dict[str, str]]:
    """The status line and headers of the last response in curl's header dump (a `100
    Continue` or a proxy's block may precede it); repeated names are joined with ", "."""
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    if not blocks:
        return "", {}
    status, *lines = blocks[-1].split("\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return status.strip(), headers


def report(
    url: str, source: str, info: dict[str, Any], headers_text: str, body: bytes
) -> dict[str, Any]:
    """{url, from, status, headers, body, seconds, address, port}, plus `error` and
    `exitCode` when curl failed."""
    status_line, headers = parse_headers(headers_text)
    doc: dict[str, Any] = {
        "url": url,
        "from": source,
        "status": int(info.get("http_code") or 0) or None,
        "statusLine": status_line or None,
        "headers": headers,
        "body": body.decode("utf-8", "replace"),
        "seconds": round(float(info.get("time_total") or 0.0), 6),
        "address": info.get("remote_ip") or None,
        "port": int(info.get("remote_port") or 0) or None,
    }
    if int(info.get("exitcode") or 0):
        doc["exitCode"] = int(info["exitcode"])
        doc["error"] = info.get("errormsg") or ""
    return doc


def run(args: argparse.Namespace) -> int:
    from podnet.cli.exec import entered
    from podnet.enter.targets import TargetError

    if not 0 < args.max_time <= 300:
        print_error(f"--max-time must be in (0, 300] seconds, not {args.max_time:g}")
        return EXIT_USAGE
    try:
        prefix, _ = entered(args.cluster, args.source)
    except TargetError as e:
        print_error(str(e).replace("podnet exec needs", "podnet curl needs"))
        return EXIT_USAGE
    resolve = None
    if args.source == "internet":
        resolve = ingress_resolve(args.url, ingress_address(args.cluster))
    with tempfile.TemporaryDirectory(prefix="podnet-curl-") as tmp:
        headers, body = Path(tmp) / "headers", Path(tmp) / "body"
        done = subprocess.run(
            [
                *prefix,
                *curl_argv(
                    args.url,
                    headers,
                    body,
                    args.max_time,
                    args.insecure,
                    tuple(args.header),
                    resolve,
                ),
            ],
            capture_output=True,
            text=True,
        )
        try:
            info = json.loads(done.stdout)
        except ValueError:  # curl did not run (not installed: the enter step says so)
            sys.stderr.write(done.stderr)
            return done.returncode or EXIT_USAGE
        doc = report(
            args.url,
            args.source,
            info,
            headers.read_text(errors="replace") if headers.exists() else "",
            body.read_bytes() if body.exists() else b"",
        )
    if args.output == "json":
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    else:
        if args.include and doc["statusLine"]:
            sys.stdout.write(doc["statusLine"] + "\n")
            for name, value in doc["headers"].items():
                sys.stdout.write(f"{name}: {value}\n")
            sys.stdout.write("\n")
        sys.stdout.write(doc["body"])
        if doc["body"] and not doc["body"].endswith("\n"):
            sys.stdout.write("\n")
        if "error" in doc:
            print_error(f"curl from {args.source}: {doc['error']}")
    return done.returncode
