"""`podnet` entry point: one module per command, named after it.

Exit status: 0 success, 1 a check failed (probe mismatch), 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from podnet import __version__, startup

MAX_ERRORS = 50

# One module per command, named after it (podnet.cli.<command>), each with
# `register(subparsers)` setting `func`. A run imports only the module of its command, so
# that `podnet label` or `podnet exec` does not pay for numpy and the analyzer. The listing
# of `podnet --help` (and of a usage error) imports none: it shows each command's one-line
# help from here (tests/test_cli_main.py holds it equal to what the modules register).
COMMANDS: dict[str, str] = {
    "analyze": "connectivity matrix of the pods in manifests",
    "explain": "why a connection is allowed or denied",
    "up": "bring a cluster's network up: nodes and pods as network namespaces",
    "down": "remove a cluster: namespaces, links, processes, state",
    "get": "list a live cluster's pods, nodes, ...",
    "exec": "run a command inside a pod's, a node's or the internet client's namespace",
    "curl": "one HTTP request from inside a pod, a node or the internet client",
    "probe": "send real traffic between a live cluster's pods and compare with the analysis",
    "apply": "create or update objects of a running cluster",
    "delete": "delete an object of a running cluster",
    "label": "set or remove labels of a pod or namespace",
    "serve": "make a pod stop or start serving a port",
    "dashboard": "serve a web dashboard of a running cluster on 127.0.0.1",
    "trace": "send one real packet with nftables tracing and print its path",
    "doctor": "check a running cluster against its store; --fix repairs it",
    "flows": "new connections and blocked attempts of a live cluster, with pods, Services "
    "and the deciding policy",
    "quarantine": "isolate a compromised pod at once (policy, connections, endpoints) and prove it",
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of ARGV's command, or the listing of every command when ARGV names none."""
    parser = _top_parser()
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    first = next((a for a in argv or () if not a.startswith("-")), None)
    if first in COMMANDS:
        importlib.import_module(f"podnet.cli.{first}").register(sub)
    else:
        for name, line in COMMANDS.items():
            sub.add_parser(name, help=line)
    return parser


def full_parser() -> argparse.ArgumentParser:
    """Every command's own parser (the tests compare it with the listing)."""
    parser = _top_parser()
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"podnet.cli.{name}").register(sub)
    return parser


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="podnet",
        description="The Kubernetes network model on one Linux host: live, and analysed statically.",
    )
    parser.add_argument("--version", action="version", version=f"podnet {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    startup.lean_pydantic()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    # after the parse, which ends `--help` and usage errors: their start-up needs neither
    from podnet.cli.output import print_error
    from podnet.model.errors import InputError

    try:
        return int(args.func(args) or 0)
    except InputError as e:
        for problem in e.problems[:MAX_ERRORS]:
            print_error(str(problem))
        if len(e.problems) > MAX_ERRORS:
            print_error(f"... and {len(e.problems) - MAX_ERRORS} more errors")
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
