"""Conntrack entries deleted inside a node's namespace with Debian's `conntrack` tool
(conntrack-tools), spawned by a thread that stands in the namespace (the one guarded way
in, as datapath.nft does for `nft`). pyroute2's conntrack support can dump and delete by a
full tuple but not by the NAT fields kube-proxy filters on (`--dst-nat`), so the tool it is.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable

from podnet.datapath import netns as dp_netns

TIMEOUT = 10.0


class ConntrackError(RuntimeError):
    pass


def list_udp(netns: str) -> str:
    """`conntrack -L -p udp` in `netns`: one entry a line."""
    return _run(netns, [["-L", "-p", "udp"]])[0]


def delete(netns: str, argv: Iterable[list[str]]) -> int:
    """Run each `conntrack ARGV` (deletions) in `netns`; the number of entries deleted."""
    return len(_run(netns, list(argv)))


def delete_address(netns: str, ip: str) -> int:
    """Delete in `netns` every entry (any protocol) of a connection `ip` takes part in; the
    number deleted (`conntrack -D` prints each one). Two filters cover them all: `ip` opened
    it (original source), or `ip` answers it (reply source: also through a Service's DNAT,
    whose original destination is the ClusterIP). Nothing rewrites a destination to a pod
    in the reply direction, so the destination filters would find nothing more."""
    argvs = [["-D", flag, ip] for flag in ("--orig-src", "--reply-src")]
    return sum(len(text.splitlines()) for text in _run(netns, argvs))


def _run(netns: str, argvs: list[list[str]]) -> list[str]:
    """Each `conntrack ARGV` in `netns`, from one open namespace fd; the outputs of those
    that matched something (`conntrack -D` exits 1 when nothing matched: not an error,
    the entry timed out meanwhile)."""
    out = []
    fd = dp_netns.open_fd(netns)
    try:
        for args in argvs:
            with dp_netns.entered_fd(fd):
                proc = subprocess.Popen(
                    ["conntrack", *args],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            text, err = proc.communicate(timeout=TIMEOUT)
            # "conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted."
            words = err.split(":")[-1].split()
            if words and words[0].isdigit():
                if int(words[0]) or args[0] == "-L":
                    out.append(text)
            elif proc.returncode != 0:
                raise ConntrackError(f"conntrack {' '.join(args)} in {netns}: {err.strip()}")
    finally:
        os.close(fd)
    return out
