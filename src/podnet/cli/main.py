"""`podnet` entry point: one module per command, each with `register(subparsers)`.

Exit status: 0 success, 1 a check failed (probe mismatch), 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from podnet import __version__
from podnet.cli.output import print_error
from podnet.model.errors import InputError

# Command modules under podnet.cli; each defines register(subparsers) and sets `func`.
MAX_ERRORS = 50

COMMANDS = ("analyze", "explain", "cluster", "inspect", "execute", "probe", "change")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="podnet",
        description="The Kubernetes network model on one Linux host: live, and analysed statically.",
    )
    parser.add_argument("--version", action="version", version=f"podnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"podnet.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
