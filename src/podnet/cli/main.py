"""`podnet` entry point: one module per command, named after it.

Exit status: 0 success, 1 a check failed (probe mismatch), 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from podnet import __version__, startup
from podnet.cli.output import print_error
from podnet.model.errors import InputError

MAX_ERRORS = 50

# One module per command, named after it (podnet.cli.<command>), each with
# `register(subparsers)` setting `func`. A run imports only the module of its command, so
# that `podnet label` or `podnet exec` does not pay for numpy and the analyzer.
COMMANDS = (
    "analyze",
    "explain",
    "up",
    "down",
    "get",
    "exec",
    "curl",
    "probe",
    "apply",
    "delete",
    "label",
    "serve",
    "dashboard",
    "trace",
    "doctor",
    "flows",
    "quarantine",
)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="podnet",
        description="The Kubernetes network model on one Linux host: live, and analysed statically.",
    )
    parser.add_argument("--version", action="version", version=f"podnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    first = next((a for a in argv or () if not a.startswith("-")), None)
    for name in [first] if first in COMMANDS else COMMANDS:
        importlib.import_module(f"podnet.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    startup.lean_pydantic()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
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
