"""The Ingress documentation's examples as data, for the pure tests (render.ingress_routes)
and the live ones (real requests through nginx): one source, so both check the same rows.

PATH_ROWS is the table "Examples" under "Path types" of
https://kubernetes.io/docs/concepts/services-networking/ingress/ row by row (a row with two
request paths is two rows here); HOST_ROWS the table under "Hostname wildcards".
"""

from __future__ import annotations

from dataclasses import dataclass

from podnet.render.ingress_routes import Location, Server


@dataclass(frozen=True)
class PathRow:
    id: str
    paths: tuple[tuple[str, str], ...]  # (path, pathType), each to backend s<index>
    request: str
    expected: int | None  # the index of the path that serves it; None: the default backend


def _p(*paths: str) -> tuple[tuple[str, str], ...]:
    return tuple((p, "Prefix") for p in paths)


PATH_ROWS: tuple[PathRow, ...] = (
    PathRow("prefix-root-all", _p("/"), "/any/path", 0),
    PathRow("exact-foo-foo", (("/foo", "Exact"),), "/foo", 0),
    PathRow("exact-foo-bar", (("/foo", "Exact"),), "/bar", None),
    PathRow("exact-foo-foo-slash", (("/foo", "Exact"),), "/foo/", None),
    PathRow("exact-foo-slash-foo", (("/foo/", "Exact"),), "/foo", None),
    PathRow("prefix-foo-foo", _p("/foo"), "/foo", 0),
    PathRow("prefix-foo-foo-slash", _p("/foo"), "/foo/", 0),
    PathRow("prefix-foo-slash-foo", _p("/foo/"), "/foo", 0),
    PathRow("prefix-foo-slash-foo-slash", _p("/foo/"), "/foo/", 0),
    PathRow("prefix-aaa-bb-aaa-bbb", _p("/aaa/bb"), "/aaa/bbb", None),
    PathRow("prefix-aaa-bbb-aaa-bbb", _p("/aaa/bbb"), "/aaa/bbb", 0),
    PathRow("prefix-ignores-trailing-slash", _p("/aaa/bbb/"), "/aaa/bbb", 0),
    PathRow("prefix-matches-trailing-slash", _p("/aaa/bbb"), "/aaa/bbb/", 0),
    PathRow("prefix-matches-subpath", _p("/aaa/bbb"), "/aaa/bbb/ccc", 0),
    PathRow("prefix-not-string-prefix", _p("/aaa/bbb"), "/aaa/bbbxyz", None),
    PathRow("prefix-longest-aaa", _p("/", "/aaa"), "/aaa/ccc", 1),
    PathRow("prefix-longest-aaa-bbb", _p("/", "/aaa", "/aaa/bbb"), "/aaa/bbb", 2),
    PathRow("prefix-root-fallback", _p("/", "/aaa", "/aaa/bbb"), "/ccc", 0),
    PathRow("prefix-default-backend", _p("/aaa"), "/ccc", None),
    PathRow("mixed-prefers-exact", (("/foo", "Prefix"), ("/foo", "Exact")), "/foo", 1),
)

# (rule host, Host header, matches)
HOST_ROWS: tuple[tuple[str, str, bool], ...] = (
    ("*.foo.com", "bar.foo.com", True),
    ("*.foo.com", "baz.bar.foo.com", False),
    ("*.foo.com", "foo.com", False),
)


def route(server: Server, path: str) -> Location:
    """The location nginx chooses for a request path in one server, as its documentation
    describes the choice (`=` first, then the longest prefix; no regex locations here)."""
    for loc in server.locations:
        if loc.match == "=" and loc.path == path:
            return loc
    best: Location | None = None
    for loc in server.locations:
        longer = best is None or len(loc.path) > len(best.path)
        if loc.match == "^~" and path.startswith(loc.path) and longer:
            best = loc
    if best is not None:
        return best
    return next(loc for loc in server.locations if loc.match == "/")
