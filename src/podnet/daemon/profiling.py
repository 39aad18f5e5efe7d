"""cProfile of the daemon's work on the way of a change, for bench/ingress_bench.py
--profile: with PODNET_DAEMON_PROFILE=DIR in the daemon's environment, each call of a
wrapped function (a sync, the ingress controller's read/plan/render, nginx -t) runs under
cProfile in its own thread and leaves DIR/<name>.<n>.prof. Without it, nothing is wrapped."""

from __future__ import annotations

import cProfile
import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

ENV = "PODNET_DAEMON_PROFILE"
P = ParamSpec("P")
R = TypeVar("R")


def profiled(name: str, fn: Callable[P, R]) -> Callable[P, R]:
    """`fn`, profiled into $PODNET_DAEMON_PROFILE/<name>.<n>.prof when that is set."""
    directory = os.environ.get(ENV)
    if not directory:
        return fn
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    counter = itertools.count()

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        profile = cProfile.Profile()
        try:
            return profile.runcall(fn, *args, **kwargs)
        finally:
            profile.dump_stats(out / f"{name}.{next(counter)}.prof")

    return wrapper
