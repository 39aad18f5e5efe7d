"""Writing to the terminal: errors and warnings on stderr, grouped so that a dump with ten
thousand similar problems prints a readable handful."""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable

from podnet.model.errors import Problem

MAX_ALIKE = 3


def print_error(line: str) -> None:
    print(f"error: {line}", file=sys.stderr)


def print_warnings(problems: Iterable[Problem]) -> None:
    """One line per warning; beyond MAX_ALIKE of the same message, one summary line."""
    alike: dict[str, list[Problem]] = defaultdict(list)
    for p in problems:
        alike[f"{p.path}: {p.message}"].append(p)
    for group in alike.values():
        for p in group[:MAX_ALIKE]:
            print(f"warning: {p}", file=sys.stderr)
        if len(group) > MAX_ALIKE:
            print(f"warning: ... and {len(group) - MAX_ALIKE} more like it", file=sys.stderr)
